"""Every scenario file at smoke size, on the local backend, through at least one engine:
the file's own timeline (surges, faults, the schema switch) squeezed into 30 s of load,
or 50 s where a fault needs that to recover."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.run import runner
from harness.support.paths import WORKLOADS
from harness.workload import files as workload

pytestmark = pytest.mark.integration

SMOKE_S = 30.0
# A broker's return takes ~14 s of recovery here (leader moves, transactions time out and
# the processors restart), then 10 s of stable latency: the squeezed run must hold both.
# So must the windows run for a Spark Worker's (~22 s).
LONGER = {"broker-failover": 50.0, "windows": 70.0}
# Which engines take each scenario here (the full matrix is `make bench-all`): the Kafka
# processors everywhere, being the quickest to start; the schema switch also through Flink
# and Spark, whose parsers differ most; the windows through all three, each its own code,
# Spark with its exactly-once sink, since a worker kill replays micro-batches.
ENGINES: dict[str, list[str]] = {
    "flash-sale": ["kafka"],
    "slow-model": ["kafka"],
    "late-mobile": ["kafka"],
    "schema-evolution": ["kafka", "flink", "spark"],
    "broker-failover": ["kafka"],
    "node-crash": ["kafka"],
    "windows": ["kafka", "flink", "spark:idempotent"],
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
    text = yaml.safe_dump(data, sort_keys=False)
    wl = workload.parse(data)
    run_dir = runner.run(wl, f"workloads/{scenario}.yaml (smoke size)", text, tmp_path)
    summary = json.loads((run_dir.path / "summary.json").read_text())
    assert summary["status"] == "complete"
    for e in summary["engines"]:
        assert e["status"] == "ok", e.get("error")
        c = e["correctness"]
        assert (c["missing"], c["duplicates"], c["wrong"], c["unexpected"]) == (0, 0, 0, 0), (e["engine"], c)
        assert c["decisions"] == c["expected_decisions"]
        for rec in e["recovery"]:
            assert rec["error"] is None and rec["recovered"], (e["engine"], rec)
        if scenario == "late-mobile":
            assert c["decisions"]["LATE"] > 0  # and equal to the oracle's count, as asserted above
        if scenario == "schema-evolution":
            assert c["by_schema"]["v2"]["sent"] > 0 and c["by_schema"]["v1"]["sent"] > 0, c["by_schema"]
        if scenario == "slow-model":
            # The surge asks 1,200 ev/s of two workers that score 1,000 ev/s at 2 ms each: a
            # backlog must build, then drain.
            assert e["throughput"]["backlog_max"] > 500, e["throughput"]
            assert e["latency_ms"]["p50"] >= 2.0
        if scenario == "windows":
            w = e["windows"]
            assert (w["missing"], w["duplicates"], w["wrong"], w["unexpected"]) == (0, 0, 0, 0), (e["engine"], w)
            assert w["required"] > 1000 and w["emission_delay_ms"]["p50"] is not None, w
        if scenario in ("node-crash", "broker-failover"):
            assert e["recovery"], "the fault was injected"
