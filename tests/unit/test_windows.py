"""The windows output's oracle and check (docs/design/event-time-windows.md)."""
from __future__ import annotations

import numpy as np
import pytest

from harness.judge.checker import check_windows
from harness.judge.oracle import windows
from harness.load import generator
from harness.load.generator import Txn
from harness.load.history import UNKNOWN, WINDOW_RECEIVED
from harness.results.schema import WindowsResult
from harness.support.errors import WorkloadError
from harness.workload.schema import Rules, Windows
from tests.conftest import make

MIN = 60_000
SPEC = Windows(size_s=600, slide_s=300)  # 10-min windows every 5 min
RULES = Rules(allowed_lateness_s=10)


def txn(i: int, user: int, amount: int, t_ms: int, offset_s: float) -> Txn:
    return Txn(i, user, amount, 1, t_ms, int(offset_s * 1e9))


def test_each_event_lands_in_size_over_slide_windows_and_the_end_decides_what_is_owed() -> None:
    records = [txn(0, 1, 100, 1 * MIN, 0), txn(1, 1, 50, 6 * MIN, 1), txn(2, 2, 7, 7 * MIN, 2),
               txn(3, 1, 1, 21 * MIN, 3)]
    exp = windows(records, SPEC, RULES)
    # Last event at 21 min: windows ending by 21 min - 10 s - 5 min are owed, up to 21 min - 10 s may come.
    assert exp.required == {(1, 5 * MIN): (100, 1), (1, 10 * MIN): (150, 2), (1, 15 * MIN): (50, 1),
                            (2, 10 * MIN): (7, 1), (2, 15 * MIN): (7, 1)}
    assert exp.optional == {}
    # The window ending at 5 min was ready when an event at or past 5 min + 10 s was sent: the second.
    assert exp.ready_offset_ns == {5 * MIN: int(1e9), 10 * MIN: int(3e9), 15 * MIN: int(3e9)}


def rows(*results: tuple[int, int, int, int, int]) -> np.ndarray:
    return np.array([(*r, UNKNOWN, UNKNOWN) for r in results], dtype=WINDOW_RECEIVED)


def test_check_counts_missing_duplicates_wrong_unexpected_and_the_emission_delay() -> None:
    records = [txn(0, 1, 100, 1 * MIN, 0), txn(1, 1, 50, 6 * MIN, 1), txn(2, 1, 1, 21 * MIN, 3)]
    exp = windows(records, SPEC, RULES)
    start = 10**18
    good = rows((1, 5 * MIN, 100, 1, start + int(1.5e9)), (1, 10 * MIN, 150, 2, start + int(3.2e9)),
                (1, 15 * MIN, 50, 1, start + int(3.4e9)))
    c = check_windows(good, exp, start)
    assert (c.missing, c.duplicates, c.wrong, c.unexpected) == (0, 0, 0, 0) and c.exactly_once
    assert c.emission_delay_ms["p50"] == pytest.approx(400) and c.emission_delay_ms["max"] == pytest.approx(500)
    bad = rows((1, 5 * MIN, 100, 1, start + int(1.5e9)), (1, 5 * MIN, 100, 1, start + int(2e9)),
               (1, 10 * MIN, 149, 2, start + int(3.2e9)), (9, 5 * MIN, 1, 1, start + int(2e9)))
    c = check_windows(bad, exp, start)
    assert (c.missing, c.duplicates, c.wrong, c.unexpected) == (1, 1, 1, 1)
    assert c.examples["wrong"] == [f"user 1 window ending {10 * MIN}: got spend/count (149, 2), expected (150, 2)"]


def test_speed_runs_event_time_faster_and_leaves_speed_one_unchanged() -> None:
    base = make(duration_s=20, rate=50)
    assert generator.generate(make(duration_s=20, rate=50, event_time_speed=1)) == generator.generate(base)
    fast = generator.generate(make(duration_s=20, rate=50, event_time_speed=30,
                                   out_of_order={"fraction": 0}, beyond_lateness={"fraction": 0}))
    span = max(r.event_time_ms for r in fast) - min(r.event_time_ms for r in fast)
    assert span == pytest.approx(20 * 30 * 1000, rel=0.01)


def test_windows_forbid_events_beyond_the_lateness_and_wide_disorder() -> None:
    with pytest.raises(WorkloadError, match="beyond_lateness.fraction: 0"):
        make(windows={})
    with pytest.raises(WorkloadError, match="at most half the allowed lateness"):
        make(windows={}, beyond_lateness={"fraction": 0}, out_of_order={"max_delay_ms": 8000})
    with pytest.raises(WorkloadError, match="multiple of slide_s"):
        make(windows={"size_s": 700}, beyond_lateness={"fraction": 0}, out_of_order={"max_delay_ms": 5000})


def test_the_table_has_a_windows_column_only_when_the_run_has_windows() -> None:
    from harness.present import report
    from tests.conftest import engine, summary

    plain = summary(engine())
    assert report.columns(plain) == report.COLUMNS and len(report.rows(plain)[0]) == len(report.COLUMNS)
    w = WindowsResult(required=10, received=12, missing=0, duplicates=2, wrong=0, unexpected=1, optional_received=0,
                      emission_delay_ms={"p50": 120.0, "p99": 1500.0}, exactly_once=False)
    windowed = summary(engine(windows=w))
    assert report.columns(windowed)[-1] == report.WINDOWS_COLUMN
    assert report.rows(windowed)[0][-1] == "0/2/0 +1 unexpected\n120 / 1,500"
