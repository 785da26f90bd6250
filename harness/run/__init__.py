"""One run's lifecycle per engine, the nemesis (faults), sweeps and the self-benchmark."""
