"""Processes the harness starts: each in its own process group, stopped by PID, always.

Every process started here is registered, so an interrupted run, a failing test or
Ctrl-C still stops exactly what this harness started, and nothing else.
"""
from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Protocol, TypeVar

import psutil

from harness.support import guard
from harness.support.env import child_env
from harness.support.errors import ClusterError


class Worker(Protocol):
    """A process an engine started through the backend: a local process or a container."""

    name: str
    log: Path
    cpu_seconds: float

    @property
    def ident(self) -> str: ...  # "pid 123" or "container 0123abcd", for the record

    def alive(self) -> bool: ...

    def exit_code(self) -> int | None: ...

    def wait(self, timeout_s: float) -> int | None: ...  # the exit code, or None if still running

    def kill(self) -> None: ...  # SIGKILL, as a fault

    def stop(self, grace_s: float = 10.0) -> None: ...

    def kill_matching(self, pattern: str) -> int:
        """SIGKILL the processes inside it whose command line contains `pattern`, with
        their descendants (a Spark executor inside a Worker); returns how many matched."""
        ...


W = TypeVar("W", bound=Worker)

_live: dict[int, ManagedProcess] = {}
_lock = threading.Lock()


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports on 127.0.0.1. All sockets stay bound until every port is
    chosen: a port released at once can be handed out again by the very next bind (two
    listeners of one broker once got the same port)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_taken(log: Path) -> bool:
    """Whether a process failed because a port it was given was taken in the meantime
    (another program bound it between our choice and its start): worth one more try."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return False
    return "Address already in use" in text or "BindException" in text


# A line that names a failure's cause: a Java exception or a Python error.
_CAUSE = re.compile(r"\b(\w+(Exception|Error)|Caused by)\b:")


def tail(path: Path, lines: int = 40) -> str:
    """The log's last `lines` lines; first, its first lines naming an exception when they
    lie above those (a JVM that cannot bind a port logs why, then a long shutdown)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {path})"
    except OSError as e:
        return f"(cannot read {path}: {e.strerror})"
    last = text[-lines:]
    causes = [line for line in text[:-lines] if _CAUSE.search(line)][:5]
    if not causes:
        return "\n".join(last)
    return "\n".join(["first error lines:", *causes, "...", "last lines:", *last])


# The system under test (brokers, engines) runs at this niceness, the instrument (load
# driver, collector, the harness) at the default 0: on a machine with few cores an engine's
# CPU bursts then wait for the instrument, not the other way round, and the engine still
# has every core the instrument leaves idle (README, "Protecting the instrument").
ENGINE_NICE = 10
_engine_nice = ENGINE_NICE


def niced_brokers(replication: int) -> bool:
    """Whether local brokers run at `engine_nice()`: a single broker does; replicated ones do
    not. A replicated write is acknowledged only once a second broker holds it; niced, and
    behind the engine, three brokers on two cores answered in seconds, and the driver's
    idempotent producer, its 5 requests per broker in flight, then spins while it waits
    (librdkafka, every version tried), taking from the brokers the CPU they lacked: a loop
    no run left (at 500 ev/s the driver used 1.4 cores and the engine's p50 was 13 s;
    brokers at 0: 0.2 cores and 264 ms; docs/probes/replicated-produce.md)."""
    return replication == 1


def set_engine_nice(nice: int) -> None:
    """The niceness for processes under test started from now on (0: none)."""
    global _engine_nice
    _engine_nice = nice


def engine_nice() -> int:
    return _engine_nice


def _lower_priority(pid: int, nice: int) -> None:
    """`nice` for the session `pid` leads, as the scheduler weighs it against other sessions.
    With autogroup scheduling (Linux's default on desktops and on this runner) the CPU is
    shared between sessions first, and a process's own niceness counts only within its
    session: a niced engine in a session of its own would still get as much as the whole
    harness, driver and collector together. Without autogroup the file is absent and the
    process's own niceness (`nice -n`) is what counts."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError:
        pass


class ManagedProcess:
    """One started process group with its log file and its CPU time once it has ended.

    `env`: the variables set for it on purpose; of this process's environment it gets only
    the allow-listed ones (support/env.py)."""

    def __init__(self, name: str, argv: Sequence[str], log: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None, under_test: bool = False) -> None:
        """`under_test`: a broker's or an engine's process, run at `engine_nice()`."""
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file: IO[bytes] = open(log, "ab")
        nice = _engine_nice if under_test else 0
        self.popen = subprocess.Popen(
            ["nice", "-n", str(nice), *argv] if nice else list(argv),
            stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=child_env(env), cwd=cwd,
            start_new_session=True,  # own session => own process group, pgid == pid
        )
        self.pid = self.popen.pid
        if nice:
            # Popen returns once the child has exec'd, so its session (and autogroup) exists.
            _lower_priority(self.pid, nice)
        guard.remember(name, self.pid)
        self.started_ns = time.time_ns()
        self.cpu_seconds = 0.0
        self._cpu_by_process: dict[tuple[int, float], float] = {}
        with _lock:
            _live[self.pid] = self

    def alive(self) -> bool:
        return self.popen.poll() is None

    @property
    def ident(self) -> str:
        return f"pid {self.pid}"

    def exit_code(self) -> int | None:
        return self.popen.poll()

    def kill_matching(self, pattern: str) -> int:
        hits, victims = 0, []
        for child in self._descendants():
            try:
                if pattern in " ".join(child.cmdline()):
                    hits += 1
                    victims += [child, *child.children(recursive=True)]
            except psutil.Error:  # a short-lived helper that just ended
                pass
        kill_all(victims)
        return hits

    def wait(self, timeout_s: float) -> int | None:
        """Its exit code once it ends, or None if it still runs after `timeout_s`."""
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL the whole group at once: a crash, as a fault injector wants it."""
        self.sample_cpu()
        strays = self._descendants()
        self._signal_group(signal.SIGKILL)
        kill_all(strays)
        self._reap(timeout=30)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after `grace_s`."""
        self.sample_cpu()
        strays = self._descendants()
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        # Children may outlive the leader (e.g. a JVM's Python workers): kill the group,
        # and the descendants that made themselves a group of their own (Spark's
        # pyspark.daemon does).
        self._signal_group(signal.SIGKILL)
        kill_all(strays)
        self._reap(timeout=30)

    def _descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

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
        guard.forget(self.pid)

    def sample_cpu(self) -> float:
        """CPU seconds used so far by the process and its descendants. Each one's last
        sample is kept, since a killed process (a Spark executor a fault hit, say) can no
        longer be asked, while its replacement starts counting from zero."""
        try:
            leader = psutil.Process(self.pid)
            procs = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return self.cpu_seconds
        for p in procs:
            try:
                t = p.cpu_times()
                self._cpu_by_process[(p.pid, p.create_time())] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        self.cpu_seconds = sum(self._cpu_by_process.values())
        return self.cpu_seconds


def exited_unasked(procs: Sequence[W], handled: set[str]) -> list[W]:
    """Those of `procs` (processes or containers) that died without the harness killing
    them (their idents not in `handled`), each returned once: it is added to `handled`."""
    found = [p for p in procs if p.ident not in handled and not p.alive()]
    handled.update(p.ident for p in found)
    return found


def revive(procs: Sequence[W], handled: set[str], restart: Callable[[W], object], how: str,
           log_lines: int = 5) -> list[str]:
    """The one health routine of a running engine: restart each of `procs` that died
    without the harness killing it (see exited_unasked) and return a line for each, with
    its log's last lines, for the run's record. `how` says what replaced it."""
    events = []
    for p in exited_unasked(procs, handled):
        events.append(f"{p.name} exited by itself (code {p.exit_code()}); {how}. "
                      f"Last log lines:\n{tail(p.log, log_lines)}")
        restart(p)
    return events


def require_alive(proc: Worker | None, what: str) -> None:
    """A process the engine cannot restart (a JobManager, a Master): its death ends the row."""
    if proc is not None and not proc.alive():
        raise ClusterError(f"{what} died; last lines of {proc.log}:\n{tail(proc.log)}")


def kill_all(procs: list[psutil.Process]) -> None:
    """SIGKILL each of `procs` still alive (psutil checks it is the same process, not a
    reused PID)."""
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


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
    guard.forget(p.pid)
