"""One instance of the Kafka-transactions pipeline: consume, decide, produce, in one transaction.

Exactly-once the way Kafka Streams gets it: each batch's decisions, the changed per-user
state (to a compacted changelog topic, partition = input partition) and the consumed
offsets commit in one Kafka transaction. On partition assignment the state of those
partitions is rebuilt from the changelog. A crash at any point leaves either the whole
batch or none of it visible to read_committed consumers.

The event-time windows output (when configured; docs/design/event-time-windows.md) keeps
its own watermark per input partition, as Kafka Streams' stream time: the largest event
time read, less the allowed lateness. Each user's open windows and each partition's
largest event time are changelogged beside the rules' state (keys `w:<user>` and `w`), and
a window fires, in the transaction of the record that moved the watermark past its end.

Run as: python processor.py '<json config>' (see harness/engines/kafka.py).
Deliberately independent of the harness package: this is the job code under test.
"""
from __future__ import annotations

import faulthandler
import json
import os
import re
import signal
import sys
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from rules import Rules, UserState  # pipelines/rules.py, on PYTHONPATH (see harness/engines/kafka.py)

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def client_settings(cfg: dict[str, Any]) -> dict[str, str]:
    """bootstrap.servers and the cluster's own settings (TLS, SASL). A ${VAR} in them is
    expanded here, from this process's environment: the secret never is an argument."""
    def expanded(key: str, value: str) -> str:
        missing = [v for v in VARIABLE.findall(value) if v not in os.environ]
        if missing:
            raise SystemExit(f"client setting {key}: ${{{missing[0]}}} is not set in this processor's environment")
        return VARIABLE.sub(lambda m: os.environ[m.group(1)], value)

    return {"bootstrap.servers": cfg["bootstrap"],
            **{k: expanded(k, v) for k, v in (cfg.get("client") or {}).items()}}


class Processor:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.engine = cfg["engine"]
        self.rules = Rules(cfg["rules"]) if cfg["mode"] == "fraud" else None
        self.input = cfg["input_topic"]
        self.output = cfg["output_topic"]
        self.changelog = cfg["changelog_topic"]
        client = client_settings(cfg)
        instance = cfg["instance"]
        self.producer = Producer({
            **client,
            # Stable per instance: a restarted instance fences its predecessor's transactions.
            "transactional.id": f"{cfg['transactional_id_prefix']}-{instance}",
            "transaction.timeout.ms": cfg["transaction_timeout_ms"],
            # Nothing is visible before the commit, which flushes: batching up to the commit
            # interval costs no latency and spares the brokers a request per record (Kafka
            # Streams' producer default is 100 ms too). docs/probes/replicated-produce.md
            "linger.ms": cfg["commit_interval_ms"],
            "message.max.bytes": cfg["changelog_max_bytes"],
            # The coordinator answers CONCURRENT_TRANSACTIONS while the previous commit's
            # markers are still being written; at the default 100 ms backoff every
            # send_offsets_to_transaction then waits ~100 ms (confluent-kafka-python#967).
            "retry.backoff.ms": 5,
            "partitioner": "murmur2_random",
        })
        self.producer.init_transactions(60)
        self.consumer = Consumer({
            **client,
            "group.id": cfg["group_id"],
            # Static membership: a restarted instance takes back its partitions without a rebalance.
            "group.instance.id": f"{cfg['group_id']}-{instance}",
            "session.timeout.ms": cfg["session_timeout_ms"],
            "partition.assignment.strategy": "range",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": cfg["fetch_wait_max_ms"],
        })
        self.state: dict[int, dict[int, UserState]] = {}
        # What the open transaction has changed: written out when it commits.
        self.dirty: dict[tuple[int, int], UserState] = {}
        self.offsets: dict[int, int] = {}
        self.windows: dict[str, Any] | None = cfg["windows"] if self.rules is not None else None
        # Per partition: its largest event time read, and its open windows (end -> user -> [spend, count]).
        self.event_time_high: dict[int, int] = {}
        self.open: dict[int, dict[int, dict[int, list[int]]]] = {}
        self.dirty_windows: set[tuple[int, int]] = set()  # (partition, user) whose open windows changed
        self.dirty_high: set[int] = set()
        self.txn_deadline: float | None = None  # when the open transaction commits; None: none open
        self.watchdog_armed = 0.0
        self.running = True

    def log(self, msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} [{self.engine}-{self.cfg['instance']}] {msg}", flush=True)

    def on_assign(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        # Restoring a large state may take longer than the watchdog allows a stuck call.
        faulthandler.cancel_dump_traceback_later()
        self.watchdog_armed = 0.0
        t0 = time.monotonic()
        if self.rules is not None:
            self.restore([p.partition for p in parts])
        users = sum(len(self.state.get(p.partition, {})) for p in parts)
        self.log(f"assigned {[p.partition for p in parts]}, restored {users} users "
                 f"in {time.monotonic() - t0:.2f} s")

    def on_revoke(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        # The open transaction holds records of these partitions: commit it while this
        # member still owns them, as Kafka Streams does on revocation.
        if self.txn_deadline is not None:
            self.commit()
        for p in parts:
            self.state.pop(p.partition, None)
            self.open.pop(p.partition, None)
            self.event_time_high.pop(p.partition, None)
        self.log(f"revoked {[p.partition for p in parts]}")

    def restore(self, partitions: list[int]) -> None:
        """Rebuild the state of `partitions` from the changelog's committed records.

        Reads until the position reaches the high watermark (not just the last stable
        offset): a transaction whose commit markers are still being written must be seen.
        """
        if not partitions:
            return
        common = {**client_settings(self.cfg), "group.id": f"{self.cfg['group_id']}-restore",
                  "enable.auto.commit": False}
        reader = Consumer({**common, "isolation.level": "read_committed"})
        watcher = Consumer({**common, "isolation.level": "read_uncommitted"})
        restored: dict[int, dict[int, UserState]] = {p: {} for p in partitions}
        windows: dict[int, dict[int, dict[str, list[int]]]] = {p: {} for p in partitions}
        reader.assign([TopicPartition(self.changelog, p, -2) for p in partitions])  # -2: beginning
        pending = set(partitions)
        deadline = time.monotonic() + 120
        while pending:
            for msg in reader.consume(10_000, 0.2):
                if msg.error() is not None:
                    continue
                p, key, value = msg.partition(), msg.key().decode(), msg.value()
                if key == "w":
                    self.event_time_high[p] = int(value)
                elif key.startswith("w:"):
                    if value is None:  # its last open window fired
                        windows[p].pop(int(key[2:]), None)
                    else:
                        windows[p][int(key[2:])] = json.loads(value)
                elif value is not None:
                    restored[p][int(key)] = UserState.decode(value)
            for p in list(pending):
                tp = TopicPartition(self.changelog, p)
                _, high = watcher.get_watermark_offsets(tp, timeout=10, cached=False)
                pos = reader.position([tp])[0].offset
                if high == 0 or pos >= high:
                    pending.discard(p)
            if time.monotonic() > deadline:
                raise RuntimeError(f"changelog partitions {sorted(pending)} not restored within 120 s")
        reader.close()
        watcher.close()
        self.state.update(restored)
        for p, users in windows.items():
            buckets = self.open[p] = {}
            for user, ends in users.items():
                for end, acc in ends.items():
                    buckets.setdefault(int(end), {})[user] = acc

    def process(self, batch: list[Message]) -> None:
        """Decide each record and produce its decision into the open transaction; the
        changed state and the offsets follow when the transaction commits."""
        produce = self.producer.produce
        for msg in batch:
            if msg.error() is not None:
                self.log(f"consumer error: {msg.error()}")
                continue
            p = msg.partition()
            self.offsets[p] = msg.offset() + 1
            r = json.loads(msg.value())
            user = r["user_id"]
            if self.rules is None:
                decision, reason, spend, count = "APPROVE", None, 0, 0
            else:
                users = self.state.setdefault(p, {})
                st = users.get(user)
                if st is None:
                    st = users[user] = UserState()
                decision, reason, spend, count = self.rules.apply(st, r["event_time_ms"], r["amount_cents"])
                if decision != "LATE":
                    self.dirty[(p, user)] = st
                if self.windows is not None:
                    self.add_to_windows(p, user, r["event_time_ms"], r["amount_cents"])
            out = {"txn_id": r["txn_id"], "user_id": user, "sent_ns": r["sent_ns"], "decision": decision,
                   "reason": reason, "spend_cents": spend, "count": count, "engine": self.engine}
            produce(self.output, json.dumps(out, separators=(",", ":")).encode(), msg.key())

    def add_to_windows(self, p: int, user: int, t: int, amount: int) -> None:
        """Adds the event to each of its windows not yet fired, then fires what the
        partition's watermark has passed."""
        w = self.windows
        assert w is not None
        size, slide, lateness = w["size_ms"], w["slide_ms"], w["lateness_ms"]
        high = self.event_time_high.get(p)
        fired_until = None if high is None else high - lateness  # windows ending at or before have fired
        buckets = self.open.setdefault(p, {})
        first_end = (t // slide + 1) * slide  # the earliest window [end - size, end) that holds t
        for end in range(first_end, first_end + size, slide):
            if fired_until is not None and end <= fired_until:
                continue  # an event beyond the lateness: dropped from the windows that fired, as Flink does
            acc = buckets.setdefault(end, {}).setdefault(user, [0, 0])
            acc[0] += amount
            acc[1] += 1
        self.dirty_windows.add((p, user))
        if high is None or t > high:
            self.event_time_high[p] = t
            self.dirty_high.add(p)
            self.fire(p, t - lateness)

    def fire(self, p: int, watermark: int) -> None:
        buckets = self.open[p]
        for end in sorted(e for e in buckets if e <= watermark):
            start = end - self.windows["size_ms"]
            for user, (spend, count) in buckets.pop(end).items():
                out = {"user_id": user, "window_start_ms": start, "window_end_ms": end, "spend_cents": spend,
                       "count": count, "engine": self.engine}
                self.producer.produce(self.windows["topic"], json.dumps(out, separators=(",", ":")).encode(),
                                      str(user).encode())
                self.dirty_windows.add((p, user))

    def commit(self) -> None:
        produce = self.producer.produce
        for (p, user), st in self.dirty.items():
            produce(self.changelog, st.encode(), str(user).encode(), partition=p)
        for p, user in self.dirty_windows:
            ends = {end: b[user] for end, b in self.open.get(p, {}).items() if user in b}
            produce(self.changelog, json.dumps(ends, separators=(",", ":")).encode() if ends else None,
                    f"w:{user}".encode(), partition=p)
        for p in self.dirty_high:
            produce(self.changelog, str(self.event_time_high[p]).encode(), b"w", partition=p)
        if self.offsets:
            self.producer.send_offsets_to_transaction(
                [TopicPartition(self.input, p, o) for p, o in self.offsets.items()],
                self.consumer.consumer_group_metadata(), self.cfg["transaction_timeout_ms"] / 1000)
        # Retrying past the transaction's timeout is pointless (the coordinator aborts it) and
        # once left a processor retrying silently for ever after a broker came back: give up,
        # exit, and let the harness restart this processor from the last committed transaction.
        give_up = time.monotonic() + self.cfg["transaction_timeout_ms"] / 1000
        while True:
            try:
                self.producer.commit_transaction(max(1.0, give_up - time.monotonic()))
                break
            except KafkaException as e:
                if not e.args[0].retriable() or time.monotonic() > give_up:
                    raise
                self.log(f"commit failed, retrying: {e}")
        self.dirty.clear()
        self.dirty_windows.clear()
        self.dirty_high.clear()
        self.offsets.clear()
        self.txn_deadline = None

    def run(self) -> None:
        self.consumer.subscribe([self.input], on_assign=self.on_assign, on_revoke=self.on_revoke)
        max_batch = self.cfg["max_batch"]
        interval = self.cfg["commit_interval_ms"] / 1000
        self.log("started")
        while self.running:
            # A call into the client that never returns must not stall the run for good:
            # send_offsets_to_transaction blocks past its timeout while the group coordinator
            # is down (librdkafka#5456, #5511), seen here when a broker is killed. Past the
            # watchdog, dump every thread's stack to the log, for the record, and exit; the
            # harness restarts the processor from its last committed transaction.
            if time.monotonic() - self.watchdog_armed > 1:
                faulthandler.dump_traceback_later(self.cfg["watchdog_s"], exit=True)
                self.watchdog_armed = time.monotonic()
            deadline = self.txn_deadline
            wait = 0.1 if deadline is None else max(0.0, deadline - time.monotonic())
            first = self.consumer.poll(wait)
            if first is not None:
                if self.txn_deadline is None:
                    self.producer.begin_transaction()
                    self.txn_deadline = time.monotonic() + interval
                # poll returns as soon as one record is there; take what else is already fetched.
                self.process([first, *self.consumer.consume(max_batch - 1, 0)])
            if self.txn_deadline is not None and time.monotonic() >= self.txn_deadline:
                self.commit()
        if self.txn_deadline is not None:
            self.commit()
        faulthandler.cancel_dump_traceback_later()
        self.consumer.close()
        self.log("stopped")


def main() -> int:
    proc = Processor(json.loads(sys.argv[1]))

    def stop(signum: int, frame: Any) -> None:
        proc.running = False

    signal.signal(signal.SIGTERM, stop)
    try:
        proc.run()
    except KafkaException as e:
        # Any transactional failure (fenced, aborted, timed out): die, and let the supervisor
        # restart us from the last committed transaction, as Kafka Streams' threads do.
        proc.log(f"fatal: {e}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
