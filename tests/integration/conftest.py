from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest

from harness.backends.docker import DAEMON_PID
from harness.support import procs
from harness.support.paths import CACHE


def _ours() -> set[int]:
    """Processes running something from this repo's cache (venvs, jars, scratch), wherever
    they hang in the process tree: an orphan is re-parented to init."""
    found = set()
    for p in psutil.process_iter(["cmdline"]):
        if str(CACHE) in " ".join(p.info["cmdline"] or []):
            found.add(p.pid)
    return found


def _docker_engine_tree() -> set[int]:
    try:
        daemon = psutil.Process(int(DAEMON_PID.read_text()))
        return {daemon.pid, *(c.pid for c in daemon.children(recursive=True))}
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
        return set()


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Every test that starts a cluster leaves nothing running, pass or fail."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    before_ours = _ours()
    try:
        yield
    finally:
        started = [p.pid for p in procs.live()]
        procs.stop_all()
    assert not started, f"processes still registered after the test: {started}"
    # multiprocessing's resource tracker lives as long as this test process, by design; so
    # does a Docker engine the containers backend started (a service, stopped by `down`).
    service = _docker_engine_tree()
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.pid not in service and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline())]
    assert not left, f"processes left running: {[(p.pid, p.cmdline()[:3]) for p in left]}"
    orphans = _ours() - before_ours
    assert not orphans, f"orphaned processes of this run: {[(p, psutil.Process(p).cmdline()[:3]) for p in orphans]}"
