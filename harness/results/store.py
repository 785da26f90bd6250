"""Run output: results/<timestamp>-<workload>/ with summary.json, timeseries.csv, logs."""
from __future__ import annotations

import csv
import json
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import yaml

from harness.provision.versions import harness_versions, pinned
from harness.support.paths import ROOT


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


def metadata(workload_path: str, workload_text: str, seed: int, backend: str) -> dict[str, Any]:
    return {
        "versions": {**harness_versions(), "pinned": pinned()},
        "backend": backend,
        "machine": machine(),
        "workload": {"path": workload_path, "seed": seed, "text": workload_text},
        "git": git_commit(),
        "command": sys.argv,
    }


class RunDir:
    """One run's folder. The summary is rewritten after every engine, marked partial
    until the run completes, so an interrupted run still leaves what it measured."""

    def __init__(self, base: Path, workload_name: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.path = base / f"{stamp}-{workload_name}"
        suffix = 1
        while self.path.exists():
            suffix += 1
            self.path = base / f"{stamp}-{workload_name}-{suffix}"
        self.path.mkdir(parents=True)
        self.summary: dict[str, Any] = {"status": "partial", "started_at": datetime.now(UTC).isoformat(),
                                        "engines": []}

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def write(self) -> None:
        tmp = self.path / "summary.json.tmp"
        tmp.write_text(json.dumps(self.summary, indent=2, default=str))
        tmp.replace(self.path / "summary.json")

    def finish(self, status: str, error: str | None = None) -> None:
        self.summary["status"] = status
        self.summary["finished_at"] = datetime.now(UTC).isoformat()
        if error:
            self.summary["error"] = error
        self.write()

    def append_timeseries(self, engine: str, rows: list[dict[str, Any]]) -> None:
        path = self.path / "timeseries.csv"
        fields = ["engine", "second", "offered", "driver_max_lag_ms", "received", "p50_ms", "p99_ms", "backlog"]
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            if new:
                w.writeheader()
            for row in rows:
                w.writerow({"engine": engine, **row})


def recorded_workload(metadata: dict[str, Any]) -> dict[str, Any]:
    """The fields of the workload file a run recorded ({} if none or unreadable)."""
    text = metadata.get("workload", {}).get("text")
    try:
        fields = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return {}
    return fields if isinstance(fields, dict) else {}


def load_summary(path: Path) -> dict[str, Any]:
    target = path / "summary.json" if path.is_dir() else path
    return json.loads(target.read_text())
