"""The load driver's own ceiling, measured against a real broker."""
from __future__ import annotations

import pytest

from harness.run.selfbench import driver_max_rate
from harness.support.paths import WORKLOADS
from harness.workload import files as workload

pytestmark = pytest.mark.integration


def test_driver_keeps_50k_events_per_second() -> None:
    wl, _ = workload.load(WORKLOADS / "smoke.yaml")
    report = driver_max_rate(wl, rate=50_000, seconds=10)
    assert report.delivery_errors == 0, report.first_error
    assert report.sent == 500_000
    assert report.kept_schedule, f"max lag {report.max_lag_ms:.1f} ms, {report.late_sends} late sends"
