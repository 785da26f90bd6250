"""How fast the harness's own pure parts are (pytest-benchmark; `make selfbench`)."""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from harness.judge import checker, oracle
from harness.load import generator
from harness.load.history import DECISION_CODES, REASON_CODES, RECEIVED, UNKNOWN
from pipelines.rules import Rules, UserState
from tests.conftest import make

pytestmark = pytest.mark.selfbench
WL = make(rate=20_000, duration_s=5, users=20_000)  # 100k records


def test_generate(benchmark: Any) -> None:
    records = benchmark(generator.generate, WL)
    assert len(records) == 100_000


def test_encode(benchmark: Any) -> None:
    records = generator.generate(WL)
    out = benchmark(lambda: [generator.encode(r, 1) for r in records])
    assert len(out) == len(records)


def test_oracle(benchmark: Any) -> None:
    records = generator.generate(WL)
    assert len(benchmark(oracle.decide, records, WL.rules)) == len(records)


def test_checker(benchmark: Any) -> None:
    records = generator.generate(WL)
    decided = oracle.decide(records, WL.rules)
    expected = [decided[i] for i in range(len(records))]
    got = np.array([(d.txn_id, d.user_id, 0, 0, DECISION_CODES[d.decision], REASON_CODES[d.reason],
                     d.spend_cents, d.count, UNKNOWN, UNKNOWN) for d in expected], dtype=RECEIVED)
    result = benchmark(checker.check, got, expected, True)
    assert result.exactly_once


@pytest.mark.parametrize("delayed", [0.0, 0.05], ids=["in-order", "5%-delayed"])
@pytest.mark.parametrize("retained", [10, 1_000, 100_000])
def test_rules_per_record(benchmark: Any, retained: int, delayed: float) -> None:
    """One record decided by pipelines/rules.py for a user who holds `retained` events
    (fraud-default's rules), each record evicting about one so the state keeps its size;
    `delayed`: that share of records up to 8 s out of order, as in fraud-default."""
    rules = Rules({"window_s": 3600, "velocity_window_s": 60, "allowed_lateness_s": 10,
                   "spend_limit_cents": 500_000, "velocity_limit": 8})
    spacing = (rules.reach + rules.lateness) // retained
    st = UserState()
    rng = random.Random(1)
    clock = [0]

    def one() -> tuple[str, str | None, int, int]:
        clock[0] += spacing
        t = clock[0] - rng.randrange(8000) if rng.random() < delayed else clock[0]
        return rules.apply(st, t, rng.randrange(1, 5000))

    for _ in range(retained):
        one()
    benchmark(one)
    assert 0.9 * retained <= len(st) <= 1.1 * retained
