"""Writing a run's folder (layout.py): its metadata, its summary after every engine, its time series."""
from __future__ import annotations

import csv
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from harness.provision.versions import harness_versions, pinned
from harness.results import layout
from harness.results.schema import EngineResult, Metadata, RecordedWorkload, Summary
from harness.support.paths import ROOT
from harness.workload.schema import Workload


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    return {"commit": git("rev-parse", "HEAD") or "unknown", "dirty": bool(git("status", "--porcelain"))}


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def metadata(workload_path: str, workload_text: str, wl: Workload, backend: str, backend_note: str) -> Metadata:
    return Metadata(
        versions={**harness_versions(), "pinned": pinned()}, backend=backend, backend_note=backend_note,
        machine=machine(),
        workload=RecordedWorkload(path=workload_path, seed=wl.seed, text=workload_text, parsed=wl),
        git=git_commit(), command=list(sys.argv),
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
        tmp = self.path / (layout.SUMMARY + ".tmp")
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
