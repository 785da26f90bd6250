from __future__ import annotations

import json
from collections import Counter

from harness.judge.oracle import decide
from harness.load import generator
from harness.workload.schema import Workload
from tests.conftest import make


def test_same_file_and_seed_give_the_same_bytes(smoke: Workload) -> None:
    a = [generator.encode(t, 0) for t in generator.generate(smoke)]
    b = [generator.encode(t, 0) for t in generator.generate(smoke)]
    assert a == b
    other = smoke.model_copy(update={"seed": smoke.seed + 1})
    assert [generator.encode(t, 0) for t in generator.generate(other)] != a


def test_ids_are_dense_and_schedule_matches_rate(smoke: Workload) -> None:
    records = generator.generate(smoke)
    assert [r.txn_id for r in records] == list(range(len(records)))
    assert len(records) == smoke.rate * smoke.duration_s
    offsets = [r.offset_ns for r in records]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert offsets[-1] < smoke.duration_s * 1e9


def test_values_follow_the_schema(smoke: Workload) -> None:
    records = generator.generate(smoke)
    for r in records[:500]:
        v = json.loads(generator.encode(r, 1234))
        assert v == {"txn_id": r.txn_id, "user_id": r.user_id, "amount_cents": r.amount_cents,
                     "merchant_id": r.merchant_id, "event_time_ms": r.event_time_ms, "v": 1, "sent_ns": 1234}
        assert 1 <= r.user_id <= smoke.users and r.amount_cents > 0


def test_schema_v2_from_its_second_on() -> None:
    wl = make(duration_s=10, rate=100, schema_v2_from_s=4)
    records = generator.generate(wl)
    values = [json.loads(p + b"1}") for p in generator.encode_prefixes(wl, records)]
    for r, v in zip(records, values):
        assert v["v"] == (2 if r.offset_ns >= 4e9 else 1)
        assert (v["txn_id"], v["user_id"], v["amount_cents"], v["event_time_ms"]) == (
            r.txn_id, r.user_id, r.amount_cents, r.event_time_ms)
        if v["v"] == 2:
            assert "merchant_id" not in v and v["channel"] in generator.CHANNELS
            assert v.get("merchant", r.merchant_id) == r.merchant_id
    v2 = [v for v in values if v["v"] == 2]
    assert len(v2) == 600 and any("merchant" not in v for v in v2)
    # The records themselves do not depend on the schema: the oracle's decisions stay put.
    assert generator.generate(make(duration_s=10, rate=100)) == records


def test_phases_multiply_the_rate() -> None:
    wl = make(duration_s=10, rate=100, phases=[{"start_s": 4, "duration_s": 2, "multiplier": 10}])
    per_second = Counter(r.offset_ns // 1_000_000_000 for r in generator.generate(wl))
    assert per_second[3] == 100 and per_second[4] == 1000 and per_second[5] == 1000 and per_second[6] == 100


def test_out_of_order_and_late_fractions(smoke: Workload) -> None:
    records = generator.generate(smoke)
    base = smoke.event_time_start_ms
    delays = [base + r.offset_ns // 1_000_000 - r.event_time_ms for r in records]
    lateness = smoke.rules.allowed_lateness_s * 1000
    ooo = sum(1 for d in delays if 0 < d <= lateness) / len(records)
    beyond = sum(1 for d in delays if d > lateness) / len(records)
    assert abs(ooo - smoke.out_of_order.fraction) < 0.02
    assert abs(beyond - smoke.beyond_lateness.fraction) < 0.01


def test_skew_makes_hot_users() -> None:
    flat = Counter(r.user_id for r in generator.generate(make(users=1000, key_skew=0, rate=2000)))
    skewed = Counter(r.user_id for r in generator.generate(make(users=1000, key_skew=1.2, rate=2000)))
    assert max(skewed.values()) > 5 * max(flat.values())


def test_injected_fraud_produces_both_block_reasons(smoke: Workload) -> None:
    reasons = Counter(d.reason for d in decide(generator.generate(smoke), smoke.rules).values())
    assert reasons["spend"] > 0 and reasons["velocity"] > 0


def test_no_bursts_no_spend_blocks() -> None:
    wl = make(fraud={"spend_bursts": {"per_minute": 0, "events": 1, "amount_cents": 1, "spacing_ms": 0},
                     "velocity_bursts": {"per_minute": 0, "events": 1, "amount_cents": 1, "spacing_ms": 0}},
              users=100_000, key_skew=0)
    assert all(d.reason != "spend" for d in decide(generator.generate(wl), wl.rules).values())
