"""The run folder's layout, known here only: every writer and reader asks this module
where a file lives (results/README.md documents it for other programs).

results/<stamp>-<workload>/            a run
    summary.json                       schema.Summary
    timeseries.csv                     per engine and second: offered, received, p50, p99, backlog
    logs/<engine>/                     that engine's cluster logs, received.npy, windows.npy
    report.html, report.md, report-files/
    records/<engine>/                  with --keep-records, the audit archive (results/README.md):
        inputs.parquet, decisions.parquet, windows.parquet (with windows), faults.parquet
results/<stamp>-<workload>-x<N>/       a repeat: the N run folders and repeat.json
results/<stamp>-<workload>-sweep/      a sweep: one run folder per step and sweep.json
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

SUMMARY = "summary.json"
SUMMARY_TMP = SUMMARY + ".tmp"  # written whole, then renamed over summary.json
TIMESERIES = "timeseries.csv"
LOGS = "logs"
REPEAT = "repeat.json"
SWEEP = "sweep.json"
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
REPORT_FILES = "report-files"
RECORDS = "records"
# Written beside summary.json when the command running the run died (support/guard.py):
# its reader then says the run was killed, not merely partial.
KILLED = "killed.json"
# What a run writes besides its summary: a folder with one of these and no summary.json
# is a run that died before its first summary was in place.
RUN_FILES = (SUMMARY_TMP, TIMESERIES, LOGS)


def new_folder(base: Path, name: str) -> Path:
    """A new folder `base`/<UTC stamp>-`name`, suffixed -2, -3 ... if the second is taken."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = base / f"{stamp}-{name}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = base / f"{stamp}-{name}-{suffix}"
    path.mkdir(parents=True)
    return path


def killed_marker(run: Path) -> Path:
    return run / KILLED


def logs(run: Path) -> Path:
    return run / LOGS


def engine_logs(run: Path, engine: str) -> Path:
    """An engine row's folder: its label is checked against the names pattern, so it is a
    safe single path component."""
    return logs(run) / engine


def received(run: Path, engine: str) -> Path:
    """The decisions the collector received (load.history.RECEIVED rows)."""
    return engine_logs(run, engine) / "received.npy"


def windows_received(run: Path, engine: str) -> Path:
    """The window results the collector received (load.history.WINDOW_RECEIVED rows)."""
    return engine_logs(run, engine) / "windows.npy"


def records(run: Path, engine: str) -> Path:
    """An engine row's audit archive (--keep-records): every input with where it landed,
    every decision and window result received, every fault injected."""
    return run / RECORDS / engine


def inputs_parquet(run: Path, engine: str) -> Path:
    return records(run, engine) / "inputs.parquet"


def decisions_parquet(run: Path, engine: str) -> Path:
    return records(run, engine) / "decisions.parquet"


def windows_parquet(run: Path, engine: str) -> Path:
    return records(run, engine) / "windows.parquet"


def faults_parquet(run: Path, engine: str) -> Path:
    return records(run, engine) / "faults.parquet"


def result_folder(path: Path) -> Path:
    """The folder of a result given as its folder or as its summary.json, repeat.json or sweep.json."""
    return path.parent if path.is_file() and path.name in (REPEAT, SUMMARY, SWEEP) else path
