"""What engines and the runner need of a Kafka cluster, on any backend."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from confluent_kafka.admin import AdminClient

from harness.support.procs import Worker


class Launcher(Protocol):
    """Starts the processes of an engine's cluster (wheel.py) on one backend. Paths are
    the same on both sides of it: containers mount what they share at the host's paths."""

    backend: str
    bind: str  # the address servers bind to
    home: Path  # the distribution inside the engine's wheel, as the processes see it
    wheel_home: Path  # the same distribution on this host, to read its default config from
    python: Path  # the engine runtime's python, as the processes see it

    def address(self, alias: str) -> str: ...  # how the other processes reach the one named `alias`

    def jar(self, jar: Path) -> Path: ...  # where a jar the harness resolved is, as the processes see it

    def share(self, path: Path) -> None: ...  # make a host folder visible (read-write) to the processes

    def launch(self, name: str, argv: Sequence[str], log: Path, env: Mapping[str, str], cpus: float,
               memory_mb: int, alias: str | None = None, publish: Sequence[int] = ()) -> Worker:
        """Start one process. `alias`: the name others reach it by; `publish`: ports this
        host must reach on 127.0.0.1; `cpus`/`memory_mb`: a container's limits."""
        ...

    def describe(self) -> dict[str, object]: ...


class KafkaCluster(Protocol):
    backend: str  # "local" or "containers"
    bootstrap: str  # host:port list reachable from this host
    engine_bootstrap: str  # the same brokers as the engine's own processes reach them

    def launch_python(self, name: str, script: Path, args: Sequence[str], log: Path, env: Mapping[str, str],
                      cpus: float, memory_mb: int) -> Worker:
        """Run pipeline code (a script under pipelines/, which it may import from) beside the
        brokers: a local process, or a container on their network with those limits."""
        ...

    @property
    def version(self) -> str: ...

    def start(self, timeout_s: float = 120.0) -> str: ...

    def admin(self) -> AdminClient: ...

    def create_topics(self, partitions: int, names: list[str], config: dict[str, str] | None = None) -> None: ...

    def cpu_seconds(self) -> float: ...

    def kill_broker(self, instance: int) -> str: ...  # SIGKILL, as a fault; returns what was hit

    def restart_broker(self, instance: int) -> None: ...  # the same node again, on its data

    def check_health(self) -> None: ...  # raises ClusterError if a broker exited without a fault

    def describe(self) -> dict[str, object]: ...

    def stop(self) -> None: ...
