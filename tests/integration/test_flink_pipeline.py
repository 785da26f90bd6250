"""A real Flink session cluster, on the windows workload (decisions and event-time windows)
with the value schema switching to v2 mid-run: the exactly-once job across a TaskManager
kill and a cancel-and-resubmit from its checkpoint, and the at-least-once job across a
resubmit, which replays and so may duplicate."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.results.schema import EngineResult
from tests.integration.conftest import came_back, exactly_once, windows_exactly_once, windows_run

pytestmark = pytest.mark.integration


def flink(name: str, engine: str, duration_s: float, faults: list[dict[str, object]], results: Path) -> EngineResult:
    return windows_run(name, engine, duration_s, faults, results, drain_timeout_s=60)


@pytest.fixture(scope="module")
def exactly_once_run(tmp_path_factory: pytest.TempPathFactory) -> EngineResult:
    # Measured here at this rate: output back 12 to 16 s after the TaskManager kill (a new
    # TaskManager registers, the job restarts from the last checkpoint and catches up), and
    # once 28 s (the restart strategy's backoff grows while no TaskManager is there), and
    # ~14 s after the resubmit; each then needs to be back under its threshold before the
    # next fault or the end.
    return flink("smoke-flink", "flink", 76, [
        {"at_s": 10, "action": "kill", "target": "worker", "restart_after_s": 3},
        {"at_s": 50, "action": "cancel-resubmit", "target": "job", "restart_after_s": 2}],
        tmp_path_factory.mktemp("results"))


def test_exactly_once_across_a_taskmanager_kill_and_a_resubmit(exactly_once_run: EngineResult) -> None:
    e = exactly_once_run
    exactly_once(e)
    windows_exactly_once(e)
    kill, resubmit = e.recovery
    assert kill.error is None and "taskmanager" in kill.target
    assert resubmit.error is None and "resubmitted from" in resubmit.target
    for rec in (kill, resubmit):
        assert rec.output_gap_s > 1, "with the only TaskManager or the job gone, output must stop"
        came_back(rec)
    timings = e.describe["timings"]
    assert timings["cluster_start_s"] > 0 and timings["submit_to_running_s"] > 0
    assert len(timings["resubmit_to_running_s"]) == 1
    assert e.measured().cpu_seconds.engine > 0


def test_both_value_schemas_are_parsed(exactly_once_run: EngineResult) -> None:
    split = exactly_once_run.measured().correctness.by_schema
    assert split["v1"].sent > 0 and split["v2"].sent > 0, split
    assert all((s.missing, s.duplicates, s.wrong) == (0, 0, 0) for s in split.values()), split


def test_at_least_once_loses_nothing_and_counts_its_duplicates(tmp_path: Path) -> None:
    e = flink("smoke-flink-alo", "flink:at-least-once", 40,
              [{"at_s": 12, "action": "cancel-resubmit", "target": "job", "restart_after_s": 2}], tmp_path)
    c = e.measured().correctness
    # The resubmitted job replays from its checkpoint without transactions: whatever it had
    # written since shows up again. The checker must count it, never lose or alter a decision.
    assert (c.missing, c.wrong, c.unexpected) == (0, 0, 0), c.examples
    assert c.received == c.expected + c.duplicates
    assert e.recovery[0].error is None and "resubmitted from" in e.recovery[0].target
    assert e.windows and (e.windows.missing, e.windows.wrong) == (0, 0), e.windows.examples
    assert e.describe["options"]["delivery"] == "at_least_once"
