from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.present import repeat
from harness.results.schema import (
    Correctness,
    CpuSeconds,
    Disturbance,
    EngineResult,
    FaultResult,
    Latency,
    Metadata,
    RecordedWorkload,
    Summary,
    Throughput,
    WindowsResult,
)
from harness.support.paths import WORKLOADS
from harness.workload import files as workload
from harness.workload.schema import Fault, Workload


@pytest.fixture
def smoke() -> Workload:
    wl, _ = workload.load(WORKLOADS / "smoke.yaml")
    return wl


def make(**overrides: object) -> Workload:
    """A small valid workload with `overrides` applied to its raw fields."""
    data: dict[str, object] = {"name": "t", "seed": 1, "duration_s": 10, "warmup_s": 1, "rate": 100}
    data.update(overrides)
    return workload.parse(data)


@pytest.fixture
def tmp_results(tmp_path: Path) -> Path:
    return tmp_path / "results"


# Results built from the schema's models, as the runner writes them: a change in the
# schema breaks these fixtures, not a reader in the field.
SMOKE_TEXT = "name: smoke\nseed: 7\nduration_s: 30\nrate: 200\nrules: {window_s: 3600}\n"


def engine(name: str = "kafka", p99: float = 100.0, missing: int = 0, duplicates: int = 0,
           wrong: int | None = 0, faults: list[FaultResult] | None = None, cpu: float = 2.0,
           decisions_per_s: float = 199.5, options: dict[str, Any] | None = None,
           windows: WindowsResult | None = None, disturbed_share: float = 0.01) -> EngineResult:
    """One engine's finished row, every figure the schema asks for."""
    return EngineResult(
        engine=name, status="ok", describe={"options": options or {}}, load_start_ns=1_700_000_000_000_000_000,
        latency_ms=Latency(p50=p99 / 2, p90=p99 * 0.8, p99=p99, p999=p99 * 1.1, max=p99 * 1.2, mean=p99 / 2,
                           n=6000),
        throughput=Throughput(offered_per_s=200.0, sent=6000, decisions_per_s=decisions_per_s,
                              driver_kept_schedule=True, driver_max_lag_ms=1.0, driver_late_sends=0,
                              driver_delivery_errors=0, driver_first_error=None, backlog_max=40,
                              backlog_growth_per_s=0.0),
        correctness=Correctness(expected=6000, received=6000 - missing + duplicates, missing=missing,
                                duplicates=duplicates, wrong=wrong, unexpected=0,
                                exactly_once=not (missing or duplicates or wrong)),
        windows=windows, recovery=faults or [],
        cpu_seconds=CpuSeconds(engine=cpu + 1, kafka=20.0, engine_load=cpu, kafka_load=15.0, driver=1.0,
                               collector=1.0),
        disturbance=Disturbance(other_cpu_s=round(disturbed_share * 120, 2), capacity_cpu_s=120.0,
                                share=disturbed_share, disturbed=disturbed_share > 0.05,
                                busiest=["stress (4242): 30.0 s"] if disturbed_share > 0.05 else [],
                                load_average=[0.5, 0.4, 0.3]),
    )


def failed(name: str) -> EngineResult:
    return EngineResult(engine=name, status="failed", error="the cluster did not start")


def fault(pre_p99: float | None = 50.0, gap: float = 0.2, recovery: float | None = 5.0,
          target: str = "worker", hit: str = "kafka-processor-0 (pid 1)") -> FaultResult:
    return FaultResult(fault=Fault(at_s=8.0, action="kill", target=target), target=hit, at_s=8.0,
                       recovered_after_s=1.0, error=None, output_gap_s=gap, recovered=recovery is not None,
                       recovery_time_s=recovery, pre_fault_p99_ms=pre_p99, threshold_ms=250.0,
                       peak_p99_ms=None, final_p99_ms=None, duplicates=0)


def summary(*engines: EngineResult, text: str = SMOKE_TEXT, name: str = "smoke",
            backend: str = "local") -> Summary:
    wl = Workload.model_validate(yaml.safe_load(text))
    return Summary(
        status="complete", started_at="2026-12-05T10:00:00+00:00", workload_name=name, engines=list(engines),
        metadata=Metadata(versions={"python": "3.11.7"}, backend=backend, machine={"cpus": 2, "hostname": "vm"},
                          workload=RecordedWorkload(path="w.yaml", seed=wl.seed, text=text, parsed=wl),
                          git={"commit": "abc", "dirty": False}, command=["showdown", "run"]))


def write_run(folder: Path, s: Summary) -> Path:
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(s.model_dump_json())
    return folder


def write_repeat(folder: Path, summaries: list[Summary]) -> Path:
    runs = [(write_run(folder / f"run-{i}", s).name, s) for i, s in enumerate(summaries)]
    (folder / "repeat.json").write_text(json.dumps(repeat.aggregate(runs)))
    return folder
