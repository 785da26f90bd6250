"""Disturbance (docs/spec.md, section 4): the CPU that processes outside the run used while it
measured. A latency measured beside a busy neighbour is not evidence."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from harness.results.schema import Disturbance

# Over this share of the machine's CPU capacity used by others, a run is disturbed.
DISTURBED_SHARE = 0.05
SAMPLE_INTERVAL_S = 1.0


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


def run_pids(procs: dict[tuple[int, float], _Proc], root: int, daemons: frozenset[str],
             also: Iterable[int] = ()) -> set[int]:
    """The run's processes: `root` (the harness) and its descendants, the backend's `daemons`
    (by name: the Docker engine's) and theirs, which counts every container as the run's (one
    the run did not start, too), and `also` (processes already known to be the run's) and theirs."""
    children: dict[int, list[int]] = {}
    for (pid, _), p in procs.items():
        children.setdefault(p.ppid, []).append(pid)
    todo = [root, *also, *(pid for (pid, _), p in procs.items() if p.name in daemons)]
    ours: set[int] = set()
    while todo:
        pid = todo.pop()
        if pid not in ours:
            ours.add(pid)
            todo.extend(children.get(pid, []))
    return ours


class OtherCpu:
    """Samples every process once a second, from `start` to `stop`, and adds up what the ones
    outside the run used, from their own accounting: each process with what it used itself
    and what the children it reaped used (so a burst of short commands under a shell counts,
    through the shell). The machine's own busy time (/proc/stat) is not used: on this
    runner's kernel it disagrees with the processes' accounting by seconds per 10 s, in
    both directions, which swamps a 5 % threshold.

    A process counts from its value at the start (0 if born later) to its last sample. One
    that exits is counted once: left out if an outside process that reaps it is alive (its
    time moves into that parent's children's time), and if it was the run's and was reaped
    by init, its time is taken off init's, where it lands."""

    def __init__(self, daemons: frozenset[str] = frozenset(), root: int | None = None) -> None:
        self.daemons = daemons
        self.root = os.getpid() if root is None else root
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last: dict[tuple[int, float], _Proc] = {}
        self._ours_last: set[tuple[int, float]] = set()
        self._base: dict[tuple[int, float], float] = {}  # an outsider's total when first seen
        self._gone_s = 0.0  # what outsiders that exited used, net of what a living parent took over
        self._used: dict[tuple[int, float], tuple[str, float]] = {}  # outsiders' own use, for `busiest`
        self._started = False
        self._load: list[float] = []
        self._t0 = 0.0

    def _sample(self) -> float:
        """What processes outside the run used since `start`, in CPU seconds."""
        procs = _scan()
        # A process of the run stays the run's when its parent dies and init adopts it (the
        # executors of a killed Spark Worker): else its whole CPU time would count as a
        # neighbour's, from zero (measured: a quiet smoke run read 30 % disturbed).
        pids = run_pids(procs, self.root, self.daemons, (k[0] for k in self._ours_last & procs.keys()))
        ours = {k for k in procs if k[0] in pids}
        living = {k[0] for k in procs}
        with self._lock:
            for key in self._last.keys() - procs.keys():
                gone = self._last[key]
                if key in self._ours_last:
                    if gone.ppid == 1 and 1 not in pids:
                        self._gone_s -= gone.total_s  # about to show in init's children's time
                    continue
                if gone.ppid in living and gone.ppid not in pids:
                    self._gone_s -= self._base.get(key, 0.0)  # its parent's children's time takes it all
                else:
                    self._gone_s += gone.total_s - self._base.get(key, 0.0)
            for key, p in procs.items():
                if key not in ours:
                    born_since = self._started  # the start's sample saw every process alive then
                    self._base.setdefault(key, 0.0 if born_since else p.total_s)
                    first = self._used.get(key, (p.name, p.own_s if not born_since else 0.0))[1]
                    self._used[key] = (p.name, first)
            self._last, self._ours_last = procs, ours
            return self._gone_s + sum(p.total_s - self._base[k] for k, p in procs.items() if k not in ours)

    def start(self) -> None:
        self._load = [round(v, 2) for v in os.getloadavg()]
        self._t0 = time.monotonic()
        self._sample()
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
        other = max(0.0, self._sample())
        capacity = (time.monotonic() - self._t0) * (os.cpu_count() or 1)
        last = {k: p.own_s for k, p in self._last.items()}
        used = sorted(((last.get(k, first) - first, f"{name} ({k[0]})") for k, (name, first) in self._used.items()
                       if k in last), reverse=True)
        share = other / capacity if capacity > 0 else 0.0
        return Disturbance(
            other_cpu_s=round(other, 2), capacity_cpu_s=round(capacity, 1), share=round(share, 4),
            disturbed=share > DISTURBED_SHARE,
            busiest=[f"{name}: {s:.1f} s" for s, name in used[:3] if s >= 0.05], load_average=self._load,
        )
