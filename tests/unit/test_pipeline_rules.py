"""The pipelines' shared rule code (pipelines/rules.py) against the oracle, without Kafka: a disagreement here
is a logic bug, not a delivery problem."""
from __future__ import annotations

import random

import pytest

from harness.judge.oracle import decide
from harness.load.generator import Txn, generate
from harness.workload.schema import Rules, Workload
from pipelines.rules import Rules as PipelineRules
from pipelines.rules import UserState
from tests.conftest import make


def _pipeline(records: list, wl: Workload, restore_every: int = 1,
              states: dict[int, UserState] | None = None) -> list[tuple[str, str | None, int, int]]:
    rules = PipelineRules(wl.rules.model_dump())
    states = {} if states is None else states
    out = []
    for i, r in enumerate(records):
        st = states.setdefault(r.user_id, UserState())
        out.append(rules.apply(st, r.event_time_ms, r.amount_cents))
        if i % restore_every == 0:  # round-trip through the changelog encoding, as a restore would
            states[r.user_id] = UserState.decode(st.encode())
    return out


def _as_tuples(records: list[Txn], rules: Rules) -> list[tuple[str, str | None, int, int]]:
    expected = decide(records, rules)
    return [(d.decision, d.reason, d.spend_cents, d.count) for d in (expected[r.txn_id] for r in records)]


def _hot_user_against_oracle(rules: dict[str, int], n: int, seed: int, restore_every: int
                             ) -> tuple[list[tuple[str, str | None, int, int]], UserState]:
    """The rules' decisions on a `_hot_user` stream, checked against the oracle's, and the
    hot user's state at the end."""
    wl = make(rules=rules, out_of_order={"fraction": 0.05, "max_delay_ms": 1000})
    records = _hot_user(n, seed)
    states: dict[int, UserState] = {}
    got = _pipeline(records, wl, restore_every=restore_every, states=states)
    assert got == _as_tuples(records, wl.rules)
    return got, states[1]


def _hot_user(n: int, seed: int) -> list[Txn]:
    """One user's `n` records 1 ms apart in event time beside a few quiet users, 5 % of
    them delayed by up to 3 s (some beyond a 2-s lateness): the shape of a bot's stream."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = 1_000_000 + i
        if rng.random() < 0.05:
            t -= rng.randrange(3000)
        user = 1 if rng.random() < 0.95 else rng.randrange(2, 50)
        out.append(Txn(i, user, rng.randrange(1, 1000), 0, t, i))
    return out


def test_pipeline_rules_match_the_oracle(smoke: Workload) -> None:
    for wl in (smoke, make(rate=300, users=50, key_skew=1.0, duration_s=20, rules={"window_s": 5,
               "velocity_window_s": 2, "velocity_limit": 3, "allowed_lateness_s": 1, "spend_limit_cents": 20_000},
               out_of_order={"fraction": 0.3, "max_delay_ms": 1000})):
        records = generate(wl)
        expected = decide(records, wl.rules)
        got = _pipeline(records, wl)
        mismatches = [(r.txn_id, g, expected[r.txn_id]) for r, g in zip(records, got)
                      if g != (expected[r.txn_id].decision, expected[r.txn_id].reason,
                               expected[r.txn_id].spend_cents, expected[r.txn_id].count)]
        assert not mismatches, mismatches[:5]


def _never_evicted(records: list, wl: Workload) -> list[tuple[str, str | None, int, int]]:
    """SPEC 2's reference semantics, literally: every accepted event kept forever."""
    r = wl.rules
    w, v, lateness = r.window_s * 1000, r.velocity_window_s * 1000, r.allowed_lateness_s * 1000
    seen: dict[int, list[tuple[int, int]]] = {}
    out: list[tuple[str, str | None, int, int]] = []
    for rec in records:
        events = seen.setdefault(rec.user_id, [])
        t = rec.event_time_ms
        if events and t < max(e for e, _ in events) - lateness:
            out.append(("LATE", None, 0, 0))
            continue
        events.append((t, rec.amount_cents))
        spend = sum(a for e, a in events if t - w < e <= t)
        count = sum(1 for e, _ in events if t - v < e <= t)
        out.append(("BLOCK", "spend", spend, count) if spend > r.spend_limit_cents else
                   ("BLOCK", "velocity", spend, count) if count > r.velocity_limit else
                   ("APPROVE", None, spend, count))
    return out


@pytest.mark.parametrize("window_s,velocity_window_s", [(4, 20), (3, 3), (20, 4)])
def test_eviction_matches_never_evicting(window_s: int, velocity_window_s: int) -> None:
    # V > W is the case that broke (issue 13): an event past the spend window still counts
    # towards velocity, so evicting at max_et - L - W changed decisions.
    wl = make(rate=200, users=40, key_skew=1.0, duration_s=20,
              rules={"window_s": window_s, "velocity_window_s": velocity_window_s, "velocity_limit": 30,
                     "allowed_lateness_s": 2, "spend_limit_cents": 150_000},
              out_of_order={"fraction": 0.3, "max_delay_ms": 1500},
              beyond_lateness={"fraction": 0.02, "max_extra_ms": 3000})
    records = generate(wl)
    reference = _never_evicted(records, wl)
    oracle = decide(records, wl.rules)
    assert [tuple(oracle[r.txn_id])[2:] for r in records] == reference
    assert _pipeline(records, wl) == reference
    # The test would not notice a wrong horizon if nothing were ever evicted or blocked.
    assert {d for d, *_ in reference} >= {"APPROVE", "BLOCK", "LATE"}


def test_a_user_with_100k_retained_events() -> None:
    # Issue 14: the rules' cost may not grow with a user's history, and what makes it so
    # (running sums, binary search, eviction from the front) must not change a decision.
    # A short spend window keeps the oracle's plain sum cheap; the velocity window holds
    # over 100,000 events.
    got, hot = _hot_user_against_oracle({"window_s": 1, "velocity_window_s": 110, "allowed_lateness_s": 2,
                                         "spend_limit_cents": 480_000, "velocity_limit": 80_000},
                                        115_000, seed=3, restore_every=20_000)
    assert len(hot) >= 100_000
    assert {d[:2] for d in got} == {("APPROVE", None), ("BLOCK", "spend"), ("BLOCK", "velocity"), ("LATE", None)}


def test_evicted_events_compacted_without_changing_a_decision() -> None:
    # Short windows over a long stream: the evicted prefix is deleted many times over.
    got, hot = _hot_user_against_oracle({"window_s": 2, "velocity_window_s": 3, "allowed_lateness_s": 2,
                                         "spend_limit_cents": 925_000, "velocity_limit": 2_772},
                                        40_000, seed=4, restore_every=1_000_000)
    assert hot.base > 0  # compacted at least once
    assert {d[:2] for d in got} >= {("BLOCK", "spend"), ("BLOCK", "velocity"), ("LATE", None)}
