"""The machine a run shares: the facts recorded beside every result (pyperf's metadata).
What other processes used of it while a run measured is run/disturbance.py."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cgroup_cpu_limit() -> str | None:
    """This process's cgroup CPU limit as cgroup v2's `cpu.max` says it: "<quota> <period>"
    in µs, "max <period>" for none; read from v1's CFS quota on a v1 (or hybrid) host."""
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            return _read(f"/sys/fs/cgroup{path}/cpu.max")
        if "cpu" in controllers.split(","):
            base = f"/sys/fs/cgroup/{controllers}{path}"
            quota, period = _read(f"{base}/cpu.cfs_quota_us"), _read(f"{base}/cpu.cfs_period_us")
            if quota and period:
                return f"{'max' if quota == '-1' else quota} {period}"
    return None


def facts() -> dict[str, Any]:
    """What may change a figure on this machine, where it can be read; None where not."""
    cpu_model = None
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "kernel": platform.release(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "cgroup_cpu_max": _cgroup_cpu_limit(),
        # 1: the scheduler shares the CPU between sessions first (see procs._lower_priority).
        "sched_autogroup": _read("/proc/sys/kernel/sched_autogroup_enabled"),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
