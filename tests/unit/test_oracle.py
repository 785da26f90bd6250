from __future__ import annotations

from harness.judge.oracle import Decision, decide
from harness.load.generator import Txn
from harness.workload.schema import Rules

RULES = Rules(window_s=100, spend_limit_cents=1000, velocity_window_s=10, velocity_limit=3, allowed_lateness_s=5)


def run(*events: tuple[int, int], user: int = 1) -> list[Decision]:
    """events: (event_time_s, amount)"""
    records = [Txn(i, user, a, 1, int(t * 1000), i) for i, (t, a) in enumerate(events)]
    out = decide(records, RULES)
    return [out[i] for i in range(len(records))]


def test_spend_over_limit_blocks() -> None:
    d = run((0, 400), (1, 400), (2, 300))
    assert [x.decision for x in d] == ["APPROVE", "APPROVE", "BLOCK"]
    assert (d[2].reason, d[2].spend_cents, d[2].count) == ("spend", 1100, 3)
    assert run((0, 500), (1, 500))[1].decision == "APPROVE"  # = limit is not over it


def test_spend_window_is_half_open() -> None:
    # (t - W, t]: an event exactly W before no longer counts.
    d = run((0, 900), (100, 200))
    assert d[1].spend_cents == 200 and d[1].decision == "APPROVE"
    d = run((0.001, 900), (100, 200))
    assert d[1].spend_cents == 1100 and d[1].decision == "BLOCK"


def test_velocity_blocks_after_the_limit() -> None:
    d = run(*[(i, 1) for i in range(5)])
    assert [x.decision for x in d] == ["APPROVE"] * 3 + ["BLOCK"] * 2
    assert (d[3].reason, d[3].count) == ("velocity", 4)
    # Ten seconds later the first events have left the velocity window.
    assert run(*[(i, 1) for i in range(4)], (13, 1))[4].count == 1


def test_spend_wins_over_velocity() -> None:
    d = run(*[(i, 300) for i in range(5)])
    assert d[3].reason == "spend" and d[4].reason == "spend"


def test_late_event_is_late_and_changes_nothing() -> None:
    d = run((20, 100), (14, 950), (21, 100))
    assert d[1] == Decision(1, 1, "LATE", None, 0, 0)
    assert d[2].spend_cents == 200  # the late 950 was not retained


def test_out_of_order_within_lateness_looks_back_in_event_time() -> None:
    d = run((20, 100), (16, 200), (21, 50))
    # The event at 16 s is accepted but only sees events at or before 16 s.
    assert (d[1].decision, d[1].spend_cents, d[1].count) == ("APPROVE", 200, 1)
    assert (d[2].spend_cents, d[2].count) == (350, 3)
    # max_et stays 20: an event at 15 is still within lateness (15 >= 20 - 5).
    assert run((20, 1), (16, 1), (15, 1))[2].decision == "APPROVE"


def test_users_are_independent() -> None:
    records = [Txn(0, 1, 900, 1, 0, 0), Txn(1, 2, 900, 1, 0, 1), Txn(2, 1, 50, 1, 1000, 2)]
    out = decide(records, RULES)
    assert out[1].spend_cents == 900 and out[2].spend_cents == 950


def test_eviction_never_changes_a_decision() -> None:
    # Events far in the past are evicted; the window arithmetic alone excludes them anyway.
    d = run((0, 900), (150, 100), (200, 50))  # the event at 0 s is evicted at 200 s
    assert d[2].spend_cents == 150
