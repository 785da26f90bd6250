"""The machine a run shares: the facts recorded beside every result (pyperf's metadata) and
the CPU that processes outside the run used while it measured (disturbance, docs/spec.md
section 4): a latency measured beside a busy neighbour is not evidence."""
from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

# Over this share of the machine's CPU capacity used by others, a run is disturbed.
DISTURBED_SHARE = 0.05
# With the containers backend the Docker engine works for the run: its daemons, and every
# container under them, count as the run's (a container the run did not start, too).
DOCKER_DAEMONS = frozenset({"dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy"})
SAMPLE_INTERVAL_S = 1.0


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


def busy_cpu_s() -> float:
    """CPU seconds the machine's tasks have used since boot (user, nice, system): what any
    process's own accounting can add up to, without interrupt time or a hypervisor's steal."""
    fields = (_read("/proc/stat") or "cpu 0 0 0").splitlines()[0].split()
    return sum(int(v) for v in fields[1:4]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class _Proc:
    ppid: int
    name: str
    own_s: float  # its own user + system time
    total_s: float  # with the children it reaped


def _scan() -> dict[tuple[int, float], _Proc]:
    out = {}
    for p in psutil.process_iter(["ppid", "name", "cpu_times", "create_time"]):
        t = p.info["cpu_times"]
        if t is None or p.info["create_time"] is None:
            continue  # gone while listed, or not ours to read
        own = t.user + t.system
        out[(p.pid, p.info["create_time"])] = _Proc(p.info["ppid"] or 0, p.info["name"] or "", own,
                                                   own + t.children_user + t.children_system)
    return out


def run_pids(procs: dict[tuple[int, float], _Proc], root: int, docker: bool) -> set[int]:
    """The run's processes: `root` (the harness) and its descendants, and with `docker` the
    Docker daemons and theirs."""
    children: dict[int, list[int]] = {}
    for (pid, _), p in procs.items():
        children.setdefault(p.ppid, []).append(pid)
    todo = [root] + ([pid for (pid, _), p in procs.items() if p.name in DOCKER_DAEMONS] if docker else [])
    ours: set[int] = set()
    while todo:
        pid = todo.pop()
        if pid not in ours:
            ours.add(pid)
            todo.extend(children.get(pid, []))
    return ours


@dataclass(frozen=True)
class Disturbance:
    other_cpu_s: float  # used by processes outside the run during the window
    capacity_cpu_s: float  # the window's length times the machine's CPUs
    share: float
    disturbed: bool
    busiest: list[str]  # the outside processes that used the most, "name (pid): seconds"
    load_average: list[float]  # at the window's start


class OtherCpu:
    """Samples every process once a second, from `start` to `stop`, and tells what the ones
    outside the run used. The run's share is added up from the processes alive at each
    sample, each with what it used itself and what the children it reaped used, so a killed
    and reaped process (a fault's target, a short `docker inspect`) still counts as the
    run's; one that dies unreaped by the run counts up to its last sample. The rest of the
    machine's busy time is the others'."""

    def __init__(self, docker: bool, root: int | None = None) -> None:
        self.docker = docker
        self.root = os.getpid() if root is None else root
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last: dict[tuple[int, float], _Proc] = {}
        self._ours_last: set[tuple[int, float]] = set()
        self._gone_ours_s = 0.0  # what run processes no run process reaped used
        self._others_first: dict[tuple[int, float], float] = {}
        self._others_last: dict[tuple[int, float], _Proc] = {}
        self._started = False
        self._since = 0.0
        self._load: list[float] = []
        self._t0 = 0.0
        self._ours0 = self._busy0 = 0.0

    def _sample(self) -> tuple[float, float]:
        """(the run's CPU seconds so far, the machine's busy seconds), as of now."""
        busy = busy_cpu_s()
        procs = _scan()
        pids = run_pids(procs, self.root, self.docker)
        ours = {k for k in procs if k[0] in pids}
        with self._lock:
            for key in self._ours_last - procs.keys():
                gone = self._last[key]
                if gone.ppid not in pids:  # reaped by init, not into a run process's children's time
                    self._gone_ours_s += gone.total_s
            for key, p in procs.items():
                if key not in ours:
                    self._others_first.setdefault(key, 0.0 if self._started and key[1] >= self._since else p.own_s)
                    self._others_last[key] = p  # kept after it exits: the busiest may be gone by the end
            self._last, self._ours_last = procs, ours
            return sum(procs[k].total_s for k in ours) + self._gone_ours_s, busy

    def start(self) -> None:
        self._since = time.time()
        self._load = [round(v, 2) for v in os.getloadavg()]
        self._t0 = time.monotonic()
        self._ours0, self._busy0 = self._sample()
        self._started = True
        self._thread = threading.Thread(target=self._run, name="other-cpu", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._sample()

    def stop(self) -> Disturbance:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        ours, busy = self._sample()
        capacity = (time.monotonic() - self._t0) * (os.cpu_count() or 1)
        other = max(0.0, (busy - self._busy0) - (ours - self._ours0))
        used = sorted(((p.own_s - self._others_first.get(k, p.own_s), f"{p.name} ({k[0]})")
                       for k, p in self._others_last.items()), reverse=True)
        share = other / capacity if capacity > 0 else 0.0
        return Disturbance(
            other_cpu_s=round(other, 2), capacity_cpu_s=round(capacity, 1), share=round(share, 4),
            disturbed=share > DISTURBED_SHARE,
            busiest=[f"{name}: {s:.1f} s" for s, name in used[:3] if s >= 0.05], load_average=self._load,
        )
