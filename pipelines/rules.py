"""The fraud rules of SPEC 2 for one user, shared by every pipeline that applies them.

One copy, so that the architectures differ in how they keep state and deliver output,
never in what they decide. Standard library only: each engine ships this file with its
job (the Kafka processor on PYTHONPATH, Spark with --py-files, Flink with -pyfs) and
imports it as the top-level module `rules`.
"""
from __future__ import annotations

import json
import time


class UserState:
    __slots__ = ("max_et", "events")

    def __init__(self, max_et: int | None = None, events: list[list[int]] | None = None) -> None:
        self.max_et = max_et
        self.events = events if events is not None else []  # [event_time_ms, amount], arrival order

    def encode(self) -> bytes:
        return json.dumps({"m": self.max_et, "e": self.events}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> UserState:
        d = json.loads(raw)
        return cls(d["m"], d["e"])


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
        st.events.append([t, amount])
        horizon = st.max_et - self.lateness - self.reach  # at or below: can never count again
        kept = []
        spend = count = 0
        for e in st.events:
            et = e[0]
            if et <= horizon:
                continue
            kept.append(e)
            if et <= t:
                if et > t - self.w:
                    spend += e[1]
                if et > t - self.v:
                    count += 1
        st.events = kept
        if spend > self.limit:
            return "BLOCK", "spend", spend, count
        if count > self.vlimit:
            return "BLOCK", "velocity", spend, count
        return "APPROVE", None, spend, count
