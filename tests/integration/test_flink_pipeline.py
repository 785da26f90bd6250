"""The smoke workload through a real Flink session cluster, in both delivery modes, with
the TaskManager killed and later the job cancelled and resubmitted from its checkpoint."""
from __future__ import annotations

import json

import pytest
import yaml

from harness.run import runner
from harness.support.paths import WORKLOADS
from harness.workload import files as workload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def flink_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data = yaml.safe_load((WORKLOADS / "smoke.yaml").read_text())
    # Flink needs the heartbeat timeout to notice the dead TaskManager, then a restart from
    # the last checkpoint and the catch-up: 20-25 s, plus the 10 s of stable latency that
    # recovery requires before the next fault ends the first one's window.
    data.update(name="smoke-flink", duration_s=100, faults=[
        {"at_s": 12, "action": "kill", "target": "worker", "restart_after_s": 3},
        {"at_s": 57, "action": "cancel-resubmit", "target": "job", "restart_after_s": 2}],
                engines={"flink": {}, "flink:at-least-once": {"delivery": "at_least_once"}})
    wl = workload.parse(data, "smoke-flink")
    run_dir = runner.run(wl, "smoke-flink", yaml.safe_dump(data), tmp_path_factory.mktemp("results"))
    return json.loads((run_dir.path / "summary.json").read_text())


def _engine(summary: dict, name: str) -> dict:
    e = next(e for e in summary["engines"] if e["engine"] == name)
    assert e["status"] == "ok", e.get("error")
    return e


def test_exactly_once_across_a_taskmanager_kill(flink_run: dict) -> None:
    e = _engine(flink_run, "flink")
    c = e["correctness"]
    assert (c["missing"], c["duplicates"], c["wrong"], c["unexpected"]) == (0, 0, 0, 0), c["examples"]
    assert c["decisions"] == c["expected_decisions"]
    kill, resubmit = e["recovery"]
    assert kill["error"] is None and "taskmanager" in kill["target"]
    assert resubmit["error"] is None and "resubmitted from" in resubmit["target"]
    for rec in (kill, resubmit):
        assert rec["output_gap_s"] > 1, "with the only TaskManager or the job gone, output must stop"
        assert rec["recovered"] and rec["recovery_time_s"] > 0, rec
    timings = e["describe"]["timings"]
    assert timings["cluster_start_s"] > 0 and timings["submit_to_running_s"] > 0
    assert len(timings["resubmit_to_running_s"]) == 1
    assert e["cpu_seconds"]["engine"] > 0


def test_at_least_once_loses_nothing_and_counts_its_duplicates(flink_run: dict) -> None:
    e = _engine(flink_run, "flink:at-least-once")
    c = e["correctness"]
    # Replays after the kill may duplicate; the checker must count them, never lose or alter one.
    assert (c["missing"], c["wrong"], c["unexpected"]) == (0, 0, 0), c["examples"]
    assert c["duplicates"] >= 0 and c["received"] == c["expected"] + c["duplicates"]
    assert e["describe"]["options"]["delivery"] == "at_least_once"
