"""Latency, throughput and recovery figures from the decision history (SPEC 4)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.support.stats import percentiles

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
ROLLING_WINDOW_NS = 1_000_000_000
ROLLING_STEP_NS = 100_000_000
BASELINE_NS = 10_000_000_000  # the pre-fault window
STABLE_NS = 10_000_000_000


def _by_receive_time(received: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The records in receive order, and the index of each txn_id's first arrival there."""
    by_time = received[np.argsort(received["recv_ns"], kind="stable")]
    _, idx = np.unique(by_time["txn_id"], return_index=True)
    return by_time, idx


def first_copies(received: np.ndarray) -> np.ndarray:
    """The first arrival of each txn_id: the copy a downstream consumer acts on."""
    by_time, idx = _by_receive_time(received)
    return by_time[np.sort(idx)]


def repeat_times(received: np.ndarray) -> np.ndarray:
    """Receive times of every copy after a txn_id's first: when duplicates arrived."""
    by_time, idx = _by_receive_time(received)
    repeat = np.ones(len(by_time), dtype=bool)
    repeat[idx] = False
    return by_time["recv_ns"][repeat]


def latency_summary(latency_ns: np.ndarray) -> dict[str, float | int | None]:
    """Exact percentiles (ms) over every latency, not a sketch."""
    if len(latency_ns) == 0:
        return {**{k: None for k in PERCENTILES}, "max": None, "mean": None, "n": 0}
    ms = latency_ns / 1e6
    values = percentiles(ms, list(PERCENTILES.values()))
    out: dict[str, float | int | None] = {k: round(float(v), 3) for k, v in zip(PERCENTILES, values)}
    out["max"] = round(float(ms.max()), 3)
    out["mean"] = round(float(ms.mean()), 3)
    out["n"] = int(len(ms))
    return out


def latency_growth_ms(first: np.ndarray, from_ns: int, to_ns: int, bin_ns: int = 5_000_000_000) -> float:
    """How much latency grew over [from_ns, to_ns) by send time: the slope of a line fitted
    to the median latency of each `bin_ns` bin, times the span. Near 0 when the engine keeps
    up; the backlog's growth when it does not (0 with fewer than 3 bins of data)."""
    sent = first["sent_ns"]
    lat = (first["recv_ns"] - sent) / 1e6
    mids, medians = [], []
    for lo in range(from_ns, to_ns, bin_ns):
        window = lat[(sent >= lo) & (sent < lo + bin_ns)]
        if len(window):
            mids.append((lo + bin_ns / 2 - from_ns) / 1e9)
            medians.append(float(np.median(window)))
    if len(mids) < 3:
        return 0.0
    slope = float(np.polyfit(mids, medians, 1)[0])  # ms per second
    return round(slope * (to_ns - from_ns) / 1e9, 3)


def per_second(first: np.ndarray, start_ns: int, seconds: int) -> list[dict[str, float | int | None]]:
    """Decisions received per second of the run (by receive time) with their p50/p99."""
    rows: list[dict[str, float | int | None]] = []
    recv = first["recv_ns"]
    lat = first["recv_ns"] - first["sent_ns"]
    order = np.argsort(recv)
    recv, lat = recv[order], lat[order]
    for s in range(seconds):
        a, b = np.searchsorted(recv, [start_ns + s * 1_000_000_000, start_ns + (s + 1) * 1_000_000_000])
        window = lat[a:b]
        p50 = p99 = None
        if len(window):
            p50, p99 = (round(float(v) / 1e6, 3) for v in percentiles(window, [50, 99]))
        rows.append({"second": s, "received": int(b - a), "p50_ms": p50, "p99_ms": p99})
    return rows


def backlog(offered: list[int], received: list[int]) -> list[int]:
    """Per second: records sent so far minus records decided so far. Consumer lag as a
    reader of `transactions` and `decisions` sees it, for every engine alike: Spark keeps
    its offsets in its checkpoint and Flink commits them only with a checkpoint, so the
    group offsets would say little. Includes what is in flight to `decisions`."""
    return [int(v) for v in np.cumsum(offered) - np.cumsum(received)]


def growth_per_s(values: list[int], from_s: int, to_s: int) -> float | None:
    """The slope of a per-second series between two seconds (least squares), per second:
    a backlog that grows by N/s means the engine decides N records/s fewer than arrive."""
    ys = values[from_s:to_s]
    if len(ys) < 2:
        return None
    return round(float(np.polyfit(np.arange(len(ys)), ys, 1)[0]), 1)


def rolling_p99(first: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """At each instant x (ns): the p99 latency over the decisions received in (x - 1 s, x]
    and over the records sent by x but not yet decided, at their age at x (inf where there
    are neither). A stalled engine shows its growing backlog, not a silence; an engine that
    commits in bursts shows its real latency between them."""
    order = np.argsort(first["recv_ns"])
    recv = first["recv_ns"][order]
    sent = first["sent_ns"][order]
    lat = recv - sent
    lo = np.searchsorted(recv, xs - ROLLING_WINDOW_NS, side="right")
    hi = np.searchsorted(recv, xs, side="right")
    p99 = np.full(len(xs), np.inf)
    for k, (x, a, b) in enumerate(zip(xs, lo, hi)):
        later = sent[b:]  # decisions received after x: recv is sorted
        pending = x - later[later <= x]
        window = np.concatenate((lat[a:b], pending))
        if len(window):
            p99[k] = percentiles(window, [99])[0]
    return p99


@dataclass
class Recovery:
    fault_ns: int
    output_gap_s: float
    recovered: bool
    recovery_time_s: float | None
    pre_fault_p99_ms: float | None
    threshold_ms: float | None
    peak_p99_ms: float | None  # worst rolling 1-s p99 after the fault
    final_p99_ms: float | None  # the rolling p99 where the run ended: what it reached


def recovery(received: np.ndarray, first: np.ndarray, fault_ns: int, measure_from_ns: int, end_ns: int,
             baseline_until_ns: int | None = None, next_fault_ns: int | None = None) -> Recovery:
    """Output gap and recovery time of one fault injected at `fault_ns` (SPEC 4).

    The pre-fault p99 is taken over decisions received in the 10 s before
    `baseline_until_ns` (default: the fault), not before `measure_from_ns`: the steady
    state just before the fault, not an engine's slow first seconds (Spark's first
    micro-batches take seconds, and a baseline that includes them excuses any outage).
    With several faults in a run the caller passes the first fault's time, so a later
    fault is judged against the steady state, not against the previous fault's spike.
    A later fault also ends this one's window: what happens after `next_fault_ns` is
    that fault's doing.

    Recovered at the first instant x after the fault's last excursion from which the
    rolling 1-second p99 (evaluated every 100 ms) stays within max(2 x pre-fault p99,
    pre-fault p99 + 100 ms) for 10 s. "After the last excursion": right after a fault the
    backlog's ages have not yet grown past a threshold of several seconds, and 10 quiet
    seconds there are not a recovery; the p99 must be back *and stay back* in the
    fault's window. The p99 at x is taken over the decisions received in (x - 1 s, x] and
    over the records sent by x but not yet decided, at their age at x: an engine that
    commits its output in bursts (Flink, once per checkpoint) may receive nothing for a
    second without anything being late, while an engine that emits nothing during an
    outage shows its growing backlog. A window with neither (no load: the run's end) is
    no excursion, but does not count toward the 10 s either.
    """
    if next_fault_ns is not None:
        end_ns = min(end_ns, next_fault_ns)
    recv_all = np.sort(received["recv_ns"])
    after = recv_all[(recv_all >= fault_ns) & (recv_all <= end_ns)]
    # Silence up to the next fault is a gap; after the last fault the run's end is only the drain.
    edges = [fault_ns, *after, *([end_ns] if next_fault_ns is not None else [])]
    gap_ns = int(np.diff(edges).max()) if len(edges) > 1 else end_ns - fault_ns
    order = np.argsort(first["recv_ns"])
    recv = first["recv_ns"][order]
    lat = (first["recv_ns"] - first["sent_ns"])[order]
    baseline_end = baseline_until_ns or fault_ns
    pre = lat[(recv >= max(measure_from_ns, baseline_end - BASELINE_NS)) & (recv < baseline_end)]
    if len(pre) == 0:
        return Recovery(fault_ns, gap_ns / 1e9, False, None, None, None, None, None)
    pre_p99 = percentiles(pre, [99])[0]
    threshold = max(2 * pre_p99, pre_p99 + 100e6)
    xs = np.arange(fault_ns + ROLLING_STEP_NS, end_ns + 1, ROLLING_STEP_NS)
    p99 = rolling_p99(first, xs)
    ok = p99 <= threshold
    over = np.flatnonzero(np.isfinite(p99) & ~ok)
    start = int(over[-1]) + 1 if len(over) else 0
    need = STABLE_NS // ROLLING_STEP_NS
    recovered_at = None
    run = 0
    for k in range(start, len(ok)):
        run = run + 1 if ok[k] else 0
        if run > need:
            recovered_at = xs[k - need]
            break
    finite = p99[np.isfinite(p99)]
    return Recovery(
        fault_ns=fault_ns, output_gap_s=round(gap_ns / 1e9, 3), recovered=recovered_at is not None,
        recovery_time_s=None if recovered_at is None else round((int(recovered_at) - fault_ns) / 1e9, 3),
        pre_fault_p99_ms=round(pre_p99 / 1e6, 3), threshold_ms=round(threshold / 1e6, 3),
        peak_p99_ms=round(float(finite.max()) / 1e6, 3) if len(finite) else None,
        final_p99_ms=round(float(finite[-1]) / 1e6, 3) if len(finite) else None,
    )
