"""The pipelines' shared rule code (pipelines/rules.py) against the oracle, without Kafka: a disagreement here
is a logic bug, not a delivery problem."""
from __future__ import annotations

from harness.judge.oracle import decide
from harness.load.generator import generate
from harness.workload.schema import Workload
from pipelines.rules import Rules as PipelineRules
from pipelines.rules import UserState
from tests.conftest import make


def _pipeline(records: list, wl: Workload) -> list[tuple[str, str | None, int, int]]:
    rules = PipelineRules(wl.rules.model_dump())
    states: dict[int, UserState] = {}
    out = []
    for r in records:
        st = states.setdefault(r.user_id, UserState())
        out.append(rules.apply(st, r.event_time_ms, r.amount_cents))
        # Round-trip through the changelog encoding, as a restore would.
        states[r.user_id] = UserState.decode(st.encode())
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
