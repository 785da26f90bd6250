from __future__ import annotations

import numpy as np

from harness.judge.checker import check
from harness.judge.oracle import Decision
from harness.load.history import DECISION_CODES, REASON_CODES, RECEIVED, UNKNOWN

ORACLE = [
    Decision(0, 10, "APPROVE", None, 100, 1),
    Decision(1, 11, "BLOCK", "spend", 600_000, 2),
    Decision(2, 10, "LATE", None, 0, 0),
    Decision(3, 12, "BLOCK", "velocity", 900, 9),
]


def rows(*decisions: Decision, recv: int = 0) -> np.ndarray:
    return np.array([(d.txn_id, d.user_id, 0, recv, DECISION_CODES[d.decision], REASON_CODES[d.reason],
                      d.spend_cents, d.count, UNKNOWN, UNKNOWN) for d in decisions], dtype=RECEIVED)


def test_all_correct_is_exactly_once() -> None:
    c = check(rows(*ORACLE), ORACLE, apply_rules=True)
    assert (c.missing, c.duplicates, c.wrong, c.unexpected) == (0, 0, 0, 0)
    assert c.exactly_once and c.decisions == c.expected_decisions == {"APPROVE": 1, "BLOCK": 2, "LATE": 1}


def test_missing_duplicates_wrong_unexpected() -> None:
    bad = ORACLE[3]._replace(count=8)
    got = rows(ORACLE[0], ORACLE[0], ORACLE[0], ORACLE[1], bad, Decision(99, 1, "APPROVE", None, 0, 0))
    c = check(got, ORACLE, apply_rules=True)
    assert (c.missing, c.duplicates, c.wrong, c.unexpected) == (1, 2, 1, 1)
    assert not c.exactly_once
    assert c.examples["missing"] == ["2"]
    assert c.examples["duplicates"] == ["0 x3"]
    assert "3: got BLOCK/velocity spend=900 count=8, expected BLOCK/velocity spend=900 count=9" in c.examples["wrong"]


def test_a_wrong_duplicate_counts_once_as_wrong() -> None:
    c = check(rows(ORACLE[0], ORACLE[0]._replace(decision="BLOCK", reason="spend"), *ORACLE[1:]), ORACLE, True)
    assert (c.duplicates, c.wrong) == (1, 1)


def test_passthrough_is_judged_on_delivery_only() -> None:
    copies = [Decision(d.txn_id, d.user_id, "APPROVE", None, 0, 0) for d in ORACLE]
    c = check(rows(*copies), ORACLE, apply_rules=False)
    assert c.wrong is None and c.exactly_once
    c = check(rows(*copies[:3], copies[3]._replace(user_id=1)), ORACLE, apply_rules=False)
    assert c.wrong == 1


def test_empty_history() -> None:
    c = check(np.empty(0, dtype=RECEIVED), ORACLE, apply_rules=True)
    assert (c.missing, c.received, c.wrong) == (4, 0, 0)


def test_split_by_schema_version_shows_where_a_pipeline_broke() -> None:
    bad = ORACLE[3]._replace(count=8)
    c = check(rows(ORACLE[0], ORACLE[1], ORACLE[1], bad), ORACLE, apply_rules=True, v2_from_txn=2)
    assert c.by_schema == {"v1": {"sent": 2, "missing": 0, "duplicates": 1, "wrong": 0},
                           "v2": {"sent": 2, "missing": 1, "duplicates": 0, "wrong": 1}}
    assert check(rows(*ORACLE), ORACLE, apply_rules=True).by_schema == {}
