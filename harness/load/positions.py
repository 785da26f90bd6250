"""Where each input record landed in the transactions topic, for the audit archive
(--keep-records). Read back from the topic after the drain rather than taken from delivery
callbacks: the driver is the measuring instrument and stays as cheap as it is. The topic
keeps its records forever and each engine run has a fresh broker, so reading it from its
start finds every record the driver delivered in that run, once."""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from harness.load.history import UNKNOWN
from harness.support.errors import ClusterError

# Give up when no record came for this long and the topic is not read to its end yet: its
# broker is gone, or a partition has no leader.
STALL_S = 30.0
BATCH = 10_000


def landed(records: Iterable[tuple[int, int, bytes | None]], n: int, topic: str) -> tuple[np.ndarray, np.ndarray]:
    """The partition and offset of each txn_id 0..n-1 from `topic`'s records as (partition,
    offset, value); UNKNOWN for a record that never landed (its delivery failed). A second
    copy (the idempotent producer writes none) would not move the first."""
    partition = np.full(n, UNKNOWN, np.int32)
    offset = np.full(n, UNKNOWN, np.int64)
    for p, o, value in records:
        try:
            txn_id = json.loads(value or b"")["txn_id"]
        except (ValueError, KeyError, TypeError):
            txn_id = None
        if not isinstance(txn_id, int) or isinstance(txn_id, bool) or not 0 <= txn_id < n:
            raise ClusterError(f"{topic} partition {p} offset {o} holds no transaction of this run "
                               f"(txn_id 0 to {n - 1}): {(value or b'')[:80]!r}; was the topic written by "
                               f"something else than the load driver?")
        if offset[txn_id] == UNKNOWN:
            partition[txn_id], offset[txn_id] = p, o
    return partition, offset


def read(client: dict[str, str], group: str, topic: str, n: int, stall_s: float = STALL_S
         ) -> tuple[np.ndarray, np.ndarray]:
    """`landed` over the whole of `topic`, as far as each partition reached when called."""
    consumer = Consumer({**client, "group.id": group, "enable.auto.commit": False})
    try:
        return landed(_whole(consumer, topic, stall_s), n, topic)
    except KafkaException as e:
        raise ClusterError(f"cannot read the {topic} topic back for the archive: {e.args[0].str()}") from None
    finally:
        consumer.close()


def _whole(consumer: Consumer, topic: str, stall_s: float) -> Iterator[tuple[int, int, bytes | None]]:
    meta = consumer.list_topics(topic, timeout=stall_s).topics.get(topic)
    if meta is None or meta.error is not None:
        why = meta.error.str() if meta is not None and meta.error is not None else "not in the cluster's metadata"
        raise ClusterError(f"cannot read the {topic} topic back for the archive: {why}")
    ends: dict[int, int] = {}
    for p in sorted(meta.partitions):
        start, ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=stall_s)
        if start > 0:
            raise ClusterError(f"{topic} partition {p} now starts at offset {start}: the broker deleted records "
                               f"(retention), so the archive could not say where they landed")
    left = {p for p, end in ends.items() if end > 0}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(left)])
    last_progress = time.monotonic()
    last_error = ""
    while left:
        progressed = False
        for msg in consumer.consume(BATCH, 0.5):
            err = msg.error()
            if err is not None:
                # librdkafka retries on its own (a broker restarting, a leader moving); the
                # stall timeout decides when it is hopeless.
                last_error = f" (last error: {err.str()})"
                continue
            p, o = msg.partition(), msg.offset()
            if o < ends[p]:
                progressed = True
                yield p, o, msg.value()
        for tp in consumer.position([TopicPartition(topic, p) for p in left]):
            if tp.offset >= ends[tp.partition]:
                left.discard(tp.partition)
        if progressed:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > stall_s:
            where = ", ".join(f"partition {p} (of {ends[p]:,} records)" for p in sorted(left))
            raise ClusterError(f"cannot read the {topic} topic back whole for the archive: nothing came for "
                               f"{stall_s:.0f} s from {where}{last_error}")
