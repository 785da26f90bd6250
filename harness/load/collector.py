"""Reads the decision stream as a downstream consumer would (read_committed) and
stamps each decision with the time it arrived (SPEC 4)."""
from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass
from multiprocessing import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, KafkaError

from harness.load.history import (
    DECISION_CODES,
    REASON_CODES,
    RECEIVED,
    UNKNOWN,
    WINDOW_RECEIVED,
)
from harness.load.messages import CollectorDone, CollectorMessage, CollectorTick, Ready
from harness.support.stats import percentiles


@dataclass(frozen=True)
class CollectorPlan:
    client: dict[str, str]  # bootstrap.servers and the cluster's own settings (TLS, SASL)
    group: str  # its consumer group: the run's names come first on a cluster it did not start
    topic: str
    out: Path  # .npy of RECEIVED rows, written when stopped
    # The windows output, read by the same consumer: its topic and its .npy of WINDOW_RECEIVED rows.
    windows_topic: str | None = None
    windows_out: Path | None = None


def consumer_config(client: dict[str, str], group: str) -> dict[str, Any]:
    return {
        **client,
        "group.id": group,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        # The collector is the measuring instrument: it must not add fetch batching delay.
        "fetch.wait.max.ms": 5,
    }


def _i64(value: object) -> int:
    """A whole number, or its digits as a string, that fits the history's int64 columns.
    Anything else (3.7, true, 2**63) makes the record malformed: truncating it could turn a
    wrong id into a right one, and one number too large for int64 would lose the whole
    history at np.save."""
    if isinstance(value, str) and value.lstrip("-").isdigit() and value.isascii():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ValueError(f"not a 64-bit whole number: {value!r}")
    return value


def _row(value: bytes, recv_ns: int, partition: int, offset: int) -> tuple[int, ...] | None:
    try:
        d = json.loads(value)
        return (_i64(d["txn_id"]), _i64(d["user_id"]), _i64(d["sent_ns"]), recv_ns,
                DECISION_CODES.get(d["decision"], UNKNOWN), REASON_CODES.get(d.get("reason"), UNKNOWN),
                _i64(d["spend_cents"]), _i64(d["count"]), partition, offset)
    except (ValueError, KeyError, TypeError):
        return None


def _window_row(value: bytes, recv_ns: int, partition: int, offset: int) -> tuple[int, ...] | None:
    try:
        d = json.loads(value)
        return (_i64(d["user_id"]), _i64(d["window_end_ms"]), _i64(d["spend_cents"]), _i64(d["count"]), recv_ns,
                partition, offset)
    except (ValueError, KeyError, TypeError):
        return None


def run(plan: CollectorPlan, stats: Queue[CollectorMessage], stop: Event) -> None:
    """Process entry point: collects until `stop` is set, a CollectorTick per second, then
    saves the history and reports CollectorDone."""
    consumer = Consumer(consumer_config(plan.client, plan.group))
    topics = [plan.topic, *([plan.windows_topic] if plan.windows_topic else [])]
    consumer.subscribe(topics, on_assign=lambda c, parts: stats.put(Ready(len(parts))))
    rows: list[tuple[int, ...]] = []
    window_rows: list[tuple[int, ...]] = []
    windows_seen: set[tuple[int, int]] = set()
    seen: set[int] = set()
    malformed = 0
    errors: list[str] = []
    sec_lat: list[int] = []
    next_tick = time.monotonic() + 1.0
    while not stop.is_set():
        first = consumer.poll(0.1)
        batch = []
        if first is not None:
            t_first = time.time_ns()
            rest = consumer.consume(10_000, 0)
            t_rest = time.time_ns()
            batch = [(first, t_first), *((m, t_rest) for m in rest)]
        for msg, recv_ns in batch:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    errors.append(str(err))
                continue
            if msg.topic() == plan.windows_topic:
                wrow = _window_row(msg.value(), recv_ns, msg.partition(), msg.offset())
                if wrow is None:
                    malformed += 1
                else:
                    window_rows.append(wrow)
                    windows_seen.add((wrow[0], wrow[1]))
                continue
            row = _row(msg.value(), recv_ns, msg.partition(), msg.offset())
            if row is None:
                malformed += 1
                continue
            rows.append(row)
            seen.add(row[0])
            sec_lat.append(recv_ns - row[2])
        if time.monotonic() >= next_tick:
            next_tick += 1.0
            p50 = p99 = None
            if sec_lat:
                p50, p99 = (round(x / 1e6, 1) for x in percentiles(np.array(sec_lat), [50, 99]))
            stats.put(CollectorTick(len(sec_lat), p50, p99, len(rows), len(seen), len(windows_seen)))
            sec_lat = []
    consumer.close()
    np.save(plan.out, np.array(rows, dtype=RECEIVED) if rows else np.empty(0, dtype=RECEIVED))
    if plan.windows_out is not None:
        np.save(plan.windows_out, np.array(window_rows, dtype=WINDOW_RECEIVED) if window_rows
                else np.empty(0, dtype=WINDOW_RECEIVED))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats.put(CollectorDone(len(rows), malformed, errors[:10], usage.ru_utime + usage.ru_stime))
