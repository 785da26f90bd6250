"""The one small interface every engine implements."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.backends.base import KafkaCluster
from harness.workload.schema import Fault, Workload


@dataclass(frozen=True)
class EngineContext:
    workload: Workload
    kafka: KafkaCluster
    log_dir: Path  # the run's folder for this engine's logs
    # The start of every name the engine creates on Kafka (consumer groups, transactional
    # ids) and of its job's name: unique per run (KafkaCluster.names).
    names: str


class Engine(Protocol):
    name: str
    # False for engines that copy records without the fraud rules (the checker then
    # judges only missing and duplicate decisions).
    applies_rules: bool

    def prepare(self) -> None:
        """Install what the engine needs (jars, venvs); fast when already cached."""

    def start(self, ctx: EngineContext) -> None:
        """Deploy the pipeline and return once it consumes from the input topic."""

    # The faults this engine can take, as `action:target` (workload `faults[]`).
    fault_actions: frozenset[str]

    def inject(self, fault: Fault) -> str:
        """Inject `fault` (e.g. kill -9 its target); returns what was hit, for the record."""

    def recover(self, fault: Fault) -> None:
        """Undo it as operations would: restart the killed process, resubmit the job."""

    def check_health(self) -> list[str]:
        """Restart anything that died on its own; return a line for each, for the record."""

    def stop(self) -> None:
        """Stop everything the engine started; safe to call twice or after a failed start."""

    def cpu_seconds(self) -> float | None:
        """CPU seconds used by the engine's processes (also those killed by faults); None:
        not measured (a cluster the run did not start, whose file gives no `cpu` command)."""

    def describe(self) -> dict[str, Any]:
        """Versions and effective settings, recorded with every result."""
