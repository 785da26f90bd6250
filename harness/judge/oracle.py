"""The reference decisions (SPEC 2 and 3), computed from the generated records.

Written independently of every pipeline: a sorted list per user with bisection, where
the pipelines keep their own structures, so that a shared mistake is unlikely.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from harness.load.generator import Txn
from harness.workload.schema import Rules, Windows

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
        # SPEC 2's horizon: nothing at or before it can count again, for either window.
        evict = bisect.bisect_right(u.times, u.max_et - lateness - max(w, v))
        if evict:
            del u.times[:evict]
            del u.amounts[:evict]
    return out


@dataclass(frozen=True)
class WindowsExpected:
    """The windows output an engine owes (docs/design/event-time-windows.md).

    `required`: windows every engine's watermark has passed by the end of the load;
    `optional`: windows near the end that fire or not depending on each partition's last
    event time, right if present; any other window is unexpected. Both map
    (user_id, window end ms) to (spend_cents, count) over all the user's events in the
    window. `ready_offset_ns`: per window end, when a perfect global watermark passed it,
    the schedule offset of the first record with event time at or after end + lateness."""

    required: dict[tuple[int, int], tuple[int, int]]
    optional: dict[tuple[int, int], tuple[int, int]]
    ready_offset_ns: dict[int, int]


def windows(records: list[Txn], spec: Windows, rules: Rules) -> WindowsExpected:
    """`records` in send order. Every event counts: a workload with windows has no events
    beyond the allowed lateness (workload validation), so no engine drops one."""
    size, slide = spec.size_s * 1000, spec.slide_s * 1000
    lateness = rules.allowed_lateness_s * 1000
    sums: dict[tuple[int, int], list[int]] = {}
    for r in records:
        first_end = (r.event_time_ms // slide + 1) * slide  # the window [end - size, end) holds t
        for end in range(first_end, first_end + size, slide):
            acc = sums.setdefault((r.user_id, end), [0, 0])
            acc[0] += r.amount_cents
            acc[1] += 1
    last = max((r.event_time_ms for r in records), default=0)
    required, optional = {}, {}
    for key, (spend, count) in sums.items():
        if key[1] <= last - lateness - slide:
            required[key] = (spend, count)
        elif key[1] <= last - lateness:
            optional[key] = (spend, count)
    ends = sorted({end for _, end in [*required, *optional]})
    ready: dict[int, int] = {}
    high = None
    i = 0
    for r in records:
        high = r.event_time_ms if high is None else max(high, r.event_time_ms)
        while i < len(ends) and high >= ends[i] + lateness:
            ready[ends[i]] = r.offset_ns
            i += 1
    return WindowsExpected(required, optional, ready)
