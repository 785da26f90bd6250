"""Which backend a command runs on: chosen once, with the reason kept for the results."""
from __future__ import annotations

from pathlib import Path

from harness.backends import daemon
from harness.backends.base import Backend
from harness.backends.containers import ContainersBackend
from harness.backends.existing import ClusterBackend
from harness.backends.local import LocalBackend
from harness.support.errors import WorkloadError

NAMES = (LocalBackend.name, ContainersBackend.name)
CHOICES = (*NAMES, "auto")


def choose(requested: str | None, cluster: Path | str | None = None) -> Backend:
    """A cluster file's services when one is given; else `auto` takes containers when a
    Docker engine answers or can be started here, and local otherwise."""
    if cluster is not None:
        if requested not in (None, "auto"):
            raise WorkloadError(f"--backend {requested} and --cluster {cluster} are two answers to where the "
                                f"clusters run: give one")
        return ClusterBackend(cluster)
    if requested == LocalBackend.name:
        return LocalBackend()
    if requested == ContainersBackend.name:
        return ContainersBackend()
    reason = daemon.why_not()
    if reason:
        return LocalBackend(f"auto: {reason}")
    return ContainersBackend("auto: a Docker engine is available")
