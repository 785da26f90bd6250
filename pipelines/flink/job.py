"""The fraud rules (SPEC 2) as a PyFlink DataStream job: Kafka -> keyed state -> Kafka.

Submitted to a running session cluster with `flink run -py job.py -j <kafka connector> '<json config>'`
(see harness/engines/flink.py). Exactly-once comes from Flink's checkpoints: the source
offsets and the keyed state are snapshotted together, and the Kafka sink's transactions
commit when a checkpoint completes, so a read_committed consumer sees output once per
checkpoint interval. The at-least-once variant writes without transactions.

Watermarks come from the source, per Kafka partition (split), from the record timestamp,
which the driver sets to the event time: a Python timestamp assigner cannot run there
(docs/design/event-time-windows.md). The windows output, when configured, is a second
branch: sliding event-time windows per user, to a second sink with the same guarantee.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from pyflink.common import Configuration, Duration, Time, Types, WatermarkStrategy
from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream import CheckpointingMode, KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment
from pyflink.datastream.connectors import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
)
from pyflink.datastream.functions import AggregateFunction, ProcessWindowFunction
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.datastream.window import SlidingEventTimeWindows
from rules import Rules, UserState  # pipelines/rules.py, shipped with -pyfs (see harness/engines/flink.py)

# (txn_id, user_id, amount_cents, event_time_ms, sent_ns)
TXN = Types.TUPLE([Types.LONG(), Types.LONG(), Types.LONG(), Types.LONG(), Types.LONG()])


def parse(value: str) -> tuple[int, int, int, int, int]:
    r = json.loads(value)  # unknown fields (schema v2) are ignored
    return r["txn_id"], r["user_id"], r["amount_cents"], r["event_time_ms"], r["sent_ns"]


class Spend(AggregateFunction):
    """(spend_cents, count) of a user's events in one window."""

    def create_accumulator(self) -> tuple[int, int]:
        return 0, 0

    def add(self, value: tuple, acc: tuple[int, int]) -> tuple[int, int]:
        return acc[0] + value[2], acc[1] + 1

    def get_result(self, acc: tuple[int, int]) -> tuple[int, int]:
        return acc

    def merge(self, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        return a[0] + b[0], a[1] + b[1]


class WindowResult(ProcessWindowFunction):
    def __init__(self, engine: str) -> None:
        self.engine = engine

    def process(self, key: int, context: ProcessWindowFunction.Context, elements: Iterable[tuple[int, int]]
                ) -> Iterator[str]:
        w = context.window()
        for spend, count in elements:
            yield json.dumps({"user_id": key, "window_start_ms": w.start, "window_end_ms": w.end,
                              "spend_cents": spend, "count": count, "engine": self.engine}, separators=(",", ":"))


class Decide(KeyedProcessFunction):
    """Per user: its UserState (max_et and the retained events), as one value."""

    def __init__(self, rules: dict[str, int], engine: str) -> None:
        self.rules = Rules(rules)
        self.engine = engine

    def open(self, ctx: RuntimeContext) -> None:
        # One value per user, UserState's own encoding (max_et and the retained events): a
        # record reads and writes one value. As a list of (time, amount) it read and
        # rewrote the user's whole history, element by element, through the Python
        # worker's state channel (issue 14). Pickled bytes, not PRIMITIVE_ARRAY(BYTE): thread
        # mode converts those to a tuple of ints and fails on an absent value (PyFlink 2.2).
        self.user = ctx.get_state(ValueStateDescriptor("user", Types.PICKLED_BYTE_ARRAY()))

    def _out(self, r: tuple, decision: str, reason: str | None, spend: int, count: int) -> str:
        return json.dumps({"txn_id": r[0], "user_id": r[1], "sent_ns": r[4], "decision": decision, "reason": reason,
                           "spend_cents": spend, "count": count, "engine": self.engine}, separators=(",", ":"))

    def process_element(self, r: tuple, ctx: KeyedProcessFunction.Context) -> Iterator[str]:
        raw = self.user.value()
        st = UserState.decode(raw) if raw is not None else UserState()
        decision, reason, spend, count = self.rules.apply(st, r[3], r[2])
        if decision != "LATE":
            self.user.update(st.encode())
            # No eviction timer: apply() has just evicted everything at or before the
            # horizon of this max_et, and the horizon moves only with the next accepted
            # record, which evicts again; a timer could never find anything left to drop
            # (a user who stops sending keeps what a record within lateness could still use).
        yield self._out(r, decision, reason, spend, count)


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

    def sink(topic: str, transactional_id_prefix: str) -> KafkaSink:
        return (KafkaSink.builder()
                .set_bootstrap_servers(cfg["bootstrap"])
                .set_record_serializer(KafkaRecordSerializationSchema.builder()
                                       .set_topic(topic)
                                       .set_value_serialization_schema(SimpleStringSchema())
                                       .build())
                .set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE if exactly_once
                                        else DeliveryGuarantee.AT_LEAST_ONCE)
                .set_transactional_id_prefix(transactional_id_prefix)
                # Below the broker's transaction.max.timeout.ms (15 min), above any recovery here.
                .set_property("transaction.timeout.ms", str(cfg["transaction_timeout_ms"]))
                .set_property("linger.ms", "0")
                .build())

    lateness = Duration.of_millis(cfg["rules"]["allowed_lateness_s"] * 1000)
    users = (env.from_source(source, WatermarkStrategy.for_bounded_out_of_orderness(lateness), "transactions")
             .uid("source")
             .map(parse, output_type=TXN).uid("parse").name("parse")
             .key_by(lambda r: r[1], key_type=Types.LONG()))
    (users.process(Decide(cfg["rules"], cfg["engine"]), output_type=Types.STRING()).uid("decide").name("decide")
        .sink_to(sink(cfg["output_topic"], cfg["transactional_id_prefix"])).uid("sink").name("decisions"))
    w = cfg["windows"]
    if w is not None:
        (users.window(SlidingEventTimeWindows.of(Time.milliseconds(w["size_ms"]), Time.milliseconds(w["slide_ms"])))
            .aggregate(Spend(), WindowResult(cfg["engine"]), accumulator_type=Types.TUPLE([Types.LONG(), Types.LONG()]),
                       output_type=Types.STRING()).uid("windows").name("windows")
            .sink_to(sink(w["topic"], f"{cfg['transactional_id_prefix']}-windows")).uid("windows-sink")
            .name("windows"))
    env.execute(cfg["job_name"])


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
