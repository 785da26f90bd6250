"""What engines and the runner need of a Kafka cluster, on any backend."""
from __future__ import annotations

from typing import Protocol

from confluent_kafka.admin import AdminClient


class KafkaCluster(Protocol):
    backend: str  # "local" or "containers"
    bootstrap: str  # host:port list reachable from this host

    @property
    def version(self) -> str: ...

    def start(self, timeout_s: float = 120.0) -> str: ...

    def admin(self) -> AdminClient: ...

    def create_topics(self, partitions: int, names: list[str], config: dict[str, str] | None = None) -> None: ...

    def cpu_seconds(self) -> float: ...

    def describe(self) -> dict[str, object]: ...

    def stop(self) -> None: ...
