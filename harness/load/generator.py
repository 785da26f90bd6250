"""The transaction stream (SPEC 1): a pure function of the workload and its seed.

Event time runs on a virtual clock that starts at `event_time_start` and advances with
the schedule (`event_time_speed` times as fast), so every record, and hence every oracle
decision, is known before the run; only `sent_ns` (the intended send time on the wall
clock) depends on when the run starts.
Only `random.Random.random()` is drawn from, whose sequence Python keeps stable.
"""
from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterator
from typing import NamedTuple

from harness.workload.schema import Burst, Workload

# Value schema v2 (workload `schema_v2_from_s`), what an app release might change: an
# added field (`channel`) and the optional `merchant_id` renamed to `merchant`, absent
# when the payment has no merchant (every tenth one here). Derived from fields already
# drawn, so the records, and the oracle's decisions, are the same under either schema.
CHANNELS = ("pos", "web", "mobile")


class Txn(NamedTuple):
    txn_id: int
    user_id: int
    amount_cents: int
    merchant_id: int
    event_time_ms: int
    offset_ns: int  # intended send time, relative to the start of the load


def encode_prefix(t: Txn, version: int = 1) -> bytes:
    """The JSON value up to `sent_ns`, whose digits the driver appends at send time."""
    if version == 1:
        return (
            f'{{"txn_id":{t.txn_id},"user_id":{t.user_id},"amount_cents":{t.amount_cents},'
            f'"merchant_id":{t.merchant_id},"event_time_ms":{t.event_time_ms},"v":1,"sent_ns":'
        ).encode()
    merchant = "" if t.txn_id % 10 == 9 else f'"merchant":{t.merchant_id},'
    return (
        f'{{"txn_id":{t.txn_id},"user_id":{t.user_id},"amount_cents":{t.amount_cents},{merchant}'
        f'"channel":"{CHANNELS[t.txn_id % 3]}","event_time_ms":{t.event_time_ms},"v":2,"sent_ns":'
    ).encode()


def v2_from_txn(wl: Workload, records: list[Txn]) -> int | None:
    """The first txn_id sent in schema v2 (records are in send order, txn_id = index)."""
    if wl.schema_v2_from_s is None:
        return None
    return bisect.bisect_left([r.offset_ns for r in records], wl.schema_v2_from_s * 1e9)


def encode_prefixes(wl: Workload, records: list[Txn]) -> list[bytes]:
    """Every record's prefix in the schema version in force at its send time."""
    first = v2_from_txn(wl, records)
    v2_from = len(records) if first is None else first
    return [encode_prefix(r, 2 if r.txn_id >= v2_from else 1) for r in records]


def encode(t: Txn, sent_ns: int, version: int = 1) -> bytes:
    return encode_prefix(t, version) + b"%d}" % sent_ns


def schedule(wl: Workload) -> list[int]:
    """Intended send offsets (ns from load start): evenly spaced at the rate in force."""
    end = wl.duration_s * 1e9
    phases = sorted(wl.phases, key=lambda p: p.start_s)
    bounds = [(p.start_s * 1e9, (p.start_s + p.duration_s) * 1e9, wl.rate * p.multiplier) for p in phases]
    out: list[int] = []
    t = 0.0
    i = 0
    while t < end:
        while i < len(bounds) and t >= bounds[i][1]:
            i += 1
        rate = bounds[i][2] if i < len(bounds) and bounds[i][0] <= t else wl.rate
        out.append(int(t))
        t += 1e9 / rate
    return out


def _zipf_cdf(n: int, s: float) -> list[float]:
    acc = 0.0
    cdf = []
    for k in range(1, n + 1):
        acc += k ** -s
        cdf.append(acc)
    return cdf


def _permutation(n: int, rng: random.Random) -> list[int]:
    """1..n shuffled, so that the hottest users are not simply the lowest ids."""
    ids = list(range(1, n + 1))
    for i in range(n - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        ids[i], ids[j] = ids[j], ids[i]
    return ids


def _bursts(b: Burst, kind: int, users: int, duration_ns: float, speed: float,
            rng: random.Random) -> Iterator[tuple[int, int, int, int]]:
    """(due_ns, kind, user_id, amount) of every event of every burst of one kind; the events
    are `spacing_ms` apart in event time, so `spacing_ms / speed` apart on the schedule."""
    if b.per_minute <= 0:
        return
    mean_gap_ns = 60e9 / b.per_minute
    t = -math.log(1.0 - rng.random()) * mean_gap_ns
    while t < duration_ns:
        user = 1 + int(rng.random() * users)
        for j in range(b.events):
            yield int(t) + int(j * b.spacing_ms * 1_000_000 / speed), kind, user, b.amount_cents
        t += -math.log(1.0 - rng.random()) * mean_gap_ns


def generate(wl: Workload) -> list[Txn]:
    offsets = schedule(wl)
    rng = random.Random(f"{wl.seed}:events")
    burst_rng = random.Random(f"{wl.seed}:bursts")
    ids = _permutation(wl.users, random.Random(f"{wl.seed}:users"))
    cdf = _zipf_cdf(wl.users, wl.key_skew)
    total = cdf[-1]
    duration_ns = wl.duration_s * 1e9
    pending = sorted([
        *_bursts(wl.fraud.spend_bursts, 0, wl.users, duration_ns, wl.event_time_speed, burst_rng),
        *_bursts(wl.fraud.velocity_bursts, 1, wl.users, duration_ns, wl.event_time_speed, burst_rng),
    ])

    base_ms = wl.event_time_start_ms
    lateness_ms = wl.rules.allowed_lateness_s * 1000
    ooo_frac = wl.out_of_order.fraction
    ooo_max = wl.out_of_order.max_delay_ms
    late_frac = ooo_frac + wl.beyond_lateness.fraction
    late_extra = wl.beyond_lateness.max_extra_ms
    median = wl.amount.median_cents
    sigma = wl.amount.sigma
    max_amount = wl.amount.max_cents
    merchants = wl.merchants
    rnd = rng.random
    speed = wl.event_time_speed
    nb = 0

    out: list[Txn] = []
    append = out.append
    for txn_id, off in enumerate(offsets):
        nominal_ms = base_ms + int(off * speed) // 1_000_000
        merchant = 1 + int(rnd() * merchants)
        if nb < len(pending) and pending[nb][0] <= off:
            _, _, user, amount = pending[nb]
            nb += 1
            append(Txn(txn_id, user, amount, merchant, nominal_ms, off))
            continue
        user = ids[bisect.bisect_left(cdf, rnd() * total)]
        # Box-Muller from two uniforms: only random() is drawn, for a stable sequence.
        z = math.sqrt(-2.0 * math.log(1.0 - rnd())) * math.cos(2.0 * math.pi * rnd())
        amount = min(max_amount, max(1, int(median * math.exp(sigma * z))))
        u = rnd()
        if u < ooo_frac:
            delay = 1 + int(rnd() * ooo_max)
        elif u < late_frac:
            delay = lateness_ms + 1 + int(rnd() * late_extra)
        else:
            delay = 0
        append(Txn(txn_id, user, amount, merchant, nominal_ms - delay, off))
    return out
