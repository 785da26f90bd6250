"""The Kafka-transactions architecture: N Python processors in one consumer group,
exactly-once through Kafka transactions (pipelines/kafka/processor.py).

`passthrough` is the same machinery without the rules or the state: the floor that
Kafka, transactions and read_committed impose on every architecture.
"""
from __future__ import annotations

import json
from typing import Any

from confluent_kafka import ConsumerGroupState

from harness.engines.base import EngineContext
from harness.provision.versions import harness_versions
from harness.support import procs
from harness.support.errors import ClusterError
from harness.support.paths import PIPELINES
from harness.support.procs import Worker
from harness.support.wait import wait_until
from harness.workload.engine_options import KINDS, KafkaOptions
from harness.workload.schema import Fault

PROCESSOR = PIPELINES / "kafka" / "processor.py"
# A user's state is one changelog record: 16 bytes per retained event, so a bot holding an
# hour of events at 100 ev/s needs ~6 MB, past Kafka's 1 MB default for a record.
STATE_RECORD_MAX_BYTES = 64 * 2**20


class KafkaTransactionsEngine:
    fault_actions = KINDS["kafka"].faults

    def __init__(self, name: str, options: KafkaOptions, applies_rules: bool) -> None:
        self.name = name
        self.options = options
        self.applies_rules = applies_rules
        self.instances: dict[int, Worker] = {}
        self._started: list[Worker] = []
        self._killed: set[str] = set()  # idents of the processors a fault killed
        self._ctx: EngineContext | None = None

    def prepare(self) -> None:
        if not PROCESSOR.exists():
            raise ClusterError(f"pipeline code missing: {PROCESSOR}")

    def _config(self, instance: int) -> dict[str, Any]:
        assert self._ctx is not None
        wl = self._ctx.workload
        o = self.options
        return {
            "engine": self.name,
            "mode": "fraud" if self.applies_rules else "passthrough",
            "instance": instance,
            "bootstrap": self._ctx.kafka.processor_bootstrap,
            # The cluster's own settings (TLS, SASL); a ${VAR} in them is the processor's to expand.
            "client": self._ctx.kafka.engine_client,
            "input_topic": wl.kafka.transactions_topic,
            "output_topic": wl.kafka.decisions_topic,
            "changelog_topic": wl.changelog_topic,
            "changelog_max_bytes": STATE_RECORD_MAX_BYTES,
            "group_id": f"{self._ctx.names}-{self.name}",
            "transactional_id_prefix": f"{self._ctx.names}-{self.name}",
            "rules": wl.pipeline_rules(),
            "windows": wl.pipeline_windows() if self.applies_rules else None,
            "max_batch": o.max_batch,
            "commit_interval_ms": o.commit_interval_ms,
            "fetch_wait_max_ms": o.fetch_wait_max_ms,
            "transaction_timeout_ms": o.transaction_timeout_ms,
            "session_timeout_ms": o.session_timeout_ms,
            # A processor blocked this long in one call is stuck (librdkafka#5456, #5511:
            # send_offsets_to_transaction ignores its timeout while the group coordinator is
            # down): it dumps its stacks and exits, and is restarted. Longer than any call
            # that is only slow, each bounded by the transaction timeout.
            "watchdog_s": max(15.0, 1.5 * o.transaction_timeout_ms / 1000),
        }

    def _launch(self, instance: int) -> None:
        assert self._ctx is not None
        proc = self._ctx.kafka.launch_python(
            f"{self.name}-processor-{instance}", PROCESSOR, [json.dumps(self._config(instance))],
            self._ctx.log_dir / f"{self.name}-processor-{instance}.log", {},
            cpus=self.options.cpus, memory_mb=self.options.memory_mb)
        self.instances[instance] = proc
        self._started.append(proc)

    def start(self, ctx: EngineContext) -> None:
        self._ctx = ctx
        wl = ctx.workload
        if self.options.parallelism > wl.kafka.partitions:
            raise ClusterError(f"engines.{self.name}.parallelism ({self.options.parallelism}) exceeds "
                               f"kafka.partitions ({wl.kafka.partitions}): the extra processors would idle")
        if self.applies_rules:
            ctx.kafka.create_topics(wl.kafka.partitions, [wl.changelog_topic],
                                    {"cleanup.policy": "compact", "max.message.bytes": str(STATE_RECORD_MAX_BYTES)})
        for i in range(self.options.parallelism):
            self._launch(i)
        self._await_group(timeout_s=90)

    def _await_group(self, timeout_s: float) -> None:
        """Ready when the group is stable with every processor holding partitions."""
        assert self._ctx is not None
        group = self._config(0)["group_id"]
        admin = self._ctx.kafka.admin()

        def stable() -> bool:
            desc = admin.describe_consumer_groups([group])[group].result(timeout=5)
            return desc.state == ConsumerGroupState.STABLE and len(desc.members) == len(self.instances) and all(
                m.assignment.topic_partitions for m in desc.members)

        # Describing a group fails until its first member joins.
        wait_until(stable, timeout_s, f"the {self.name} processors to form a stable group",
                   watch=self.instances.values(), retry_on=(Exception,))

    def inject(self, fault: Fault) -> str:
        instance = fault.instance % len(self.instances)
        self._killed.add(self.instances[instance].ident)
        self.instances[instance].kill()
        return f"{self.name}-processor-{instance} ({self.instances[instance].ident})"

    def recover(self, fault: Fault) -> None:
        instance = fault.instance % len(self.instances)
        self._launch(instance)

    def check_health(self) -> list[str]:
        index = {proc.ident: i for i, proc in self.instances.items()}

        def restart(proc: Worker) -> None:
            proc.stop()
            self._launch(index[proc.ident])

        return procs.revive(list(self.instances.values()), self._killed, restart, "restarted")

    def stop(self) -> None:
        for proc in self.instances.values():
            proc.stop(grace_s=10)

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self._started)

    def describe(self) -> dict[str, Any]:
        v = harness_versions()
        return {
            "engine": self.name,
            "architecture": "Python consume-transform-produce processors with Kafka transactions"
                            + ("" if self.applies_rules else " (no rules, no state: the floor)"),
            "versions": {"confluent-kafka": v["confluent-kafka"], "librdkafka": v["librdkafka"], "python": v["python"]},
            "options": self.options.model_dump(),
            "delivery": "exactly-once (transactions + read_committed)",
        }
