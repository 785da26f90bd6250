"""What a run leaves behind if it is killed: nothing.

Every process, container and scratch folder a `showdown` command starts is written to a
record (.cache/runs/<pid>.json) as it starts. A guardian, a small process of its own
session, holds a pipe from the command: the pipe closes when the command dies, however it
dies (SIGKILL and the OOM killer included), and unless the command said it finished, the
guardian stops everything in the record and marks the run's folder as killed. If the
guardian was killed too, the next command does the same at its start (`clean_leftovers`).
A parent-death signal would not do: Linux sends it when the *thread* that forked the child
ends, and the nemesis thread restarts workers.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import psutil
from docker.errors import DockerException

from harness.support.env import child_env
from harness.support.paths import CACHE, ROOT

RECORDS = CACHE / "runs"
RELEASE = b"finished\n"  # what a command that ends normally tells its guardian


def _create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


class Record:
    """This command's record: what it started that still runs, and the run folder it writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {
            "owner": {"pid": os.getpid(), "create_time": _create_time(os.getpid()), "command": sys.argv},
            "killed_marker": None, "processes": {}, "containers": [], "paths": [],
        }
        self._lock = threading.Lock()
        self.write()

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def update(self, key: str, change: Any) -> None:
        with self._lock:
            change(self.data[key])
            self.write()

    def set_killed_marker(self, marker: Path | None) -> None:
        with self._lock:
            self.data["killed_marker"] = str(marker) if marker else None
            self.write()


_record: Record | None = None
_guardian: subprocess.Popen[bytes] | None = None


def guard() -> None:
    """Record what this command starts from now on, and start its guardian (once)."""
    global _record, _guardian
    if _record is not None:
        return
    RECORDS.mkdir(parents=True, exist_ok=True)
    _record = Record(RECORDS / f"{os.getpid()}.json")
    log = open(RECORDS / f"{os.getpid()}.guardian.log", "ab")
    _guardian = subprocess.Popen(
        [sys.executable, "-m", "harness.support.guard", str(_record.path)], stdin=subprocess.PIPE,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
        env=child_env({"PYTHONPATH": str(ROOT)}))
    log.close()


def release() -> None:
    """This command ended and stopped what it started: the guardian leaves, the record goes."""
    global _record, _guardian
    if _guardian is not None and _guardian.stdin is not None:
        try:
            _guardian.stdin.write(RELEASE)
            _guardian.stdin.close()
            _guardian.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        _guardian = None
    if _record is not None:
        _record.path.unlink(missing_ok=True)
        (RECORDS / f"{os.getpid()}.guardian.log").unlink(missing_ok=True)
        _record = None


def remember(name: str, pid: int) -> None:
    if _record is not None:
        entry = {"name": name, "create_time": _create_time(pid)}
        _record.update("processes", lambda p: p.__setitem__(str(pid), entry))


def forget(pid: int) -> None:
    if _record is not None:
        _record.update("processes", lambda p: p.pop(str(pid), None))


def remember_container(container_id: str) -> None:
    if _record is not None:
        _record.update("containers", lambda c: c.append(container_id))


def forget_container(container_id: str) -> None:
    if _record is not None:
        _record.update("containers", lambda c: container_id in c and c.remove(container_id))


def remember_path(path: Path) -> None:
    """A scratch folder (a broker's data) to delete if the command dies."""
    if _record is not None:
        _record.update("paths", lambda p: p.append(str(path)))


def forget_path(path: Path) -> None:
    if _record is not None:
        _record.update("paths", lambda p: str(path) in p and p.remove(str(path)))


def running_in(marker: Path | None) -> None:
    """The marker to write in the run folder the command writes now, if it dies (None:
    between runs, nothing to mark)."""
    if _record is not None:
        _record.set_killed_marker(marker)


def _same(pid: int, create_time: float | None) -> psutil.Process | None:
    """The process `pid` if it is still the one recorded (not a reused PID)."""
    try:
        p = psutil.Process(pid)
        return p if create_time is not None and abs(p.create_time() - create_time) < 0.01 else None
    except psutil.Error:
        return None


def stop_recorded(data: dict[str, Any]) -> list[str]:
    """SIGKILL what a record lists that still runs: each process with its descendants and
    its process group (a group id is never reused while a member lives), remove its
    containers and scratch folders. Returns a line for each thing stopped."""
    stopped = []
    for pid_text, entry in (data.get("processes") or {}).items():
        pid = int(pid_text)
        leader = _same(pid, entry.get("create_time"))
        victims = [leader, *leader.children(recursive=True)] if leader else []
        if leader is None and psutil.pid_exists(pid):
            continue  # the PID now belongs to someone else, and so does any group of that id
        for p in psutil.process_iter(["pid"]):
            try:
                if p.pid != pid and os.getpgid(p.pid) == pid:
                    victims.append(p)
            except (OSError, psutil.Error):
                pass
        killed = 0
        for v in victims:
            try:
                v.kill()
                killed += 1
            except psutil.Error:
                pass
        if killed:
            stopped.append(f"{entry.get('name')} (pid {pid}{f', and {killed - 1} more' if killed > 1 else ''})")
    stopped += [f"container {c[:12]}" for c in _remove_containers(data.get("containers") or [])]
    for path in data.get("paths") or []:
        if Path(path).is_dir():
            shutil.rmtree(path, ignore_errors=True)
    return stopped


def _remove_containers(ids: list[str]) -> list[str]:
    """Remove the containers `ids` that still exist, through the Docker SDK; the removed ones."""
    if not ids:
        return []
    try:
        client = docker.from_env(timeout=60)
    except DockerException:
        return []  # no engine answers: its containers are gone with it
    removed = []
    try:
        for container_id in ids:
            try:
                client.containers.get(container_id).remove(force=True, v=True)
                removed.append(container_id)
            except DockerException:
                pass  # removed already, or the engine is gone with it
    finally:
        client.close()
    return removed


def mark_killed(marker: Path, how: str) -> bool:
    """Write the marker that makes the run folder read as killed (results/read.py)."""
    if not marker.parent.is_dir():
        return False
    marker.write_text(json.dumps({
        "killed_at": datetime.now(UTC).isoformat(),
        "how": f"the harness ended without finishing this run (SIGKILL, a crash, the OOM killer or a second "
               f"Ctrl-C); {how}"}, indent=2))
    return True


def _settle(record: Path, how: str) -> list[str]:
    """Stop what a dead command's record lists, mark its run folder, drop the record."""
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        record.unlink(missing_ok=True)
        return []
    stopped = stop_recorded(data)
    marker = data.get("killed_marker")
    lines = [f"stopped what command pid {data['owner']['pid']} left running: {', '.join(stopped)}"] if stopped else []
    if marker and mark_killed(Path(marker), how):
        lines.append(f"marked {Path(marker).parent} as killed")
    record.unlink(missing_ok=True)
    (record.parent / f"{record.stem}.guardian.log").unlink(missing_ok=True)
    return lines


def clean_leftovers() -> list[str]:
    """At a command's start: settle the records of commands that died with their guardian."""
    lines = []
    for record in sorted(RECORDS.glob("*.json")) if RECORDS.is_dir() else []:
        try:
            owner = json.loads(record.read_text())["owner"]
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)
            continue
        if owner.get("pid") == os.getpid() or _same(int(owner["pid"]), owner.get("create_time")):
            continue  # its command still runs (a second showdown at the same time)
        lines += _settle(record, f"the next command stopped what it left at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    return lines


def _guardian_main(record: Path) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the command
    told = sys.stdin.buffer.read()
    if told == RELEASE:
        return 0
    for line in _settle(record, "its guardian stopped what it had started"):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_guardian_main(Path(sys.argv[1])))
