from __future__ import annotations

from pathlib import Path

import pytest

from harness.support.paths import WORKLOADS
from harness.workload import files as workload
from harness.workload.schema import Workload


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
