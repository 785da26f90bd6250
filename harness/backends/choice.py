"""Which backend a command runs on: chosen once, with the reason kept for the results."""
from __future__ import annotations

from harness.backends import daemon
from harness.backends.base import Backend
from harness.backends.containers import ContainersBackend
from harness.backends.local import LocalBackend

NAMES = (LocalBackend.name, ContainersBackend.name)
CHOICES = (*NAMES, "auto")


def choose(requested: str) -> Backend:
    """`auto` takes containers when a Docker engine answers or can be started here, else local."""
    if requested == LocalBackend.name:
        return LocalBackend()
    if requested == ContainersBackend.name:
        return ContainersBackend()
    reason = daemon.why_not()
    if reason:
        return LocalBackend(f"auto: {reason}")
    return ContainersBackend("auto: a Docker engine is available")
