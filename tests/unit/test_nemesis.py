"""The nemesis (harness/run/nemesis.py) against stand-ins for the engine and the brokers, and
the target each engine picks for a fault, with stand-ins for the processes it would kill."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.backends.local import LocalKafka
from harness.engines.base import EngineContext
from harness.engines.clusters import FlinkCluster, FlinkSettings, SparkCluster, SparkSettings
from harness.engines.flink import FlinkEngine
from harness.engines.kafka import KafkaTransactionsEngine
from harness.engines.spark import EXECUTOR_CLASS, SparkEngine
from harness.run.nemesis import Nemesis
from harness.support.errors import ClusterError
from harness.workload.engine_options import FlinkOptions, KafkaOptions, SparkOptions
from harness.workload.schema import Fault
from tests.conftest import make
from tests.unit.fakes import FakeKafka, FakeLauncher, FakeWorker

LONG_AGO_NS = 3_600 * 1_000_000_000  # a load start this far back makes every fault due at once


class FakeEngine:
    """An engine that records the calls the nemesis makes, and may fail one."""

    name = "fake"
    applies_rules = True
    fault_actions = frozenset({"kill:worker", "cancel-resubmit:job"})

    def __init__(self, calls: list[tuple[str, Any]], fail: Callable[[str, Fault], Exception | None] | None = None,
                 injected: threading.Event | None = None) -> None:
        self.calls = calls
        self.fail = fail or (lambda what, fault: None)
        self.injected = injected or threading.Event()

    def _call(self, what: str, fault: Fault) -> None:
        self.calls.append((what, fault))
        error = self.fail(what, fault)
        if error is not None:
            raise error

    def inject(self, fault: Fault) -> str:
        self._call("inject", fault)
        self.injected.set()
        return f"worker {fault.instance}"

    def recover(self, fault: Fault) -> None:
        self._call("recover", fault)

    def prepare(self) -> None: ...

    def start(self, ctx: EngineContext) -> None: ...

    def check_health(self) -> list[str]:
        return []

    def stop(self) -> None: ...

    def cpu_seconds(self) -> float:
        return 0.0

    def describe(self) -> dict[str, Any]:
        return {}


def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the nemesis did not get there in time"
        time.sleep(0.005)


def run_all(faults: list[Fault], calls_expected: int, fail: Callable[[str, Fault], Exception | None] | None = None,
            ) -> tuple[Nemesis, list[tuple[str, Any]]]:
    """Every fault due at once; returns once the nemesis made `calls_expected` calls and ended."""
    kafka = FakeKafka()
    nemesis = Nemesis(FakeEngine(kafka.calls, fail), kafka, faults, time.monotonic_ns() - LONG_AGO_NS)
    eventually(lambda: len(kafka.calls) >= calls_expected)
    nemesis.stop()  # after the last call there is nothing left to wait for: this only joins
    return nemesis, kafka.calls


def test_faults_are_injected_in_time_order_whatever_the_file_order() -> None:
    faults = [Fault(at_s=30, instance=3, restart_after_s=0), Fault(at_s=10, instance=1, restart_after_s=0),
              Fault(at_s=20, instance=2, restart_after_s=0)]
    nemesis, calls = run_all(faults, 6)
    assert [e.fault.at_s for e in nemesis.events] == [10, 20, 30]
    assert [(what, f.instance) for what, f in calls] == [("inject", 1), ("recover", 1), ("inject", 2),
                                                         ("recover", 2), ("inject", 3), ("recover", 3)]


def test_a_broker_fault_goes_to_the_brokers_and_an_engine_fault_to_the_engine() -> None:
    broker = Fault(at_s=1, target="broker", instance=2, restart_after_s=0)
    worker = Fault(at_s=2, target="worker", instance=1, restart_after_s=0)
    nemesis, calls = run_all([worker, broker], 4)
    assert calls == [("kill_broker", 2), ("restart_broker", 2), ("inject", worker), ("recover", worker)]
    assert [e.target for e in nemesis.events] == ["Kafka broker 3", "worker 1"]


def test_each_event_records_what_was_hit_when_and_when_it_was_undone() -> None:
    before = time.time_ns()
    nemesis, _ = run_all([Fault(at_s=5, action="cancel-resubmit", target="job", restart_after_s=0)], 2)
    after = time.time_ns()
    (event,) = nemesis.events
    assert event.target == "worker 0" and event.error is None
    assert event.recovered_ns is not None
    assert before <= event.injected_ns <= event.recovered_ns <= after  # wall clock, as the history's recv_ns


def test_a_failed_injection_is_recorded_and_the_schedule_goes_on() -> None:
    def fail(what: str, fault: Fault) -> Exception | None:
        return ClusterError("no TaskManager is alive to kill") if what == "inject" and fault.at_s == 1 else None

    nemesis, calls = run_all([Fault(at_s=1, restart_after_s=0), Fault(at_s=2, restart_after_s=0)], 3, fail)
    first, second = nemesis.events
    assert (first.target, first.recovered_ns, first.error) == ("", None, "ClusterError: no TaskManager is alive to kill")
    assert [what for what, f in calls if f.at_s == 1] == ["inject"]  # nothing to undo
    assert second.error is None and second.recovered_ns is not None


def test_a_failed_recovery_is_recorded_with_what_the_fault_hit() -> None:
    def fail(what: str, fault: Fault) -> Exception | None:
        return RuntimeError("resubmit refused") if what == "recover" else None

    nemesis, _ = run_all([Fault(at_s=1, restart_after_s=0)], 2, fail)
    (event,) = nemesis.events
    assert (event.target, event.recovered_ns, event.error) == ("worker 0", None, "RuntimeError: resubmit refused")


def test_a_fault_waits_for_its_time_after_the_load_start_and_is_undone_restart_after_s_later() -> None:
    kafka = FakeKafka()
    seen: list[int] = []

    def stamp(what: str, fault: Fault) -> None:
        seen.append(time.monotonic_ns())

    start = time.monotonic_ns()
    nemesis = Nemesis(FakeEngine(kafka.calls, stamp), kafka, [Fault(at_s=0.2, restart_after_s=0.2)], start)
    eventually(lambda: len(seen) == 2)
    nemesis.stop()
    assert seen[0] - start >= 200_000_000 and seen[1] - start >= 400_000_000


def test_stopping_before_a_fault_is_due_injects_nothing_and_does_not_wait_for_it() -> None:
    kafka = FakeKafka()
    nemesis = Nemesis(FakeEngine(kafka.calls), kafka, [Fault(at_s=3_600)], time.monotonic_ns())
    t0 = time.monotonic()
    nemesis.stop()
    assert time.monotonic() - t0 < 5
    assert nemesis.events == [] and kafka.calls == []


def test_stopping_while_a_fault_waits_to_be_undone_leaves_it_unrecovered() -> None:
    kafka = FakeKafka()
    engine = FakeEngine(kafka.calls)
    nemesis = Nemesis(engine, kafka, [Fault(at_s=1, restart_after_s=3_600)],
                      time.monotonic_ns() - 1_000_000_000)
    assert engine.injected.wait(5)
    nemesis.stop()
    assert [what for what, _ in kafka.calls] == ["inject"]
    assert nemesis.events[0].recovered_ns is None and nemesis.events[0].error is None


# Target selection: which process each engine's inject() hits.

def kafka_engine(tmp_path: Path, processors: int) -> tuple[KafkaTransactionsEngine, FakeKafka]:
    brokers = FakeKafka()
    engine = KafkaTransactionsEngine("kafka", KafkaOptions(parallelism=processors), applies_rules=True)
    engine._ctx = EngineContext(make(), brokers, tmp_path, "run1")
    for i in range(processors):
        engine._launch(i)
    return engine, brokers


def test_a_kafka_worker_fault_kills_the_processor_of_its_instance_modulo_the_processors(tmp_path: Path) -> None:
    engine, _ = kafka_engine(tmp_path, 2)
    hit = engine.inject(Fault(at_s=1, instance=3))
    victim = engine.instances[1]
    assert isinstance(victim, FakeWorker) and victim.killed and engine.instances[0].alive()
    assert hit == "kafka-processor-1 (fake kafka-processor-1)"


def test_a_killed_kafka_processor_is_left_to_the_nemesis_and_restarted_as_the_same_instance(tmp_path: Path) -> None:
    engine, brokers = kafka_engine(tmp_path, 2)
    engine.inject(Fault(at_s=1, instance=1))
    assert engine.check_health() == []  # the fault's kill is not a crash to revive
    engine.recover(Fault(at_s=1, instance=1))
    relaunched = brokers.launched[-1]
    assert relaunched.name == "kafka-processor-1" and '"instance": 1' in relaunched.argv[1]
    assert engine.instances[1].alive()


def test_the_kafka_broker_fault_picks_a_node_by_instance_modulo_the_brokers(tmp_path: Path) -> None:
    kafka = LocalKafka(make(kafka={"brokers": 3}).kafka, tmp_path)
    kafka.nodes = {n: FakeWorker(f"kafka-{n}") for n in (1, 2, 3)}  # type: ignore[misc]
    assert kafka.kill_broker(4).startswith("Kafka broker 2 ")
    assert [n for n, p in kafka.nodes.items() if not p.alive()] == [2]


def flink_engine(tmp_path: Path, *workers: FakeWorker) -> FlinkEngine:
    engine = FlinkEngine("flink", FlinkOptions())
    engine.cluster = FlinkCluster(FlinkSettings(1, 2, "1g", "2g", 10_000), FakeLauncher(), tmp_path, 1.0)
    engine.cluster.workers = list(workers)
    return engine


def test_a_flink_worker_fault_picks_among_the_live_taskmanagers_only(tmp_path: Path) -> None:
    dead, a, b = FakeWorker("tm-0", alive=False), FakeWorker("tm-1"), FakeWorker("tm-2")
    engine = flink_engine(tmp_path, dead, a, b)
    assert engine.inject(Fault(at_s=1, instance=2)).startswith("tm-1 ")  # 2 % 2 live = the first live one
    assert a.killed and not b.killed


def test_a_flink_worker_fault_with_no_live_taskmanager_fails_without_killing_anything(tmp_path: Path) -> None:
    engine = flink_engine(tmp_path, FakeWorker("tm-0", alive=False))
    with pytest.raises(ClusterError, match="no TaskManager is alive"):
        engine.inject(Fault(at_s=1))


def spark_engine(tmp_path: Path, *workers: FakeWorker, drivers: Sequence[FakeWorker] = ()) -> SparkEngine:
    engine = SparkEngine("spark", SparkOptions())
    engine.cluster = SparkCluster(SparkSettings(2, "2g", "512m", "1g"), FakeLauncher(), tmp_path, 1.0)
    engine.cluster.workers = list(workers)
    engine.drivers = list(drivers)
    return engine


def test_a_spark_driver_fault_kills_the_newest_driver(tmp_path: Path) -> None:
    old, new = FakeWorker("driver-0", alive=False), FakeWorker("driver-1")
    worker = FakeWorker("worker-0")
    engine = spark_engine(tmp_path, worker, drivers=[old, new])
    assert engine.inject(Fault(at_s=1, target="driver")).startswith("driver-1 ")
    assert new.killed and not worker.killed


def test_a_spark_executor_fault_kills_the_executor_inside_a_worker_not_the_worker(tmp_path: Path) -> None:
    worker = FakeWorker("worker-0")
    engine = spark_engine(tmp_path, worker)
    engine.inject(Fault(at_s=1, target="executor"))
    assert worker.matched == [EXECUTOR_CLASS] and worker.alive()


def test_a_spark_executor_fault_fails_when_the_worker_runs_no_executor(tmp_path: Path) -> None:
    engine = spark_engine(tmp_path, FakeWorker("worker-0", executors=0))
    with pytest.raises(ClusterError, match="no Spark executor is running in worker-0"):
        engine.inject(Fault(at_s=1, target="executor"))


def test_a_spark_worker_fault_kills_a_live_worker(tmp_path: Path) -> None:
    dead, live = FakeWorker("worker-0", alive=False), FakeWorker("worker-1")
    engine = spark_engine(tmp_path, dead, live)
    engine.inject(Fault(at_s=1, target="worker"))
    assert live.killed
