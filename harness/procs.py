"""Processes the harness starts: each in its own process group, stopped by PID, always.

Every process started here is registered, so an interrupted run, a failing test or
Ctrl-C still stops exactly what this harness started, and nothing else.
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

_live: dict[int, ManagedProcess] = {}
_lock = threading.Lock()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


class ManagedProcess:
    """One started process group with its log file and its CPU time once it has ended."""

    def __init__(self, name: str, argv: Sequence[str], log: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file: IO[bytes] = open(log, "ab")
        self.popen = subprocess.Popen(
            list(argv), stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None, cwd=cwd,
            start_new_session=True,  # own session => own process group, pgid == pid
        )
        self.pid = self.popen.pid
        self.started_ns = time.time_ns()
        self.cpu_seconds = 0.0
        with _lock:
            _live[self.pid] = self

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group at once: a crash, as a fault injector wants it."""
        self.sample_cpu()
        self._signal_group(signal.SIGKILL)
        self._reap(timeout=30)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after `grace_s`."""
        self.sample_cpu()
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        # Children may outlive the leader (e.g. a JVM's Python workers): kill the group.
        self._signal_group(signal.SIGKILL)
        self._reap(timeout=30)

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self, timeout: float) -> None:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self._log_file.close()
        with _lock:
            _live.pop(self.pid, None)

    def sample_cpu(self) -> float:
        """CPU seconds used so far by the group's live processes. Kept as the high-water
        mark, since a killed process can no longer be asked."""
        import psutil

        try:
            leader = psutil.Process(self.pid)
            procs = [leader, *leader.children(recursive=True)]
            total = 0.0
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            self.cpu_seconds = max(self.cpu_seconds, total)
        except psutil.NoSuchProcess:
            pass
        return self.cpu_seconds


class CpuSampler:
    """Samples the CPU time of managed processes every `interval_s`, so that a process
    killed by a fault still counts what it used up to its last sample."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for p in live():
                p.sample_cpu()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def live() -> list[ManagedProcess]:
    with _lock:
        return list(_live.values())


def stop_all() -> None:
    for p in live():
        p.stop(grace_s=5)


atexit.register(stop_all)


def detach(p: ManagedProcess) -> None:
    """Leave `p` running when this program exits (for `showdown up`)."""
    with _lock:
        _live.pop(p.pid, None)
