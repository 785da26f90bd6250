"""Where the repository, its caches and its run output live."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Jars, engine venvs and scratch data: reused across runs, never committed.
CACHE = Path(os.environ.get("SHOWDOWN_CACHE", ROOT / ".cache"))
RESULTS = Path(os.environ.get("SHOWDOWN_RESULTS", ROOT / "results"))
WORKLOADS = ROOT / "workloads"
PIPELINES = ROOT / "pipelines"
