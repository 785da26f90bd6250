"""What engines and the runner need of a Kafka cluster, on any backend."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from confluent_kafka.admin import AdminClient


class Worker(Protocol):
    """A process an engine started through the backend: a local process or a container."""

    name: str
    log: Path
    cpu_seconds: float

    @property
    def ident(self) -> str: ...  # "pid 123" or "container 0123abcd", for the record

    def alive(self) -> bool: ...

    def exit_code(self) -> int | None: ...

    def kill(self) -> None: ...  # SIGKILL, as a fault

    def stop(self, grace_s: float = 10.0) -> None: ...


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

    def describe(self) -> dict[str, object]: ...

    def stop(self) -> None: ...
