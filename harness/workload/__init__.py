"""Workloads: the schema (schema.py) and the files that hold them (files.py)."""
