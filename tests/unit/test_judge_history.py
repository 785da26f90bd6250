"""The judge over made-up histories: an engine that answers every record 20 ms after it
is sent, stops for a fault, replays some decisions and catches up."""
from __future__ import annotations

import numpy as np
import pytest

from harness.judge.judge import Expected, FaultEvent, History, Verdict, judge
from harness.judge.oracle import Decision, decide
from harness.load.generator import Txn, generate
from harness.load.history import DECISION_CODES, REASON_CODES, RECEIVED, UNKNOWN
from harness.load.messages import CollectorDone, DriverReport, LoadStart
from harness.workload.schema import Workload
from tests.conftest import make

T0 = 1_800_000_000_000_000_000
S = 1_000_000_000
FAULT_S, BACK_S = 10, 14  # the engine answers nothing from the fault until it is back


@pytest.fixture(scope="module")
def run() -> tuple[Workload, list[Txn], list[Decision]]:
    wl = make(duration_s=30, warmup_s=2, rate=50, faults=[{"at_s": FAULT_S, "action": "kill", "target": "worker"}])
    records = generate(wl)
    by_id = decide(records, wl.rules)
    return wl, records, [by_id[i] for i in range(len(records))]


def received(records: list[Txn], oracle: list[Decision], skip: int = 0, replay_from_s: float | None = None
             ) -> np.ndarray:
    """Every record decided as the oracle says, 20 ms after it was sent, except: nothing
    arrives during the outage (those records come when the engine is back, +1 ms each), the
    last `skip` are lost, and those sent from `replay_from_s` to the fault come twice."""
    rows = []
    back = T0 + BACK_S * S
    for t, d in zip(records[:len(records) - skip], oracle):
        sent = T0 + t.offset_ns
        recv = sent + 20_000_000
        if T0 + FAULT_S * S <= recv < back:
            recv = back + (recv - T0 - FAULT_S * S) // 1000
        row = (t.txn_id, t.user_id, sent, recv, DECISION_CODES[d.decision], REASON_CODES[d.reason], d.spend_cents,
               d.count, UNKNOWN, UNKNOWN)
        rows.append(row)
        if replay_from_s is not None and T0 + replay_from_s * S <= sent < T0 + FAULT_S * S:
            rows.append((*row[:3], back + 500_000_000, *row[4:]))
    return np.array(sorted(rows, key=lambda r: r[3]), dtype=RECEIVED)


def verdict(run: tuple[Workload, list[Txn], list[Decision]], history: np.ndarray) -> Verdict:
    wl, records, oracle = run
    per_s = [sum(1 for r in records if s * S <= r.offset_ns < (s + 1) * S) for s in range(int(wl.duration_s))]
    report = DriverReport(sent=len(records), delivery_errors=0, max_lag_ms=1.0, late_sends=0, kept_schedule=True,
                          per_second_sent=per_s, per_second_max_lag_ms=[1.0] * len(per_s), cpu_seconds=1.0,
                          first_error=None)
    fault = FaultEvent(wl.faults[0], injected_ns=T0 + FAULT_S * S, target="kafka-processor-0 (pid 1)",
                       recovered_ns=T0 + (FAULT_S + 3) * S)
    h = History(LoadStart(T0, 0), T0 + (int(wl.duration_s) + 2) * S, history, None, [fault], report,
                CollectorDone(len(history), 0, [], 1.0))
    return judge(wl, Expected(records, oracle, None, applies_rules=True), h)


def test_a_clean_run_is_exactly_once_with_the_latency_it_had(run: tuple[Workload, list[Txn], list[Decision]]
                                                             ) -> None:
    v = verdict(run, received(*run[1:]))
    assert v.correctness.exactly_once and v.correctness.wrong == 0
    assert v.latency.p50 == pytest.approx(20.0)
    assert v.throughput.sent == len(run[1]) and v.throughput.driver_kept_schedule


def test_the_outage_shows_as_a_gap_then_a_recovery(run: tuple[Workload, list[Txn], list[Decision]]) -> None:
    [rec] = verdict(run, received(*run[1:])).recovery
    assert rec.at_s == FAULT_S and rec.recovered_after_s == 3
    assert rec.output_gap_s == pytest.approx(BACK_S - FAULT_S, abs=0.1)
    assert rec.recovered and rec.recovery_time_s and rec.recovery_time_s >= rec.output_gap_s
    assert rec.pre_fault_p99_ms == pytest.approx(20.0)


def test_the_backlog_builds_during_the_outage_and_drains(run: tuple[Workload, list[Txn], list[Decision]]) -> None:
    series = verdict(run, received(*run[1:])).series
    backlog = {int(r["second"] or 0): r["backlog"] for r in series}
    assert backlog[BACK_S - 1] == pytest.approx(50 * (BACK_S - FAULT_S), rel=0.3)
    assert backlog[BACK_S + 2] == backlog[5] == pytest.approx(1, abs=2)


def test_replayed_decisions_count_as_the_faults_duplicates(run: tuple[Workload, list[Txn], list[Decision]]) -> None:
    v = verdict(run, received(*run[1:], replay_from_s=FAULT_S - 1))
    assert v.correctness.duplicates == v.recovery[0].duplicates == pytest.approx(50, abs=10)
    assert not v.correctness.exactly_once and v.correctness.missing == 0


def test_lost_decisions_are_missing(run: tuple[Workload, list[Txn], list[Decision]]) -> None:
    v = verdict(run, received(*run[1:], skip=7))
    assert (v.correctness.missing, v.correctness.duplicates) == (7, 0)


def test_an_engine_that_delivered_nothing_fails_its_row(run: tuple[Workload, list[Txn], list[Decision]]) -> None:
    v = verdict(run, np.empty(0, dtype=RECEIVED))
    assert v.failure is not None and f"0 of {len(run[1]):,}" in v.failure
    assert verdict(run, received(*run[1:], skip=len(run[1]) - 1)).failure is None
