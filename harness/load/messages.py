"""What the driver and the collector tell the runner through their queues, one type per
message (they cross a process boundary: plain picklable dataclasses, no behaviour)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadStart:
    """From the runner: when the schedule's zero is."""

    wall_ns: int  # the load starts at this wall time (time.time_ns clock) ...
    mono_ns: int  # ... which is this instant on the monotonic clock


@dataclass(frozen=True)
class Ready:
    """The driver has generated `count` records; the collector was assigned `count` partitions."""

    count: int


@dataclass(frozen=True)
class DriverTick:
    """One second of the schedule."""

    second: int
    sent: int  # in that second
    max_lag_ms: float  # the worst send behind its intended time, in that second
    sent_total: int


@dataclass
class DriverReport:
    """The driver's last message, once every record is sent and flushed."""

    sent: int
    delivery_errors: int
    max_lag_ms: float
    late_sends: int  # records sent more than max_lag_ms after their intended time
    kept_schedule: bool
    per_second_sent: list[int]
    per_second_max_lag_ms: list[float]
    cpu_seconds: float
    first_error: str | None


@dataclass(frozen=True)
class CollectorTick:
    """One second of receiving."""

    received_last_s: int
    p50_ms: float | None
    p99_ms: float | None
    received: int  # decisions so far, copies included
    unique: int  # distinct txn_ids so far
    windows_unique: int  # distinct (user, window end) so far


@dataclass(frozen=True)
class CollectorDone:
    """The collector's last message, once its history is saved."""

    received: int
    malformed: int
    errors: list[str]
    cpu_seconds: float


DriverMessage = Ready | DriverTick | DriverReport
CollectorMessage = Ready | CollectorTick | CollectorDone
