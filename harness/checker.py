"""Judges a run's decision history against the oracle (SPEC 4: exactly-once)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.collector import DECISION_CODES, REASON_CODES
from harness.oracle import Decision

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
    """`oracle[i]` is the decision for txn_id i; `received` holds collector.RECEIVED rows.
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
