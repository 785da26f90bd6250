"""Where clusters run: local processes or containers (Kafka, and the launchers the engines use)."""
