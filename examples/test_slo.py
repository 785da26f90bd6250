"""A team's own checks with Stream Showdown's pytest fixtures: real clusters for a test to
use, and a whole benchmark run whose figures the test asserts, e.g. as a CI gate on a
service-level objective. With the project installed (`pip install -e .`, as `make setup`
does), pytest finds the fixtures by itself:

    .venv/bin/pytest examples/test_slo.py --showdown-backend local   # or containers, auto

Each cluster lives for the module and is torn down at its end, pass or fail.
"""
from __future__ import annotations

import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer

from harness.backends.base import KafkaCluster
from harness.engines.clusters import FlinkCluster, SparkCluster
from harness.fixtures import ShowdownRun

SMOKE = Path(__file__).resolve().parents[1] / "workloads" / "smoke.yaml"
# Our objective for the Kafka processors at the smoke load.
P99_LIMIT_MS = 1_000


def test_a_record_goes_through_kafka(kafka_cluster: KafkaCluster) -> None:
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    kafka_cluster.create_topics(1, [topic])
    producer = Producer({"bootstrap.servers": kafka_cluster.bootstrap})
    producer.produce(topic, b"order-1")
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": kafka_cluster.bootstrap, "group.id": "example",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        msg = None
        for _ in range(30):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.value() == b"order-1"
    finally:
        consumer.close()


def test_flink_has_its_taskmanager(flink_cluster: FlinkCluster) -> None:
    assert flink_cluster.get("/overview")["taskmanagers"] >= 1


def test_spark_has_an_alive_worker(spark_cluster: SparkCluster) -> None:
    assert [w["state"] for w in spark_cluster.state()["workers"]] == ["ALIVE"]


def test_the_kafka_processors_meet_our_slo(showdown_run: ShowdownRun) -> None:
    result = showdown_run(SMOKE, engines=["kafka"], duration_s=10, faults=[])
    kafka = result["kafka"]
    assert kafka.correctness is not None and kafka.correctness.exactly_once, kafka.correctness
    assert kafka.latency_ms is not None and kafka.latency_ms.p99 is not None
    assert kafka.latency_ms.p99 < P99_LIMIT_MS
