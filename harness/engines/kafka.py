"""The Kafka-transactions architecture: N Python processors in one consumer group,
exactly-once through Kafka transactions (pipelines/kafka/processor.py).

`passthrough` is the same machinery without the rules or the state: the floor that
Kafka, transactions and read_committed impose on every architecture.
"""
from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import ConsumerGroupState

from harness.engines.base import EngineContext
from harness.provision.versions import harness_versions
from harness.support.errors import ClusterError
from harness.support.paths import PIPELINES
from harness.support.procs import Worker, tail
from harness.workload.engine_options import KINDS, KafkaOptions
from harness.workload.schema import Fault

PROCESSOR = PIPELINES / "kafka" / "processor.py"


class KafkaTransactionsEngine:
    fault_actions = KINDS["kafka"].faults

    def __init__(self, name: str, options: KafkaOptions, applies_rules: bool) -> None:
        self.name = name
        self.options = options
        self.applies_rules = applies_rules
        self.instances: dict[int, Worker] = {}
        self._started: list[Worker] = []
        self._killed: set[int] = set()
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
            "bootstrap": self._ctx.kafka.engine_bootstrap,
            "input_topic": wl.kafka.transactions_topic,
            "output_topic": wl.kafka.decisions_topic,
            "changelog_topic": wl.changelog_topic,
            "group_id": f"showdown-{self.name}-{self._ctx.run_id}",
            "transactional_id_prefix": f"showdown-{self.name}-{self._ctx.run_id}",
            "rules": wl.pipeline_rules(),
            "windows": wl.pipeline_windows() if self.applies_rules else None,
            "max_batch": o.max_batch,
            "commit_interval_ms": o.commit_interval_ms,
            "fetch_wait_max_ms": o.fetch_wait_max_ms,
            "transaction_timeout_ms": o.transaction_timeout_ms,
            "session_timeout_ms": o.session_timeout_ms,
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
            ctx.kafka.create_topics(wl.kafka.partitions, [wl.changelog_topic], {"cleanup.policy": "compact"})
        for i in range(self.options.parallelism):
            self._launch(i)
        self._await_group(timeout_s=90)

    def _await_group(self, timeout_s: float) -> None:
        """Ready when the group is stable with every processor holding partitions."""
        assert self._ctx is not None
        group = self._config(0)["group_id"]
        admin = self._ctx.kafka.admin()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for proc in self.instances.values():
                if not proc.alive():
                    raise ClusterError(f"{proc.name} exited while starting; "
                                       f"last lines of {proc.log}:\n{tail(proc.log)}")
            try:
                desc = admin.describe_consumer_groups([group])[group].result(timeout=5)
                if desc.state == ConsumerGroupState.STABLE and len(desc.members) == len(self.instances) and all(
                        m.assignment.topic_partitions for m in desc.members):
                    return
            except Exception:  # the group does not exist until the first member joins
                pass
            time.sleep(0.5)
        proc = next(iter(self.instances.values()))
        raise ClusterError(f"the {self.name} processors did not form a stable group within {timeout_s:.0f} s; "
                           f"last lines of {proc.log}:\n{tail(proc.log)}")

    def inject(self, fault: Fault) -> str:
        instance = fault.instance % len(self.instances)
        self._killed.add(instance)
        self.instances[instance].kill()
        return f"{self.name}-processor-{instance} ({self.instances[instance].ident})"

    def recover(self, fault: Fault) -> None:
        instance = fault.instance % len(self.instances)
        self._launch(instance)
        self._killed.discard(instance)

    def check_health(self) -> list[str]:
        events = []
        for i, proc in list(self.instances.items()):
            if i in self._killed or proc.alive():
                continue
            code = proc.exit_code()
            proc.stop()
            events.append(f"{proc.name} exited by itself (code {code}); restarted. "
                          f"Last log lines:\n{tail(proc.log, 5)}")
            self._launch(i)
        return events

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
