"""The open-loop load driver (SPEC 1, 4): sends each record at its intended time.

A record's `sent_ns` is its *intended* send time. When the driver (or the broker under
it) falls behind, records go out late but keep their intended stamp, so the delay shows
up as latency instead of as a quieter schedule (no coordinated omission).
"""
from __future__ import annotations

import resource
import time
from multiprocessing import Queue
from typing import Any

from confluent_kafka import KafkaError, Producer

from harness.load.generator import encode_prefixes, generate
from harness.load.messages import DriverMessage, DriverReport, DriverTick, LoadStart, Ready
from harness.workload.schema import Workload

# The driver kept its schedule if at most this share of records went out later than
# `driver.max_lag_ms`: a single scheduler hiccup should not void a run.
SCHEDULE_TOLERANCE = 0.001
# The driver wakes at most once per tick and sends what is due: a wake-up per record cost
# it most of a core at 8,000 ev/s (measured, README "Protecting the instrument"), taken from
# the engine on 2 cores. A record waits at most a tick, which its latency includes, as it
# includes any delay (its stamp is its intended time).
TICK_NS = 1_000_000


def producer_config(client: dict[str, str], linger_ms: float) -> dict[str, Any]:
    """`client`: bootstrap.servers and the cluster's own settings (TLS, SASL)."""
    return {
        **client,
        "enable.idempotence": True,
        "linger.ms": linger_ms,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        # Java clients' partitioner, so a user lands where a JVM producer would put it.
        "partitioner": "murmur2_random",
    }


def run(client: dict[str, str], wl: Workload, stats: Queue[DriverMessage], start: Queue[LoadStart]) -> None:
    """Process entry point: generates the records, reports Ready, waits for the start
    instant, then sends the whole schedule, a DriverTick per second, and a DriverReport."""
    records = generate(wl)
    keys = [str(r.user_id).encode() for r in records]
    prefixes = encode_prefixes(wl, records)
    offsets = [r.offset_ns for r in records]
    # The record's timestamp is its event time: Flink's source takes its watermarks from it
    # (docs/design/event-time-windows.md); topics keep records forever (LocalKafka.create_topics).
    times = [r.event_time_ms for r in records]
    errors: list[str] = []

    def on_error(err: KafkaError, msg: Any = None) -> None:
        if err is not None:
            errors.append(str(err))

    producer = Producer({**producer_config(client, wl.driver.linger_ms),
                         "delivery.report.only.error": True, "on_delivery": on_error, "error_cb": on_error})
    topic = wl.kafka.transactions_topic
    produce = producer.produce
    poll = producer.poll
    mono = time.monotonic_ns
    max_lag_ns = int(wl.driver.max_lag_ms * 1e6)
    n = len(records)
    per_sec: list[int] = []
    per_sec_lag: list[float] = []
    late = 0
    worst = 0
    i = 0
    sec_sent = 0
    sec_lag = 0
    stats.put(Ready(n))
    begin = start.get()
    start_mono = begin.mono_ns
    start_wall = begin.wall_ns
    sec_end = start_mono + 1_000_000_000
    next_wake = start_mono
    while i < n:
        now = mono()
        if now >= sec_end:
            per_sec.append(sec_sent)
            per_sec_lag.append(sec_lag / 1e6)
            stats.put(DriverTick(len(per_sec) - 1, sec_sent, sec_lag / 1e6, i))
            sec_sent = 0
            sec_lag = 0
            sec_end += 1_000_000_000
            continue
        due = start_mono + offsets[i]
        wake = max(due, next_wake)
        if wake > now:
            poll(0)
            wait = wake - mono()
            if wait > 0:
                time.sleep(min(wait, sec_end - now) / 1e9)
            continue
        next_wake = now + TICK_NS
        lag = now - due
        if lag > sec_lag:
            sec_lag = lag
        # Send everything that is due: at high rates many records share one wake-up.
        while i < n and start_mono + offsets[i] <= now:
            off = offsets[i]
            value = prefixes[i] + b"%d}" % (start_wall + off)
            try:
                produce(topic, value, keys[i], timestamp=times[i])
            except BufferError:
                poll(0.05)
                continue
            if now - start_mono - off > max_lag_ns:
                late += 1
            i += 1
            sec_sent += 1
        if lag > worst:
            worst = lag
        poll(0)
    per_sec.append(sec_sent)
    per_sec_lag.append(sec_lag / 1e6)
    stats.put(DriverTick(len(per_sec) - 1, sec_sent, sec_lag / 1e6, i))
    remaining = producer.flush(60)
    if remaining:
        errors.append(f"{remaining} records still undelivered 60 s after the last send")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats.put(DriverReport(
        sent=n - remaining, delivery_errors=len(errors), max_lag_ms=worst / 1e6, late_sends=late,
        kept_schedule=late <= n * SCHEDULE_TOLERANCE and not errors,
        per_second_sent=per_sec, per_second_max_lag_ms=per_sec_lag,
        cpu_seconds=usage.ru_utime + usage.ru_stime, first_error=errors[0] if errors else None,
    ))
