"""Stream Showdown: real streaming architectures side by side on one fraud-detection job."""
