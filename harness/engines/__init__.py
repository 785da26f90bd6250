"""The engines: one registry entry each (registry.py), the pipelines' deployment per engine."""
