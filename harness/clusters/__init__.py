"""Cluster backends: where Kafka (and later the engines' clusters) run."""
