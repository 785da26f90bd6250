"""A real Spark standalone cluster, on the windows workload (decisions and event-time
windows, two queries in one driver) with the value schema switching to v2 mid-run: the
transactional sink across an executor kill and a driver kill with a restart from the
checkpoint; the Kafka sink (at-least-once) across a driver kill. A Worker kill is the
containers test's (test_containers.py): the engine's code for it is the same on both backends."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.results.schema import EngineResult, FaultResult
from tests.integration.conftest import came_back, exactly_once, windows_exactly_once, windows_run

pytestmark = pytest.mark.integration


def spark(name: str, engine: str, duration_s: float, faults: list[dict[str, object]], results: Path) -> EngineResult:
    return windows_run(name, engine, duration_s, faults, results, drain_timeout_s=90)


@pytest.fixture(scope="module")
def idempotent_run(tmp_path_factory: pytest.TempPathFactory) -> EngineResult:
    # Measured here at this rate: recovered 16 to 20 s after an executor kill and ~32 s after
    # a driver kill (a new application, then a catch-up batch), but in CI runs here late in
    # 2026-12 the driver's p99 was still 66 to 69 s at the end of a 48-s stretch after its
    # kill, and the executor's over its threshold 33 s after its own: 48 and 78 s now. Each
    # fault must be back under its threshold before the next fault or the end of the load.
    return spark("smoke-spark", "spark:idempotent", 141, [
        {"at_s": 15, "action": "kill", "target": "executor", "restart_after_s": 0},
        {"at_s": 63, "action": "kill", "target": "driver", "restart_after_s": 2}],
        tmp_path_factory.mktemp("results"))


def driver_recovered(driver: FaultResult) -> None:
    assert driver.error is None and "driver" in driver.target, driver
    assert driver.output_gap_s > 5, "with the driver gone, no micro-batch runs"
    came_back(driver)


def test_transactional_sink_is_exactly_once_across_an_executor_and_a_driver_kill(idempotent_run: EngineResult) -> None:
    e = idempotent_run
    exactly_once(e)
    windows_exactly_once(e)
    executor, driver = e.recovery
    assert "executor" in executor.target
    for rec in (executor, driver):
        assert rec.error is None, rec
        assert rec.output_gap_s > 1 and rec.peak_p99_ms and rec.pre_fault_p99_ms, rec
        assert rec.peak_p99_ms > rec.pre_fault_p99_ms, rec
    came_back(executor)
    driver_recovered(driver)
    timings = e.describe["timings"]
    assert timings["cluster_start_s"] > 0 and timings["submit_to_first_batch_s"] > 0
    assert len(timings["restart_to_first_batch_s"]) == 1
    assert timings["batches"]["with_rows"] > 5 and timings["batches"]["duration_ms_p50"] > 0


def test_both_value_schemas_are_parsed(idempotent_run: EngineResult) -> None:
    split = idempotent_run.measured().correctness.by_schema
    assert split["v1"].sent > 0 and split["v2"].sent > 0, split


def test_kafka_sink_loses_nothing_and_counts_its_duplicates(tmp_path: Path) -> None:
    # The new driver's first batch comes 31 to 34 s after the kill here, then the catch-up;
    # in CI runs it was later still (the idempotent run above), hence 80 s after the kill.
    # Killed at 20 s: the 15 s before it (after the 5-s warm-up) give the recovery threshold
    # its pre-fault p99; at 12 s, a slow start once left that stretch without a decision.
    e = spark("smoke-spark-kafka-sink", "spark", 102,
              [{"at_s": 20, "action": "kill", "target": "driver", "restart_after_s": 2}], tmp_path)
    c = e.measured().correctness
    # Spark's Kafka sink is at-least-once: a replayed micro-batch may write decisions again.
    # The checker must count them, never lose or alter one.
    assert (c.missing, c.wrong, c.unexpected) == (0, 0, 0), c.examples
    assert c.received == c.expected + c.duplicates
    assert e.windows and (e.windows.missing, e.windows.wrong) == (0, 0), e.windows.examples
    driver_recovered(e.recovery[0])
