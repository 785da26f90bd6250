"""The judge: one engine row's figures from what its run left behind, and nothing else.

No process, clock or file is involved (jepsen's checkers over a history): the same history
gives the same figures, so a run can be judged again from its folder, and the logic is
tested with made-up histories (tests/unit/test_judge_history.py)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from harness.judge import checker, metrics
from harness.judge.oracle import Decision, WindowsExpected
from harness.load.generator import Txn, v2_from_txn
from harness.load.messages import CollectorDone, DriverReport, LoadStart
from harness.results.schema import Correctness, FaultResult, Latency, Throughput, WindowsResult
from harness.workload.schema import Fault, Workload


@dataclass
class FaultEvent:
    """One fault as the nemesis injected it: the history's record of the fault."""

    fault: Fault
    injected_ns: int  # wall time of the kill: T in SPEC 4
    target: str = ""  # what it hit; "" when the injection failed
    recovered_ns: int | None = None  # when the harness restarted / resubmitted what it hit
    error: str | None = None


@dataclass(frozen=True)
class Expected:
    """What the run should have produced: the records sent and the oracle's answers."""

    records: list[Txn]
    oracle: list[Decision]
    windows: WindowsExpected | None  # None: the row applies no rules, or the workload has no windows
    applies_rules: bool


@dataclass(frozen=True)
class History:
    """What one engine's run left: every decision and window result received with its
    receive time, the faults injected, and the driver's and collector's own reports."""

    start: LoadStart
    end_ns: int  # the drain's end
    received: np.ndarray  # load.history.RECEIVED rows
    windows_received: np.ndarray | None  # load.history.WINDOW_RECEIVED rows
    faults: list[FaultEvent]
    driver: DriverReport
    collector: CollectorDone


@dataclass
class Verdict:
    latency: Latency
    throughput: Throughput
    correctness: Correctness
    windows: WindowsResult | None
    recovery: list[FaultResult]
    # Per second: offered, driver_max_lag_ms, received, p50_ms, p99_ms, backlog (timeseries.csv).
    series: list[dict[str, float | int | None]] = field(default_factory=list)
    # Why the row failed however its figures read: an engine that delivered nothing has no
    # latency to show and must not pass as a run (a CI job would see exit 0).
    failure: str | None = None


def judge(wl: Workload, expected: Expected, h: History) -> Verdict:
    first = metrics.first_copies(h.received)
    measure_from = h.start.wall_ns + int(wl.warmup_s * 1e9)
    measured = first[first["sent_ns"] >= measure_from]
    correctness = checker.check(h.received, expected.oracle, expected.applies_rules, h.collector.malformed,
                                v2_from_txn(wl, expected.records))
    series = _series(first, h)
    backlog = [int(r["backlog"] or 0) for r in series]
    last_recv = int(first["recv_ns"].max()) if len(first) else h.start.wall_ns
    windows = None
    if expected.windows is not None and h.windows_received is not None:
        wc = checker.check_windows(h.windows_received, expected.windows, h.start.wall_ns)
        windows = WindowsResult(**asdict(wc), exactly_once=wc.exactly_once)
    return Verdict(
        latency=Latency.model_validate(metrics.latency_summary(measured["recv_ns"] - measured["sent_ns"])),
        throughput=Throughput(
            offered_per_s=round(len(expected.records) / wl.duration_s, 1),
            sent=h.driver.sent,
            decisions_per_s=round(len(first) / max(1e-9, (last_recv - h.start.wall_ns) / 1e9), 1),
            driver_kept_schedule=h.driver.kept_schedule,
            driver_max_lag_ms=round(h.driver.max_lag_ms, 3),
            driver_late_sends=h.driver.late_sends,
            driver_delivery_errors=h.driver.delivery_errors,
            driver_first_error=h.driver.first_error,
            backlog_max=max(backlog, default=0),
            # Over the steady load (after warm-up, before any surge or fault): > 0 means
            # decisions fall further behind each second without anything pushing them.
            backlog_growth_per_s=metrics.growth_per_s(backlog, int(wl.warmup_s), int(wl.steady_until_s())),
        ),
        correctness=Correctness(**asdict(correctness), exactly_once=correctness.exactly_once),
        windows=windows,
        recovery=_recoveries(h, expected, first, measure_from),
        series=series,
        failure=None if len(first) or not expected.records else
        f"no decision arrived at all (0 of {len(expected.records):,} records sent got one)",
    )


def scheduled_ns(records: list[Txn], load_start_ns: int) -> np.ndarray:
    """Each record's intended send time (its `sent_ns`), indexed by txn_id."""
    out = np.zeros(len(records), dtype=np.int64)
    for r in records:
        out[r.txn_id] = load_start_ns + r.offset_ns
    return out


def _recoveries(h: History, expected: Expected, first: np.ndarray, measure_from: int) -> list[FaultResult]:
    """Each fault's figures, its window ending at the next fault (SPEC 4)."""
    out = []
    repeats = metrics.repeat_times(h.received)
    scheduled = scheduled_ns(expected.records, h.start.wall_ns)
    for i, ev in enumerate(h.faults):
        window_end = h.faults[i + 1].injected_ns if i + 1 < len(h.faults) else None
        until = window_end if window_end is not None else np.iinfo(np.int64).max
        rec = metrics.recovery(h.received, first, scheduled, ev.injected_ns, measure_from, h.end_ns,
                               baseline_until_ns=h.faults[0].injected_ns, next_fault_ns=window_end)
        out.append(FaultResult(
            fault=ev.fault, target=ev.target,
            at_s=round((ev.injected_ns - h.start.wall_ns) / 1e9, 3),
            recovered_after_s=(None if ev.recovered_ns is None else round((ev.recovered_ns - ev.injected_ns) / 1e9, 3)),
            error=ev.error, **{k: v for k, v in asdict(rec).items() if k != "fault_ns"},
            # Copies received from this fault until the next one: what its replay duplicated.
            duplicates=int(((repeats >= ev.injected_ns) & (repeats < until)).sum()),
        ))
    return out


def _series(first: np.ndarray, h: History) -> list[dict[str, float | int | None]]:
    seconds = int(np.ceil((h.end_ns - h.start.wall_ns) / 1e9))
    series = metrics.per_second(first, h.start.wall_ns, seconds)
    sent, lags = h.driver.per_second_sent, h.driver.per_second_max_lag_ms
    for row in series:
        s = int(row["second"] or 0)
        row["offered"] = sent[s] if s < len(sent) else 0
        row["driver_max_lag_ms"] = lags[s] if s < len(lags) else None
    backlog = metrics.backlog([int(r["offered"] or 0) for r in series], [int(r["received"] or 0) for r in series])
    for row, b in zip(series, backlog):
        row["backlog"] = b
    return series
