"""Every scenario file at smoke size, on the local backend, through at least one engine:
the file's own timeline (surges, faults, the schema switch) squeezed into 14 s of load,
or longer where a fault or a surge needs it (LONGER)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.support.paths import WORKLOADS
from tests.integration.conftest import came_back, exactly_once, finished, run_workload, windows_exactly_once

pytestmark = pytest.mark.integration

SMOKE_S = 14.0
# Longer where the squeezed timeline needs it: after a broker kill a processor whose group
# coordinator was on that broker can hang until its watchdog restarts it (~15 s, see
# harness/engines/kafka.py), then catches up; a processor kill takes ~7 s to recover;
# and each then 10 s of stable latency; the slow model's surge must last long enough to build
# a backlog; the windows run must close several windows.
LONGER = {"broker-failover": 60.0, "node-crash": 30.0, "slow-model": 30.0, "windows": 45.0}
# Which engines take each scenario here: the Kafka processors, the quickest to start. Flink
# and Spark run the windows workload with the schema switch and their faults in their own
# modules (test_flink_pipeline, test_spark_pipeline); the full matrix is `make bench-all`.
ENGINES: dict[str, list[str]] = {
    "flash-sale": ["kafka"],
    "slow-model": ["kafka"],
    "late-mobile": ["kafka"],
    "schema-evolution": ["kafka"],
    "broker-failover": ["kafka"],
    "node-crash": ["kafka"],
    "windows": ["kafka"],
}


def smoke_size(data: dict[str, Any], engines: list[str]) -> dict[str, Any]:
    """The scenario with its timeline scaled to SMOKE_S (or LONGER) seconds, on `engines` only."""
    duration = LONGER.get(data["name"], SMOKE_S)
    f = duration / data["duration_s"]
    out = {**data, "name": f"{data['name']}-smoke", "duration_s": duration,
           "warmup_s": max(3.0, data.get("warmup_s", 10.0) * f),
           "engines": {name: data["engines"][name] for name in engines},
           "phases": [{**p, "start_s": p["start_s"] * f, "duration_s": p["duration_s"] * f}
                      for p in data.get("phases", [])],
           "faults": [{**x, "at_s": x["at_s"] * f, "restart_after_s": max(2.0, x.get("restart_after_s", 5.0) * f)}
                      for x in data.get("faults", [])]}
    if data.get("schema_v2_from_s") is not None:
        out["schema_v2_from_s"] = data["schema_v2_from_s"] * f
    return out


def test_every_scenario_file_is_covered() -> None:
    files = {p.stem for p in WORKLOADS.glob("*.yaml")} - {"smoke", "fraud-default"}
    assert files == set(ENGINES)


@pytest.mark.parametrize("scenario", list(ENGINES))
def test_scenario_at_smoke_size(scenario: str, tmp_path: Path) -> None:
    data = smoke_size(yaml.safe_load((WORKLOADS / f"{scenario}.yaml").read_text()), ENGINES[scenario])
    _, summary = run_workload(data, tmp_path)
    assert summary.status == "complete"
    for name in ENGINES[scenario]:
        e = finished(summary, name)
        exactly_once(e)
        m = e.measured()
        for rec in e.recovery:
            came_back(rec)
        if scenario == "late-mobile":
            assert m.correctness.decisions["LATE"] > 0  # and equal to the oracle's count, as checked above
        if scenario == "schema-evolution":
            split = m.correctness.by_schema
            assert split["v2"].sent > 0 and split["v1"].sent > 0, split
        if scenario == "slow-model":
            # The surge asks 1,200 ev/s of two workers that score 1,000 ev/s at 2 ms each: a
            # backlog must build, then drain.
            assert m.throughput.backlog_max and m.throughput.backlog_max > 500, m.throughput
            assert m.latency_ms.p50 and m.latency_ms.p50 >= 2.0
        if scenario == "windows":
            windows_exactly_once(e)
        if scenario in ("node-crash", "broker-failover"):
            assert e.recovery, "the fault was injected"
