"""The fraud rules (SPEC 2) as a PyFlink DataStream job: Kafka -> keyed state -> Kafka.

Submitted to a running session cluster with `flink run -py job.py -j <kafka connector> '<json config>'`
(see harness/engines/flink.py). Exactly-once comes from Flink's checkpoints: the source
offsets and the keyed state are snapshotted together, and the Kafka sink's transactions
commit when a checkpoint completes, so a read_committed consumer sees output once per
checkpoint interval. The at-least-once variant writes without transactions.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from pyflink.common import Configuration, Duration, Types, WatermarkStrategy
from pyflink.common.serialization import SimpleStringSchema
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import CheckpointingMode, KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment
from pyflink.datastream.connectors import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
)
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor
from rules import Rules, UserState  # pipelines/rules.py, shipped with -pyfs (see harness/engines/flink.py)

# (txn_id, user_id, amount_cents, event_time_ms, sent_ns)
TXN = Types.TUPLE([Types.LONG(), Types.LONG(), Types.LONG(), Types.LONG(), Types.LONG()])


def parse(value: str) -> tuple[int, int, int, int, int]:
    r = json.loads(value)  # unknown fields (schema v2) are ignored
    return r["txn_id"], r["user_id"], r["amount_cents"], r["event_time_ms"], r["sent_ns"]


class EventTime(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[3])


class Decide(KeyedProcessFunction):
    """Per user: the retained (event_time_ms, amount) events and max_et, in arrival order."""

    def __init__(self, rules: dict[str, int], engine: str) -> None:
        self.rules = Rules(rules)
        self.engine = engine

    def open(self, ctx: RuntimeContext) -> None:
        self.events = ctx.get_list_state(ListStateDescriptor("events", Types.TUPLE([Types.LONG(), Types.LONG()])))
        self.max_et = ctx.get_state(ValueStateDescriptor("max_et", Types.LONG()))

    def _out(self, r: tuple, decision: str, reason: str | None, spend: int, count: int) -> str:
        return json.dumps({"txn_id": r[0], "user_id": r[1], "sent_ns": r[4], "decision": decision, "reason": reason,
                           "spend_cents": spend, "count": count, "engine": self.engine}, separators=(",", ":"))

    def process_element(self, r: tuple, ctx: KeyedProcessFunction.Context) -> Iterator[str]:
        st = UserState(self.max_et.value(), [[et, a] for et, a in (self.events.get() or [])])
        decision, reason, spend, count = self.rules.apply(st, r[3], r[2])
        if decision != "LATE":
            self.max_et.update(st.max_et)
            self.events.update([(et, a) for et, a in st.events])
            # Eviction by event-time timer: when the watermark passes the point where this
            # event can no longer count for anything this user sends.
            ctx.timer_service().register_event_time_timer(r[3] + self.rules.w + self.rules.lateness)
        yield self._out(r, decision, reason, spend, count)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[str]:
        # The user's own max_et decides, not the watermark: a user with no recent events
        # may still send an accepted event older than the watermark.
        m = self.max_et.value()
        if m is None:
            return
        kept = [(et, a) for et, a in (self.events.get() or []) if et > m - self.rules.lateness - self.rules.w]
        if kept:
            self.events.update(kept)
        else:
            self.events.clear()
        yield from ()


def main(cfg: dict[str, Any]) -> None:
    conf = Configuration()
    conf.set_string("python.execution-mode", cfg["execution_mode"])
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(cfg["parallelism"])
    env.enable_checkpointing(cfg["checkpoint_interval_ms"], CheckpointingMode.EXACTLY_ONCE)
    exactly_once = cfg["delivery"] == "exactly_once"

    source = (KafkaSource.builder()
              .set_bootstrap_servers(cfg["bootstrap"])
              .set_topics(cfg["input_topic"])
              .set_group_id(cfg["group_id"])
              .set_starting_offsets(KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.EARLIEST))
              .set_value_only_deserializer(SimpleStringSchema())
              .set_property("isolation.level", "read_committed")
              .build())
    sink = (KafkaSink.builder()
            .set_bootstrap_servers(cfg["bootstrap"])
            .set_record_serializer(KafkaRecordSerializationSchema.builder()
                                   .set_topic(cfg["output_topic"])
                                   .set_value_serialization_schema(SimpleStringSchema())
                                   .build())
            .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE if exactly_once
                                    else DeliveryGuarantee.AT_LEAST_ONCE)
            .set_transactional_id_prefix(cfg["transactional_id_prefix"])
            # Below the broker's transaction.max.timeout.ms (15 min), above any recovery here.
            .set_property("transaction.timeout.ms", str(cfg["transaction_timeout_ms"]))
            .set_property("linger.ms", "0")
            .build())
    watermarks = (WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(cfg["rules"]["allowed_lateness_s"] * 1000))
                  .with_timestamp_assigner(EventTime()))
    (env.from_source(source, WatermarkStrategy.no_watermarks(), "transactions").uid("source")
        .map(parse, output_type=TXN).uid("parse").name("parse")
        .assign_timestamps_and_watermarks(watermarks).uid("watermarks")
        .key_by(lambda r: r[1], key_type=Types.LONG())
        .process(Decide(cfg["rules"], cfg["engine"]), output_type=Types.STRING()).uid("decide").name("decide")
        .sink_to(sink).uid("sink").name("decisions"))
    env.execute(cfg["job_name"])


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
