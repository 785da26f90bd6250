"""Judges a run's decision history against the oracle (SPEC 4: exactly-once)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.judge import metrics
from harness.judge.oracle import Decision, WindowsExpected
from harness.load.history import DECISION_CODES, REASON_CODES

EXAMPLES = 5
_DECISION_NAMES = {v: k for k, v in DECISION_CODES.items()}
_REASON_NAMES = {v: k for k, v in REASON_CODES.items()}


@dataclass
class Correctness:
    expected: int
    received: int
    missing: int
    duplicates: int
    wrong: int | None  # None: the engine does not apply the rules (passthrough)
    unexpected: int  # decisions for txn_ids that were never sent
    malformed: int = 0
    decisions: dict[str, int] = field(default_factory=dict)  # first copies received, by decision
    expected_decisions: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)  # a few offenders, for a human
    # With a schema switch: missing / duplicates / wrong of the records sent in each version.
    by_schema: dict[str, dict[str, int | None]] = field(default_factory=dict)

    @property
    def exactly_once(self) -> bool:
        return self.missing == 0 and self.duplicates == 0 and not self.wrong and not self.unexpected \
            and not self.malformed


def expected_arrays(oracle: Sequence[Decision]) -> np.ndarray:
    arr = np.empty(len(oracle), dtype=[("user_id", "i8"), ("decision", "i1"), ("reason", "i1"),
                                       ("spend_cents", "i8"), ("count", "i8")])
    arr["user_id"] = [d.user_id for d in oracle]
    arr["decision"] = [DECISION_CODES[d.decision] for d in oracle]
    arr["reason"] = [REASON_CODES[d.reason] for d in oracle]
    arr["spend_cents"] = [d.spend_cents for d in oracle]
    arr["count"] = [d.count for d in oracle]
    return arr


def _describe(row: np.void) -> str:
    decision = _DECISION_NAMES.get(int(row["decision"]), "?")
    reason = _REASON_NAMES.get(int(row["reason"]), "?")
    return f"{decision}/{reason} spend={int(row['spend_cents'])} count={int(row['count'])}"


def check(received: np.ndarray, oracle: Sequence[Decision], apply_rules: bool, malformed: int = 0,
          v2_from_txn: int | None = None) -> Correctness:
    """`oracle[i]` is the decision for txn_id i; `received` holds history.RECEIVED rows.
    `v2_from_txn`: the first txn_id sent in value schema v2, if the run switched."""
    n = len(oracle)
    ids = received["txn_id"]
    known = (ids >= 0) & (ids < n)
    counts = np.bincount(ids[known], minlength=n)
    missing_ids = np.flatnonzero(counts == 0)
    dup_ids = np.flatnonzero(counts > 1)
    extra = np.maximum(counts - 1, 0)  # copies beyond the first, per txn_id
    exp = expected_arrays(oracle)
    names = list(DECISION_CODES)
    first = received[known][np.unique(ids[known], return_index=True)[1]]
    result = Correctness(
        expected=n, received=len(received), missing=len(missing_ids),
        duplicates=int(extra.sum()), wrong=None, unexpected=int((~known).sum()),
        malformed=malformed,
        decisions={k: int((first["decision"] == DECISION_CODES[k]).sum()) for k in names},
        expected_decisions={k: int((exp["decision"] == DECISION_CODES[k]).sum()) for k in names},
    )
    if len(missing_ids):
        result.examples["missing"] = [str(int(i)) for i in missing_ids[:EXAMPLES]]
    if len(dup_ids):
        result.examples["duplicates"] = [f"{int(i)} x{int(counts[i])}" for i in dup_ids[:EXAMPLES]]
    if result.unexpected:
        result.examples["unexpected"] = [str(int(i)) for i in ids[~known][:EXAMPLES]]
    bad_ids = np.empty(0, dtype=np.int64)
    if apply_rules:
        rows = received[known]
        want = exp[rows["txn_id"]]
        bad = np.zeros(len(rows), dtype=bool)
        for col in ("user_id", "decision", "reason", "spend_cents", "count"):
            bad |= rows[col] != want[col]
        bad_ids = np.unique(rows["txn_id"][bad])
        result.wrong = len(bad_ids)
        if len(bad_ids):
            shown = []
            for row in rows[bad][:EXAMPLES]:
                tid = int(row["txn_id"])
                shown.append(f"{tid}: got {_describe(row)}, expected {_describe(exp[tid])}")
            result.examples["wrong"] = shown
    else:
        # Without rules only the user id can be checked: a decision for the wrong record.
        rows = received[known]
        wrong_user = rows["user_id"] != exp["user_id"][rows["txn_id"]]
        bad_ids = np.unique(rows["txn_id"][wrong_user])
        if len(bad_ids):
            result.wrong = int(len(bad_ids))
    if v2_from_txn is not None:
        for version, lo, hi in (("v1", 0, v2_from_txn), ("v2", v2_from_txn, n)):
            result.by_schema[version] = {
                "sent": hi - lo,
                "missing": int(((missing_ids >= lo) & (missing_ids < hi)).sum()),
                "duplicates": int(extra[lo:hi].sum()),
                "wrong": int(((bad_ids >= lo) & (bad_ids < hi)).sum()) if result.wrong is not None else None,
            }
    return result


@dataclass
class WindowsCorrectness:
    required: int
    received: int
    missing: int  # required windows never received
    duplicates: int
    wrong: int  # spend or count differs from the oracle's
    unexpected: int  # neither required nor optional
    optional_received: int
    emission_delay_ms: dict[str, float | int | None] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def exactly_once(self) -> bool:
        return self.missing == 0 and self.duplicates == 0 and self.wrong == 0 and self.unexpected == 0


def check_windows(received: np.ndarray, expected: WindowsExpected, load_start_ns: int) -> WindowsCorrectness:
    """`received` holds history.WINDOW_RECEIVED rows. Emission delay per window result:
    its first copy's receive time minus the moment a perfect watermark passed its end."""
    order = np.argsort(received["recv_ns"], kind="stable")
    seen: dict[tuple[int, int], int] = {}
    delays: list[int] = []
    wrong: list[str] = []
    unexpected: list[str] = []
    for row in received[order]:
        key = (int(row["user_id"]), int(row["end_ms"]))
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            continue
        want = expected.required.get(key) or expected.optional.get(key)
        got = (int(row["spend_cents"]), int(row["count"]))
        if want is None:
            unexpected.append(f"user {key[0]} window ending {key[1]}: {got}")
            continue
        if got != want:
            wrong.append(f"user {key[0]} window ending {key[1]}: got spend/count {got}, expected {want}")
        delays.append(int(row["recv_ns"]) - load_start_ns - expected.ready_offset_ns[key[1]])
    missing = [k for k in expected.required if k not in seen]
    result = WindowsCorrectness(
        required=len(expected.required), received=len(received), missing=len(missing),
        duplicates=sum(n - 1 for n in seen.values()), wrong=len(wrong), unexpected=len(unexpected),
        optional_received=sum(1 for k in seen if k in expected.optional),
        emission_delay_ms=metrics.latency_summary(np.array(delays, dtype=np.int64)))
    for kind, items in (("missing", [f"user {u} window ending {e}" for u, e in sorted(missing)]),
                        ("wrong", wrong), ("unexpected", unexpected)):
        if items:
            result.examples[kind] = items[:EXAMPLES]
    return result
