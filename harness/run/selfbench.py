"""The harness's own instruments measured against a real broker: the rate the load
driver keeps, and the rate at which the collector reads decisions."""
from __future__ import annotations

import multiprocessing as mp
import queue
import time
from typing import Any

from harness.backends.local import LocalKafka
from harness.load import driver
from harness.load.messages import CollectorTick, DriverReport, DriverTick, LoadStart, Ready
from harness.support.console import console
from harness.support.paths import CACHE
from harness.workload.schema import Workload


def driver_max_rate(base: Workload, rate: float, seconds: float) -> DriverReport:
    wl = base.model_copy(update={"rate": rate, "duration_s": seconds, "phases": [], "faults": [],
                                 "warmup_s": 0.0})
    kafka = LocalKafka(wl.kafka, CACHE / "driver-bench-logs")
    ctx = mp.get_context("spawn")
    stats: mp.Queue[Any] = ctx.Queue()
    start_q: mp.Queue[LoadStart] = ctx.Queue()
    proc: mp.process.BaseProcess | None = None
    try:
        kafka.start()
        kafka.create_topics(wl.kafka.partitions, [wl.kafka.transactions_topic])
        proc = ctx.Process(target=driver.run, args=(kafka.client, wl, stats, start_q))
        proc.start()
        with console.status(f"Generating {rate * seconds:,.0f} records"):
            while not isinstance(stats.get(timeout=600), Ready):
                pass
        start_q.put(LoadStart(time.time_ns() + 500_000_000, time.monotonic_ns() + 500_000_000))
        report: DriverReport | None = None
        while report is None:
            try:
                msg = stats.get(timeout=1)
            except queue.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"driver died (exit code {proc.exitcode})") from None
                continue
            if isinstance(msg, DriverTick):
                console.print(f"  second {msg.second:>3}: sent {msg.sent:>7,}  max lag {msg.max_lag_ms:8.1f} ms")
            elif isinstance(msg, DriverReport):
                report = msg
        proc.join(timeout=30)
    finally:
        if proc is not None and proc.is_alive():
            proc.kill()
        kafka.stop()
    sustained = report.sent / seconds
    console.print(f"driver at {rate:,.0f} ev/s for {seconds:.0f} s: sent {report.sent:,} ({sustained:,.0f}/s), "
                  f"max lag {report.max_lag_ms:.1f} ms, late sends {report.late_sends:,}, "
                  f"kept schedule: {report.kept_schedule}, CPU {report.cpu_seconds:.1f} s, "
                  f"delivery errors {report.delivery_errors}")
    return report


def collector_max_rate(wl: Workload, records: int) -> float:
    """Decisions/s the collector reads from a backlog of `records` decisions."""
    from confluent_kafka import Producer

    from harness.load import collector

    kafka = LocalKafka(wl.kafka, CACHE / "driver-bench-logs")
    ctx = mp.get_context("spawn")
    stats: mp.Queue[Any] = ctx.Queue()
    stop = ctx.Event()
    proc: mp.process.BaseProcess | None = None
    try:
        kafka.start()
        kafka.create_topics(wl.kafka.partitions, [wl.kafka.decisions_topic])
        producer = Producer(driver.producer_config(kafka.client, 5))
        now = time.time_ns()
        with console.status(f"Writing {records:,} decisions"):
            for i in range(records):
                value = (f'{{"txn_id":{i},"user_id":{i % 1000},"sent_ns":{now},"decision":"APPROVE",'
                         f'"reason":null,"spend_cents":100,"count":1,"engine":"bench"}}').encode()
                while True:
                    try:
                        producer.produce(wl.kafka.decisions_topic, value, str(i % 1000).encode())
                        break
                    except BufferError:
                        producer.poll(0.1)
            producer.flush(60)
        out = CACHE / "driver-bench-logs" / "collector-bench.npy"
        proc = ctx.Process(target=collector.run,
                           args=(collector.CollectorPlan(kafka.client, f"{kafka.names}-collector", wl.kafka.decisions_topic, out), stats, stop))
        t0 = time.monotonic()
        proc.start()
        while True:
            msg = stats.get(timeout=120)
            if isinstance(msg, Ready):
                t0 = time.monotonic()
            elif isinstance(msg, CollectorTick) and msg.unique >= records:
                elapsed = time.monotonic() - t0
                break
        stop.set()
        proc.join(timeout=60)
    finally:
        if proc is not None and proc.is_alive():
            proc.kill()
        kafka.stop()
    rate = records / elapsed
    console.print(f"collector read {records:,} decisions in {elapsed:.1f} s: {rate:,.0f} decisions/s "
                  f"(1-s tick resolution)")
    return rate
