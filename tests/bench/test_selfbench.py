"""How fast the harness's own pure parts are (pytest-benchmark; `make selfbench`)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from harness.judge import checker, oracle
from harness.load import generator
from harness.load.history import DECISION_CODES, REASON_CODES, RECEIVED, UNKNOWN
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
