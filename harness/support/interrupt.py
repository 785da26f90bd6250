"""Ctrl-C and SIGTERM: the first stops the run cleanly, a second always ends the command.

The first raises KeyboardInterrupt in the main thread, so every `finally` stops what it
started. A Python signal handler only runs when the main thread gets back to Python code,
and a client library's shutdown can block in native code for good; so a thread, woken
through the signal module's wakeup fd, counts the signals too and on the second one kills
every process group this command started and exits at once (the guardian then removes
containers and scratch folders and marks the run folder)."""
from __future__ import annotations

import os
import signal
import socket
import threading
from types import FrameType

from harness.support import procs
from harness.support.console import console

EXIT_CODE = 130
_first_seen = threading.Event()
_wakeup: list[socket.socket] = []  # kept open for the life of the process


def _handler(signum: int, frame: FrameType | None) -> None:
    if not _first_seen.is_set():
        _first_seen.set()
        raise KeyboardInterrupt


def _emergency() -> None:
    victims = procs.live()
    for p in victims:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    console.print(f"\n[red]second interrupt: killed {len(victims)} process group(s) this command started; "
                  f"exiting now[/]")
    os._exit(EXIT_CODE)


def _watch(wakeup: socket.socket) -> None:
    seen = 0
    while True:
        try:
            data = wakeup.recv(64)
        except OSError:
            return
        seen += sum(1 for b in data if b in (signal.SIGINT, signal.SIGTERM))
        if seen >= 2:
            _emergency()


def install() -> None:
    """From the main thread, before anything starts; once is enough."""
    if _wakeup:
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    _wakeup[:] = [reader, writer]
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    threading.Thread(target=_watch, args=(reader,), name="second-interrupt", daemon=True).start()
