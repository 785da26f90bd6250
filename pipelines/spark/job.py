"""The fraud rules (SPEC 2) as a PySpark Structured Streaming query: Kafka -> per-user state -> Kafka.

Submitted in client mode with `spark-submit --py-files rules.py job.py '<json config>'`
(see harness/engines/spark.py). Per-user state lives in `transformWithState` (the
row-based stateful processor API) on the RocksDB state store, checkpointed with the
source offsets after every micro-batch.

Two sinks:
- `kafka`: Spark's Kafka sink. At-least-once: a micro-batch replayed after a failure
  writes its decisions again, and the checker counts them.
- `transactional`: foreachBatch on the driver with one Kafka transaction per micro-batch
  that also writes a (batch id) marker to a commit topic. A replayed batch whose marker
  is committed is skipped, so each decision becomes visible to read_committed readers once.

No global watermark for the decisions: SPEC 2's lateness is per user (against that user's
max_et, kept in state), and a rule that evicts lazily needs no event-time timers.

The windows output, when configured, is a second query on the same source in the same
driver: `window()` per user with a watermark, in append mode, with its own checkpoint and
(transactional sink) its own transactional id and commit topic
(docs/design/event-time-windows.md).
"""
from __future__ import annotations

import json
import sys
import time
from base64 import b64decode, b64encode
from collections.abc import Iterator
from typing import Any

import rules
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from pyspark import cloudpickle
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import (
    StatefulProcessor,
    StatefulProcessorHandle,
    StreamingQueryListener,
)
from rules import Rules, UserState  # pipelines/rules.py, shipped with --py-files

# The processor is unpickled by Python workers that do not all see --py-files (the
# driver-side transformWithState worker does not), so its rules travel with it by value.
cloudpickle.register_pickle_by_value(rules)

# Unknown fields (schema v2) are ignored by from_json.
EVENT = "txn_id long, user_id long, amount_cents long, event_time_ms long, sent_ns long"
DECISION = ("txn_id long, user_id long, sent_ns long, decision string, reason string, spend_cents long, "
            "count long, engine string")


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [showdown] {msg}", flush=True)


class Decide(StatefulProcessor):
    """Per user, one state value: the rules' UserState in its binary encoding (as base64
    text), so that a micro-batch costs one state read and at most one write per user it
    touches."""

    def __init__(self, rules: dict[str, int], engine: str) -> None:
        self.rules_cfg = rules
        self.engine = engine

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.rules = Rules(self.rules_cfg)
        self.state = handle.getValueState("user", "s string")

    def handleInputRows(self, key: Any, rows: Iterator[Row], timerValues: Any) -> Iterator[Row]:
        raw = self.state.get()
        st = UserState.decode(b64decode(raw[0])) if raw is not None else UserState()
        changed = False
        # A user's records sit in one partition; the log order is the offset order.
        for r in sorted(rows, key=lambda r: (r.kpart, r.koff)):
            decision, reason, spend, count = self.rules.apply(st, r.event_time_ms, r.amount_cents)
            changed = changed or decision != "LATE"
            yield Row(txn_id=r.txn_id, user_id=r.user_id, sent_ns=r.sent_ns, decision=decision, reason=reason,
                      spend_cents=spend, count=count, engine=self.engine)
        if changed:
            self.state.update((b64encode(st.encode()).decode(),))

    def close(self) -> None:
        pass


class Progress(StreamingQueryListener):
    """Every query event as one JSON line, for the harness (readiness, batch durations)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({**record, "wall": time.time()}) + "\n")

    def onQueryStarted(self, event: Any) -> None:
        self._write({"event": "started", "query": event.name, "id": str(event.id), "run_id": str(event.runId)})

    def onQueryProgress(self, event: Any) -> None:
        p = event.progress
        self._write({"event": "progress", "query": p.name, "batch": p.batchId, "rows": p.numInputRows,
                     "duration_ms": p.durationMs})

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        self._write({"event": "terminated", "exception": event.exception})


class TransactionalBatches:
    """foreachBatch: each micro-batch's decisions and its batch-id marker in one Kafka
    transaction. The transactional id is the same for every driver of this query, so a
    restarted driver fences its killed predecessor and aborts its open transaction."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.producer: Producer | None = None
        self.last_committed = -1

    def _init(self) -> Producer:
        cfg = self.cfg
        producer = Producer({"bootstrap.servers": cfg["bootstrap"], "transactional.id": cfg["transactional_id"],
                             "transaction.timeout.ms": cfg["transaction_timeout_ms"], "linger.ms": 5,
                             # A catch-up batch after a restart holds tens of thousands of rows.
                             "queue.buffering.max.messages": 1_000_000})
        producer.init_transactions(60)
        self.last_committed = self._last_marker()
        log(f"transactional producer ready; last committed batch {self.last_committed}")
        return producer

    def _last_marker(self) -> int:
        """The newest committed batch id; read after init_transactions, so no transaction of
        ours is still open and the log's end is final."""
        topic = self.cfg["commit_topic"]
        reader = Consumer({"bootstrap.servers": self.cfg["bootstrap"], "group.id": f"{topic}-reader",
                           "isolation.level": "read_committed", "enable.auto.commit": False})
        tp = TopicPartition(topic, 0)
        _, high = reader.get_watermark_offsets(tp, timeout=30, cached=False)
        last = -1
        reader.assign([TopicPartition(topic, 0, -2)])  # -2: the beginning
        deadline = time.monotonic() + 60
        while high > 0 and reader.position([tp])[0].offset < high:
            for msg in reader.consume(10_000, 0.5):
                if msg.error() is None and msg.value() is not None:
                    last = max(last, json.loads(msg.value())["batch_id"])
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not read {topic} to its end within 60 s")
        reader.close()
        return last

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        if self.producer is None:
            self.producer = self._init()
        if batch_id <= self.last_committed:
            # Already committed by a driver that died before Spark logged the batch as done.
            # It must still run: Spark checks that every stateful partition committed its
            # state store version for this batch.
            batch.write.format("noop").mode("overwrite").save()
            log(f"batch {batch_id} was committed before the restart; ran it into noop, wrote nothing")
            return
        rows = batch.collect()
        p = self.producer
        p.begin_transaction()
        for r in rows:
            while True:
                try:
                    p.produce(self.cfg["output_topic"], value=r.value, key=r.key)
                    break
                except BufferError:
                    p.poll(0.05)
        p.produce(self.cfg["commit_topic"], value=json.dumps({"batch_id": batch_id, "rows": len(rows)}))
        while True:
            try:
                p.commit_transaction(60)
                break
            except KafkaException as e:
                if not e.args[0].retriable():
                    raise
        self.last_committed = batch_id


def main(cfg: dict[str, Any]) -> None:
    spark = SparkSession.builder.appName(cfg["app_name"]).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    spark.streams.addListener(Progress(cfg["progress_file"]))
    events = (spark.readStream.format("kafka")
              .option("kafka.bootstrap.servers", cfg["bootstrap"])
              .option("subscribe", cfg["input_topic"])
              .option("startingOffsets", "earliest")
              .load()
              .select(F.from_json(F.col("value").cast("string"), EVENT).alias("r"),
                      F.col("partition").alias("kpart"), F.col("offset").alias("koff"))
              .select("r.*", "kpart", "koff"))
    decisions = events.groupBy("user_id").transformWithState(
        statefulProcessor=Decide(cfg["rules"], cfg["engine"]), outputStructType=DECISION,
        outputMode="Update", timeMode="None")
    records = decisions.select(
        F.col("user_id").cast("string").alias("key"),
        # SPEC 3 has "reason": null for APPROVE and LATE, not a missing field.
        F.to_json(F.struct(*decisions.columns), {"ignoreNullFields": "false"}).alias("value"))
    queries = [start(records, "decisions", "update", cfg)]
    w = cfg["windows"]
    if w is not None:
        ms = lambda n: f"{n} milliseconds"  # noqa: E731
        spend = (events.withColumn("et", F.timestamp_millis("event_time_ms"))
                 .withWatermark("et", ms(w["lateness_ms"]))
                 .groupBy("user_id", F.window("et", ms(w["size_ms"]), ms(w["slide_ms"])))
                 .agg(F.sum("amount_cents").alias("spend_cents"), F.count(F.lit(1)).alias("count")))
        results = spend.select(
            F.col("user_id").cast("string").alias("key"),
            F.to_json(F.struct("user_id", F.unix_millis("window.start").alias("window_start_ms"),
                               F.unix_millis("window.end").alias("window_end_ms"), "spend_cents", "count",
                               F.lit(cfg["engine"]).alias("engine"))).alias("value"))
        queries.append(start(results, "windows", "append",
                             {**cfg, "checkpoint": cfg["windows_checkpoint"], "output_topic": w["topic"],
                              "commit_topic": cfg["windows_commit_topic"],
                              "transactional_id": f"{cfg['transactional_id']}-windows"}))
    for query in queries:
        log(f"query {query.name} {query.id} started (run {query.runId})")
    # Either query failing ends the driver, and the harness restarts it from both checkpoints.
    spark.streams.awaitAnyTermination()


def start(records: DataFrame, name: str, mode: str, cfg: dict[str, Any]) -> Any:
    """Starts the query writing `records` (key, value) to cfg's output topic through cfg's sink."""
    writer = (records.writeStream.queryName(name).option("checkpointLocation", cfg["checkpoint"]).outputMode(mode)
              .trigger(processingTime=f"{cfg['trigger_interval_ms']} milliseconds"))
    if cfg["sink"] == "transactional":
        writer = writer.foreachBatch(TransactionalBatches(cfg))
    else:
        writer = (writer.format("kafka").option("kafka.bootstrap.servers", cfg["bootstrap"])
                  .option("topic", cfg["output_topic"]))
    return writer.start()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
