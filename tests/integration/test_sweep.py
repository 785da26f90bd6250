"""`showdown sweep` on the Kafka engine: two rates, each an ordinary run, judged sustainable."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.backends.local import LocalBackend
from harness.results import layout
from harness.results.read import load_summary
from harness.run import sweep
from harness.workload import files as workload
from tests.integration.conftest import workload_file

pytestmark = pytest.mark.integration


def test_sweep_finds_the_rates_the_kafka_engine_sustains(tmp_path: Path) -> None:
    data = workload_file("smoke", name="smoke-sweep", engines={"kafka": {"parallelism": 2}},
                         sweep={"rates": [200, 1000], "duration_s": 12, "warmup_s": 3, "p99_limit_ms": 2000})
    wl = workload.parse(data, "smoke-sweep")
    out = sweep.run(wl, "smoke-sweep", yaml.safe_dump(data), tmp_path, [sweep.Line("kafka")], LocalBackend())
    result = json.loads((out / layout.SWEEP).read_text())
    steps = result["steps"]
    assert [s["rate"] for s in steps] == [200, 1000]
    assert all(s["sustainable"] for s in steps), [s["why_not"] for s in steps]
    best = result["sustainable"]["kafka"]
    assert best["rate"] == 1000 and best["cpu_s_per_million"] > 0 and abs(best["growth_ms"]) < 1000
    for s in steps:  # each verdict points at a complete run
        assert load_summary(out / s["run"]).status == "complete"
