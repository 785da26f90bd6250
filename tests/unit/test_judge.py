"""What test_metrics.py and test_checker.py leave open: when a run counts as drained, the
recovery figures of a fault in the cases they do not build (no baseline, an engine that never
answers again, silence at the run's end or up to the next fault, a stall's waiting records,
a replay), the checker's counts around duplicates and malformed output, and the duplicates
each fault is charged with."""
from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from harness.judge import metrics
from harness.judge.checker import EXAMPLES, check
from harness.judge.oracle import Decision
from harness.load.history import DECISION_CODES, REASON_CODES, RECEIVED, UNKNOWN
from harness.run.runner import LiveState
from harness.workload.schema import Fault
from tests.conftest import make

S = 1_000_000_000
MS = 1_000_000

# The drain: the runner stops reading once the state says complete (and a grace period passed).


def test_the_drain_is_complete_once_every_txn_id_has_a_decision_whatever_the_duplicates() -> None:
    st = LiveState("kafka", expected=100, received=150, unique=99)
    assert not st.complete  # 150 copies, but one txn_id still without a decision
    st.unique = 100
    assert st.complete


def test_owed_window_results_keep_the_drain_going_after_the_last_decision() -> None:
    st = LiveState("kafka", expected=100, unique=100, windows_expected=5, windows=4)
    assert not st.complete
    st.windows = 5
    assert st.complete


def test_without_a_windows_output_the_decisions_alone_complete_the_drain() -> None:
    assert LiveState("passthrough", expected=3, unique=3).complete
    assert not LiveState("passthrough", expected=3, unique=2).complete


# Recovery of one fault (metrics.recovery)


def history(recv_ns: np.ndarray, sent_ns: np.ndarray, txn_ids: np.ndarray | None = None) -> np.ndarray:
    out = np.zeros(len(recv_ns), dtype=RECEIVED)
    out["txn_id"] = np.arange(len(recv_ns)) if txn_ids is None else txn_ids
    out["recv_ns"], out["sent_ns"] = recv_ns, sent_ns
    return out


def steady(seconds: float, latency_ms: float = 10, per_s: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Send times of `per_s` records a second for `seconds`, and their receive times."""
    sent = np.arange(0, int(seconds * per_s)) * (S // per_s)
    return sent, sent + int(latency_ms * MS)


def recover(h: np.ndarray, fault_s: float, end_s: float, scheduled: np.ndarray | None = None,
            **kw: int | None) -> metrics.Recovery:
    """`scheduled`: every record's intended send time by txn_id; default: those `h` holds."""
    first = metrics.first_copies(h)
    return metrics.recovery(h, first, first["sent_ns"] if scheduled is None else scheduled, int(fault_s * S), 0,
                            int(end_s * S), **kw)


@pytest.mark.parametrize(("latency_ms", "threshold_ms"), [(10, 110), (100, 200), (300, 600)])
def test_the_threshold_is_twice_the_pre_fault_p99_or_100_ms_more_whichever_is_larger(latency_ms: float,
                                                                                     threshold_ms: float) -> None:
    sent, recv = steady(40, latency_ms)
    r = recover(history(recv, sent), 30, 40)
    assert (r.pre_fault_p99_ms, r.threshold_ms) == (latency_ms, threshold_ms)


def test_a_fault_before_any_measured_decision_has_no_baseline_and_no_recovery() -> None:
    sent, recv = steady(40)
    h = history(recv, sent)
    r = metrics.recovery(h, metrics.first_copies(h), sent, 5 * S, measure_from_ns=10 * S, end_ns=40 * S)
    assert (r.recovered, r.recovery_time_s, r.pre_fault_p99_ms, r.threshold_ms) == (False, None, None, None)
    assert r.output_gap_s == pytest.approx(0.01)  # the gap is measured all the same


def test_an_engine_that_never_answers_again_never_recovers_and_its_gap_lasts_to_the_end() -> None:
    sent, recv = steady(60)
    keep = recv < 20 * S  # nothing after the fault at 20 s
    r = recover(history(recv[keep], sent[keep]), 20, 60, scheduled=sent)
    assert not r.recovered and r.recovery_time_s is None
    assert r.output_gap_s == 40


def test_silence_after_the_last_faults_output_resumed_is_the_drain_not_the_gap() -> None:
    """Output stalls from the fault at 20 s to 25 s, then flows until the load ends at 50 s;
    the run ends at 60 s. The gap is the stall, not the 10 quiet seconds at the end."""
    sent, recv = steady(50)
    recv[(recv >= 20 * S) & (recv < 25 * S)] = 25 * S
    r = recover(history(recv, sent), 20, 60)
    assert r.output_gap_s == 5
    assert r.recovered


def test_silence_up_to_the_next_fault_is_the_earlier_faults_gap() -> None:
    sent, recv = steady(60)
    keep = (recv < 20 * S) | ((recv >= 22 * S) & (recv < 24 * S)) | (recv >= 32 * S)
    r = recover(history(recv[keep], sent[keep]), 20, 60, next_fault_ns=30 * S)
    assert r.output_gap_s == pytest.approx(6.0, abs=0.02)  # from the last decision at 24 s to the fault at 30 s


def test_during_a_stall_the_rolling_p99_is_the_age_of_the_records_waiting() -> None:
    """Records sent from 4 s to 6 s are all decided at 6 s: at 5.9 s nothing was received for
    a second, and the p99 is that of the waiting records' ages (up to 1.9 s), not empty."""
    sent, recv = steady(10)
    recv[(sent >= 4 * S) & (sent < 6 * S)] = 6 * S
    h = history(recv, sent)
    at = np.array([int(5.9 * S), int(3.9 * S), 20 * S])
    p99 = metrics.rolling_p99(metrics.first_copies(h), sent, at)
    assert 1.85 * S < p99[0] < 1.9 * S
    assert p99[1] == 10 * MS
    assert np.isinf(p99[2])  # neither decisions nor waiting records: no figure


def test_a_replayed_copy_is_a_duplicate_not_a_late_decision() -> None:
    """After the fault at 20 s the engine replays the decisions of the second before it, 5 s
    late: latency and recovery are those of the first copies, the replay shows as duplicates."""
    sent, recv = steady(40)
    ids = np.arange(len(sent))
    replayed = (sent >= 19 * S) & (sent < 20 * S)
    h = history(np.concatenate([recv, np.full(replayed.sum(), 25 * S)]),
                np.concatenate([sent, sent[replayed]]), np.concatenate([ids, ids[replayed]]))
    r = recover(h, 20, 40)
    assert r.peak_p99_ms == 10 and r.recovered and r.recovery_time_s == pytest.approx(0.1)
    assert len(metrics.repeat_times(h)) == 100


# The checker

ORACLE = [Decision(i, 10 + i % 3, "BLOCK" if i % 4 == 0 else "APPROVE", "spend" if i % 4 == 0 else None, 100 * i, i)
          for i in range(12)]


def rows(*decisions: Decision) -> np.ndarray:
    return np.array([(d.txn_id, d.user_id, 0, 0, DECISION_CODES[d.decision], REASON_CODES[d.reason],
                      d.spend_cents, d.count, UNKNOWN, UNKNOWN) for d in decisions], dtype=RECEIVED)


def test_decision_counts_are_of_first_copies_so_duplicates_do_not_inflate_them() -> None:
    c = check(rows(*ORACLE, ORACLE[0], ORACLE[0], ORACLE[1]), ORACLE, apply_rules=True)
    assert c.duplicates == 3
    assert c.decisions == c.expected_decisions == {"APPROVE": 9, "BLOCK": 3, "LATE": 0}


def test_malformed_output_voids_exactly_once_even_when_every_decision_is_right() -> None:
    c = check(rows(*ORACLE), ORACLE, apply_rules=True, malformed=1)
    assert (c.missing, c.duplicates, c.wrong, c.malformed) == (0, 0, 0, 1)
    assert not c.exactly_once


def test_a_decision_for_a_txn_id_never_sent_voids_exactly_once() -> None:
    strays = [Decision(-1, 10, "APPROVE", None, 0, 0), Decision(len(ORACLE), 10, "APPROVE", None, 0, 0)]
    c = check(rows(*ORACLE, *strays), ORACLE, apply_rules=True)
    assert (c.missing, c.duplicates, c.wrong, c.unexpected) == (0, 0, 0, 2)
    assert c.examples["unexpected"] == ["-1", "12"] and not c.exactly_once


def test_the_examples_of_each_kind_stop_at_a_few() -> None:
    c = check(rows(), ORACLE, apply_rules=True)
    assert c.missing == len(ORACLE) and c.examples["missing"] == [str(i) for i in range(EXAMPLES)]


# The duplicates charged to each fault: those received from it until the next one.


@pytest.fixture
def judge() -> ModuleType:
    """The judge over a history (harness/judge/judge.py), once its message types exist."""
    pytest.importorskip("harness.load.messages", reason="harness/judge/judge.py needs harness.load.messages")
    from harness.judge import judge

    return judge


def test_each_fault_is_charged_the_duplicates_received_from_it_until_the_next(judge: ModuleType) -> None:
    from harness.load.messages import CollectorDone, DriverReport, LoadStart

    t0 = 1_800_000_000 * S
    wl = make(duration_s=30, warmup_s=1, rate=100,
              faults=[{"at_s": 10, "restart_after_s": 1}, {"at_s": 20, "restart_after_s": 1}])
    sent, recv = steady(30)
    ids = np.arange(len(sent))
    extra = [(ids[(sent >= 4 * S) & (sent < 5 * S)], 5 * S),  # before any fault: no fault's
             (ids[(sent >= 9 * S) & (sent < 10 * S)], 12 * S),  # replayed after the first fault
             (ids[(sent >= 19 * S) & (sent < 19.5 * S)], 21 * S),  # ... and after the second
             (ids[:1], 20 * S)]  # arriving as the second fault is injected: the second's
    copies = np.concatenate([i for i, _ in extra])
    h = history(t0 + np.concatenate([recv, *[np.full(len(i), at) for i, at in extra]]),
                t0 + np.concatenate([sent, sent[copies]]), np.concatenate([ids, copies]))
    oracle = [Decision(i, 0, "APPROVE", None, 0, 0) for i in range(len(sent))]
    driver = DriverReport(sent=len(sent), delivery_errors=0, max_lag_ms=1.0, late_sends=0, kept_schedule=True,
                          per_second_sent=[100] * 30, per_second_max_lag_ms=[1.0] * 30, cpu_seconds=1.0,
                          first_error=None)
    faults = [judge.FaultEvent(Fault(at_s=10, restart_after_s=1), t0 + 10 * S, "worker 0", t0 + 11 * S),
              judge.FaultEvent(Fault(at_s=20, restart_after_s=1), t0 + 20 * S, "worker 0", t0 + 21 * S)]
    v = judge.judge(wl, judge.Expected([], oracle, None, applies_rules=False),
                    judge.History(LoadStart(t0, 0), t0 + 32 * S, h, None, faults, driver,
                                  CollectorDone(len(h), 0, [], 1.0)))
    assert [f.duplicates for f in v.recovery] == [100, 51]
    assert v.correctness.duplicates == 100 + 100 + 50 + 1
    assert [f.at_s for f in v.recovery] == [10, 20] and [f.recovered_after_s for f in v.recovery] == [1, 1]
