"""One way to wait for something to be ready (the testcontainers idea): poll a probe,
and fail fast, with the log's last lines, as soon as a process it depends on has died,
instead of waiting out the timeout and blaming the wrong thing."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, TypeVar

from harness.support.errors import ClusterError
from harness.support.procs import tail

T = TypeVar("T")


class Watched(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def log(self) -> Path | None: ...  # None: a process that writes no log of its own

    def alive(self) -> bool: ...


def wait_until(probe: Callable[[], T | None], timeout_s: float, what: str, watch: Iterable[Watched | None] = (),
               log: Path | None = None, retry_on: tuple[type[Exception], ...] = (), interval_s: float = 0.5,
               error: type[Exception] = ClusterError) -> T:
    """The probe's first truthy answer; `what` names what is awaited in the messages.

    Before each try, every process in `watch` must be alive; the first one found dead
    ends the wait with its own log. `retry_on`: exceptions that mean "not yet" (a REST
    port not listening). A probe raises anything else to give up at once (a job that
    FAILED). On timeout the message shows `log`, else the first watched process's log."""
    watched = [p for p in watch if p is not None]
    deadline = time.monotonic() + timeout_s
    while True:
        for p in watched:
            if not p.alive():
                last = f"; last lines of {p.log}:\n{tail(p.log)}" if p.log else ""
                raise error(f"{p.name} exited while waiting for {what}{last}")
        try:
            answer = probe()
        except retry_on:
            answer = None
        if answer:
            return answer
        if time.monotonic() > deadline:
            shown = log or next((p.log for p in watched if p.log), None)
            more = f"; last lines of {shown}:\n{tail(shown)}" if shown else ""
            raise error(f"timed out after {timeout_s:.0f} s waiting for {what}{more}")
        time.sleep(interval_s)
