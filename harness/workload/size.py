"""What a workload costs the harness in memory, refused up front when it cannot fit: the run
builds its whole schedule of records, their encoded values, the oracle's decisions and the
history of what arrived in memory, so a schedule too long for it dies of MemoryError later."""
from __future__ import annotations

from typing import NamedTuple

import psutil

from harness.workload.schema import Burst, Phase, Workload

# Per scheduled event, held at once across the run's processes: tracemalloc counted 1,370 B
# (runner: records and oracle decisions, 450; driver: records, keys and encoded values, 495;
# collector: received rows, 325) on fraud-default at 2,000 ev/s for 120 s (240,000 events),
# and the processes' RSS ran 25 % above tracemalloc's count.
EVENT_BYTES = 1_700
# Per user: the generator's shuffled ids and Zipf table (tracemalloc: 72 B, 1M users).
USER_BYTES = 90
# Per fraud-burst event, all of them drawn before the run (tracemalloc: 117 B, 591,300 events).
BURST_EVENT_BYTES = 150
# Per (user, window end) of the windows output the oracle expects (tracemalloc: 520 B at its
# peak, windows.yaml with 100,000 users: 530,000 windows).
WINDOW_BYTES = 650
GIB = 2**30


class Need(NamedTuple):
    bytes: int
    events: int  # scheduled events
    burst_events: int


def _burst_events(b: Burst, duration_s: float) -> float:
    return b.per_minute * duration_s / 60 * b.events


def need(wl: Workload, rate: float, duration_s: float, phases: list[Phase]) -> Need:
    """Memory for `wl` run at `rate` for `duration_s`, with `phases` (a sweep step has none)."""
    events = rate * (duration_s + sum(p.duration_s * (p.multiplier - 1) for p in phases))
    bursts = sum(_burst_events(b, duration_s) for b in (wl.fraud.spend_bursts, wl.fraud.velocity_bursts))
    windows = 0.0
    if wl.windows is not None:
        per_event = wl.windows.size_s // wl.windows.slide_s
        # Each event adds to its user's windows; a user has one per window end in event time.
        ends = duration_s * wl.event_time_speed / wl.windows.slide_s + per_event
        windows = min(events * per_event, wl.users * ends)
    total = events * EVENT_BYTES + wl.users * USER_BYTES + bursts * BURST_EVENT_BYTES + windows * WINDOW_BYTES
    return Need(int(total), int(events), int(bursts))


def limit() -> int:
    """Half this machine's memory: the other half is for Kafka and the engine's clusters,
    whose JVM heaps alone take a few GiB here, and for the system."""
    return psutil.virtual_memory().total // 2


def problem(wl: Workload) -> str | None:
    """None if the run, and the largest step of its sweep, fit in memory; else a line naming
    the field to lower."""
    cap = limit()
    run = need(wl, wl.rate, wl.duration_s, wl.phases)
    if run.bytes > cap:
        counted = f"{run.events:,} events"
        field, lower = "rate", "rate or duration_s"
        if run.burst_events * BURST_EVENT_BYTES > run.events * EVENT_BYTES:
            counted += f" and {run.burst_events:,} fraud-burst events"
            field, lower = "fraud", "the bursts' per_minute or events"
        return (f"{field}: this workload needs about {run.bytes / GIB:,.1f} GiB in memory ({counted}); "
                f"the limit here is {cap / GIB:,.1f} GiB (half this machine's memory): lower {lower}")
    top = max(wl.sweep.rates)
    step = need(wl, top, wl.sweep.duration_s, [])
    if step.bytes > cap:
        return (f"sweep.rates: its step at {top:,.10g} ev/s needs about {step.bytes / GIB:,.1f} GiB in memory "
                f"({step.events:,} events); the limit here is {cap / GIB:,.1f} GiB (half this machine's memory): "
                f"lower its top rate or sweep.duration_s")
    return None
