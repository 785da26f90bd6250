"""Writing a run's folder (layout.py): its metadata, its summary after every engine, its time series."""
from __future__ import annotations

import csv
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from harness.provision.versions import harness_versions, pinned
from harness.results import layout
from harness.results.schema import EngineResult, Metadata, RecordedWorkload, Summary
from harness.support.errors import StorageError, storage_error
from harness.support.machine import facts
from harness.support.paths import ROOT
from harness.workload.schema import Workload

# A run's logs and histories take hundreds of MB; under this, one would fail midway.
MIN_FREE_GIB = 1.0


def check_room(base: Path, min_free_gib: float = MIN_FREE_GIB) -> None:
    """Before anything starts: refuse a results folder that could not be created or written,
    or whose disk has less than `min_free_gib` free. Met midway, either fails whatever writes
    at that moment (a broker, say), whose error then hides the cause. Creates nothing."""
    # The folder, or the nearest existing one it would be created in.
    existing = next(p for p in (base.absolute(), *base.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise StorageError(f"{existing}: a file, where the results folder {base} would go: move it, or write "
                           f"elsewhere with --results")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
        free = shutil.disk_usage(existing).free / 2**30
    except OSError as e:
        raise storage_error(e) or StorageError(f"{existing}: cannot write results there: {e.strerror}") from None
    if free < min_free_gib:
        raise StorageError(f"{existing}: only {free:.2f} GiB free on its disk, a run needs {min_free_gib:g} GiB: free "
                           f"some space (old run folders, for one) or write elsewhere with --results")


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD") or "unknown", "dirty": bool(git("status", "--porcelain"))}


def machine() -> dict[str, Any]:
    """The machine as the run starts (pyperf's metadata): what may change a figure."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        **facts(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def metadata(workload_path: str, workload_text: str, wl: Workload, backend: str, backend_note: str,
             instrument: dict[str, Any], cluster: dict[str, Any] | None = None) -> Metadata:
    """`instrument`: how the backend keeps the driver and collector from being starved;
    `cluster`: the cluster file of a run on existing clusters, redacted."""
    return Metadata(
        versions={**harness_versions(), "pinned": pinned()}, backend=backend, backend_note=backend_note,
        machine=machine(),
        workload=RecordedWorkload(path=workload_path, seed=wl.seed, text=workload_text, parsed=wl),
        git=git_commit(), command=list(sys.argv), instrument=instrument, cluster=cluster,
    )


TIMESERIES_FIELDS = ["engine", "second", "offered", "driver_max_lag_ms", "received", "p50_ms", "p99_ms", "backlog"]


class RunDir:
    """One run's folder. The summary is rewritten after every engine, marked partial
    until the run completes, so an interrupted run still leaves what it measured."""

    def __init__(self, base: Path, workload_name: str, meta: Metadata) -> None:
        self.path = layout.new_folder(base, workload_name)
        self.summary = Summary(status="partial", started_at=datetime.now(UTC).isoformat(),
                               workload_name=workload_name, metadata=meta)

    @property
    def logs(self) -> Path:
        return layout.logs(self.path)

    def add(self, result: EngineResult) -> None:
        self.summary.engines.append(result)
        self.write()

    def write(self) -> None:
        tmp = self.path / layout.SUMMARY_TMP
        tmp.write_text(self.summary.model_dump_json(indent=2))
        tmp.replace(self.path / layout.SUMMARY)

    def finish(self, status: str, error: str | None = None) -> None:
        self.summary.status = "complete" if status == "complete" else "partial"
        self.summary.finished_at = datetime.now(UTC).isoformat()
        if error:
            self.summary.error = error
        self.write()

    def append_timeseries(self, engine: str, rows: list[dict[str, Any]]) -> None:
        path = self.path / layout.TIMESERIES
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=TIMESERIES_FIELDS)
            if new:
                w.writeheader()
            for row in rows:
                w.writerow({"engine": engine, **row})
