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
NEVER = np.iinfo(np.int64).max


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


def decided_at(first: np.ndarray, count: int) -> np.ndarray:
    """Per txn_id 0..count-1: when its first decision arrived (ns), int64 max if never."""
    out = np.full(count, NEVER, dtype=np.int64)
    ids = first["txn_id"]
    known = (ids >= 0) & (ids < count)  # an unexpected txn_id is the checker's business
    out[ids[known]] = first["recv_ns"][known]
    return out


def rolling_p99(first: np.ndarray, scheduled_ns: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """At each instant x (ns): the p99 latency over the decisions received in (x - 1 s, x]
    and over every record due by x (`scheduled_ns`, its intended send time, by txn_id)
    and not decided by x, at its age at x (inf where there are neither). A stalled engine
    shows its growing backlog, not a silence, and so does a record it never decides; an
    engine that commits in bursts shows its real latency between them."""
    order = np.argsort(first["recv_ns"])
    recv = first["recv_ns"][order]
    lat = recv - first["sent_ns"][order]
    lo = np.searchsorted(recv, xs - ROLLING_WINDOW_NS, side="right")
    hi = np.searchsorted(recv, xs, side="right")
    by_sent = np.argsort(scheduled_ns, kind="stable")
    sent = scheduled_ns[by_sent]
    done = decided_at(first, len(scheduled_ns))[by_sent]
    due = np.searchsorted(sent, xs, side="right")
    p99 = np.full(len(xs), np.inf)
    for k, (x, a, b, n) in enumerate(zip(xs, lo, hi, due)):
        waiting = sent[:n][done[:n] > x]
        window = np.concatenate((lat[a:b], x - waiting))
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
    worst_after_recovery_p99_ms: float | None  # worst rolling 1-s p99 from the recovery on
    final_p99_ms: float | None  # the rolling p99 where the run ended: what it reached


def recovery(received: np.ndarray, first: np.ndarray, scheduled_ns: np.ndarray, fault_ns: int,
             measure_from_ns: int, end_ns: int, baseline_until_ns: int | None = None,
             next_fault_ns: int | None = None) -> Recovery:
    """Output gap and recovery time of one fault injected at `fault_ns` (docs/spec.md, section 4).

    The pre-fault p99 is taken over decisions received in the 10 s before
    `baseline_until_ns` (default: the fault), not before `measure_from_ns`: the steady
    state just before the fault, not an engine's slow first seconds (Spark's first
    micro-batches take seconds, and a baseline that includes them excuses any outage).
    With several faults in a run the caller passes the first fault's time, so a later
    fault is judged against the steady state, not against the previous fault's spike.
    A later fault also ends this one's window: what happens after `next_fault_ns` is
    that fault's doing.

    Recovered at the start of the first 10-s stretch after the fault in which the rolling
    1-second p99 (evaluated every 100 ms) stays within max(2 x pre-fault p99, pre-fault
    p99 + 100 ms). The p99 at x counts the decisions received in (x - 1 s, x] and every
    record due by x and not decided by x at its age at x (`rolling_p99`): a stall that
    starts seconds after the fault ages its waiting records past the threshold and breaks
    the stretch, so it cannot pass for a recovery, while a blip long after the engine came
    back does not move the recovery (it shows in `worst_after_recovery_p99_ms`).
    The stretch may not overlap the output gap, the fault's outage: with a threshold longer
    than the stretch (a micro-batch engine at a 12-s p99 has 24 s) the waiting records of a
    20-s stall never age past it within 10 s, and the stall would pass for a recovery at
    the fault (docs/spec.md, section 4, says so). A fault that stops nothing has only a
    short gap somewhere, which a stretch before it may well precede. A window with
    neither decisions nor waiting records (no load: the run's end) is no evidence and
    breaks the stretch too.
    """
    if next_fault_ns is not None:
        end_ns = min(end_ns, next_fault_ns)
    recv_all = np.sort(received["recv_ns"])
    after = recv_all[(recv_all >= fault_ns) & (recv_all <= end_ns)]
    # Silence up to the next fault is a gap; after the last fault the run's end is only the drain.
    edges = np.array([fault_ns, *after, *([end_ns] if next_fault_ns is not None else [])], dtype=np.int64)
    if len(edges) > 1:
        longest = int(np.argmax(np.diff(edges)))
        silent_from, resumed_ns = int(edges[longest]), int(edges[longest + 1])
    else:
        silent_from, resumed_ns = fault_ns, end_ns
    gap_ns = resumed_ns - silent_from
    order = np.argsort(first["recv_ns"])
    recv = first["recv_ns"][order]
    lat = (first["recv_ns"] - first["sent_ns"])[order]
    baseline_end = baseline_until_ns or fault_ns
    pre = lat[(recv >= max(measure_from_ns, baseline_end - BASELINE_NS)) & (recv < baseline_end)]
    if len(pre) == 0:
        return Recovery(fault_ns, gap_ns / 1e9, False, None, None, None, None, None, None)
    pre_p99 = percentiles(pre, [99])[0]
    threshold = max(2 * pre_p99, pre_p99 + 100e6)
    xs = np.arange(fault_ns + ROLLING_STEP_NS, end_ns + 1, ROLLING_STEP_NS)
    p99 = rolling_p99(first, scheduled_ns, xs)
    need = STABLE_NS // ROLLING_STEP_NS
    start: int | None = None
    run = 0
    for k, ok in enumerate(p99 <= threshold):
        run = run + 1 if ok and not silent_from < xs[k] < resumed_ns else 0
        if run > need:
            start = k - need
            break
    finite = p99[np.isfinite(p99)]
    after_recovery = p99[start:][np.isfinite(p99[start:])] if start is not None else finite[:0]
    ms = lambda v: round(float(v) / 1e6, 3)  # noqa: E731
    return Recovery(
        fault_ns=fault_ns, output_gap_s=round(gap_ns / 1e9, 3), recovered=start is not None,
        recovery_time_s=None if start is None else round((int(xs[start]) - fault_ns) / 1e9, 3),
        pre_fault_p99_ms=ms(pre_p99), threshold_ms=ms(threshold),
        peak_p99_ms=ms(finite.max()) if len(finite) else None,
        worst_after_recovery_p99_ms=ms(after_recovery.max()) if len(after_recovery) else None,
        final_p99_ms=ms(finite[-1]) if len(finite) else None,
    )
