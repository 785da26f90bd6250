"""The fraud rules of SPEC 2 for one user, shared by every pipeline that applies them.

One copy, so that the architectures differ in how they keep state and deliver output,
never in what they decide. Standard library only: each engine ships this file with its
job (the Kafka processor on PYTHONPATH, Spark with --py-files, Flink with -pyfs) and
imports it as the top-level module `rules`.
"""
from __future__ import annotations

import time
from array import array
from bisect import bisect_right

# Evicted events stay at the front of the lists until they are this many and more than
# half: deleting a list's prefix is a copy of the rest, so it is done rarely.
_COMPACT_AT = 1024
_NONE = -(2**63)  # max_et of a user with no accepted event yet


class UserState:
    """A user's retained events sorted by event time, with a running sum of their amounts,
    so that a record costs a few binary searches whatever the user's history (issue 14):
    the spend of a window is the difference of two running sums. An out-of-order record
    adds its amount to the running sums of the events after it, which are only the ones
    within its delay.

    `times[i]`, `sums[i]`: event time and running sum (from the first event ever kept)
    of the i-th event; events before `head` are evicted, and `base` is the running sum
    just before `times[0]`. Machine-integer arrays, so that the state's encoding is two
    memory copies, whatever the engine keeps it in."""

    __slots__ = ("max_et", "times", "sums", "base", "head")

    def __init__(self, max_et: int | None = None) -> None:
        self.max_et = max_et
        self.times = array("q")
        self.sums = array("q")
        self.base = 0
        self.head = 0

    def __len__(self) -> int:
        return len(self.times) - self.head

    def sum_before(self, i: int) -> int:
        """The running sum of the events before index i."""
        return self.sums[i - 1] if i else self.base

    def add(self, t: int, amount: int) -> int:
        """Inserts the event after any with the same time; returns the index after it."""
        k = bisect_right(self.times, t, self.head)
        self.times.insert(k, t)
        self.sums.insert(k, self.sum_before(k) + amount)
        sums = self.sums
        for j in range(k + 1, len(sums)):
            sums[j] += amount
        return k + 1

    def evict(self, horizon: int) -> None:
        """Forgets the events at or before `horizon`."""
        self.head = bisect_right(self.times, horizon, self.head)
        if self.head > _COMPACT_AT and 2 * self.head > len(self.times):
            self.base = self.sums[self.head - 1]
            del self.times[:self.head]
            del self.sums[:self.head]
            self.head = 0

    def encode(self) -> bytes:
        """max_et, the running sum before the first retained event, their number, their
        times, their running sums: 64-bit integers in the machine's byte order."""
        h = self.head
        header = array("q", [_NONE if self.max_et is None else self.max_et, self.sum_before(h), len(self)])
        return header.tobytes() + self.times[h:].tobytes() + self.sums[h:].tobytes()

    @classmethod
    def decode(cls, raw: bytes) -> UserState:
        header = array("q")
        header.frombytes(raw[:24])
        max_et, base, n = header
        st = cls(None if max_et == _NONE else max_et)
        st.base = base
        view = memoryview(raw)
        st.times.frombytes(view[24:24 + 8 * n])
        st.sums.frombytes(view[24 + 8 * n:24 + 16 * n])
        return st


class Rules:
    def __init__(self, cfg: dict[str, float]) -> None:
        self.w = cfg["window_s"] * 1000
        self.v = cfg["velocity_window_s"] * 1000
        self.lateness = cfg["allowed_lateness_s"] * 1000
        self.limit = cfg["spend_limit_cents"]
        self.vlimit = cfg["velocity_limit"]
        self.model_cost_s = cfg.get("model_cost_ms", 0) / 1000
        # How far back an event can still count (SPEC 2): the longer window, since with
        # velocity_window_s > window_s an event past the spend window still counts velocity.
        self.reach = max(self.w, self.v)

    def score(self) -> None:
        """The simulated model (workload `model_cost_ms`): a fixed wait per event that
        releases the GIL, so an engine's parallel Python workers overlap it as they would a
        model server's answer. Its verdict does not change the SPEC's decision."""
        if self.model_cost_s:
            time.sleep(self.model_cost_s)

    def apply(self, st: UserState, t: int, amount: int) -> tuple[str, str | None, int, int]:
        """(decision, reason, spend_cents, count) for the user's next record; updates `st`
        unless the record is LATE, and evicts what can never count again."""
        self.score()
        if st.max_et is not None and t < st.max_et - self.lateness:
            return "LATE", None, 0, 0
        st.max_et = t if st.max_et is None else max(st.max_et, t)
        hi = st.add(t, amount)  # the retained events at or before t end here
        # Everything evicted lies at or before a horizon no accepted record's windows reach
        # (t >= max_et - lateness), so the searches can start at `head`.
        lo = bisect_right(st.times, t - self.w, st.head, hi)
        spend = st.sum_before(hi) - st.sum_before(lo)
        count = hi - bisect_right(st.times, t - self.v, st.head, hi)
        st.evict(st.max_et - self.lateness - self.reach)
        if spend > self.limit:
            return "BLOCK", "spend", spend, count
        if count > self.vlimit:
            return "BLOCK", "velocity", spend, count
        return "APPROVE", None, spend, count
