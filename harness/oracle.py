"""The reference decisions (SPEC 2 and 3), computed from the generated records.

Written independently of every pipeline: a sorted list per user with bisection, where
the pipelines keep their own structures, so that a shared mistake is unlikely.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import NamedTuple

from harness.generator import Txn
from harness.workload import Rules

APPROVE, BLOCK, LATE = "APPROVE", "BLOCK", "LATE"
SPEND, VELOCITY = "spend", "velocity"


class Decision(NamedTuple):
    txn_id: int
    user_id: int
    decision: str
    reason: str | None
    spend_cents: int
    count: int


class _User:
    __slots__ = ("times", "amounts", "max_et")

    def __init__(self) -> None:
        self.times: list[int] = []  # event times of retained events, ascending
        self.amounts: list[int] = []
        self.max_et: int | None = None


def decide(records: Iterable[Txn], rules: Rules) -> dict[int, Decision]:
    """Decision per txn_id. `records` must be in log order per user, as generated."""
    w = rules.window_s * 1000
    v = rules.velocity_window_s * 1000
    lateness = rules.allowed_lateness_s * 1000
    limit = rules.spend_limit_cents
    vlimit = rules.velocity_limit
    users: dict[int, _User] = {}
    out: dict[int, Decision] = {}
    for r in records:
        u = users.get(r.user_id)
        if u is None:
            u = users[r.user_id] = _User()
        t = r.event_time_ms
        if u.max_et is not None and t < u.max_et - lateness:
            out[r.txn_id] = Decision(r.txn_id, r.user_id, LATE, None, 0, 0)
            continue
        i = bisect.bisect_right(u.times, t)
        u.times.insert(i, t)
        u.amounts.insert(i, r.amount_cents)
        u.max_et = t if u.max_et is None else max(u.max_et, t)
        hi = i + 1  # retained events with e.t <= t end here
        spend = sum(u.amounts[bisect.bisect_right(u.times, t - w, 0, hi):hi])
        count = hi - bisect.bisect_right(u.times, t - v, 0, hi)
        if spend > limit:
            d = Decision(r.txn_id, r.user_id, BLOCK, SPEND, spend, count)
        elif count > vlimit:
            d = Decision(r.txn_id, r.user_id, BLOCK, VELOCITY, spend, count)
        else:
            d = Decision(r.txn_id, r.user_id, APPROVE, None, spend, count)
        out[r.txn_id] = d
        evict = bisect.bisect_right(u.times, u.max_et - lateness - w)
        if evict:
            del u.times[:evict]
            del u.amounts[:evict]
    return out
