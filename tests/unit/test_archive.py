"""The audit archive (--keep-records): what the Parquet files hold, read back as another
program would, and where each input landed, from made-up topics."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from confluent_kafka import TopicPartition

from harness.judge.judge import FaultEvent
from harness.load import positions
from harness.load.generator import Txn
from harness.load.history import (
    DECISION_CODES,
    OLDER_RECEIVED,
    REASON_CODES,
    RECEIVED,
    UNKNOWN,
    WINDOW_RECEIVED,
)
from harness.results import layout
from harness.results.read import read_npy
from harness.run import archive
from harness.support.errors import ClusterError
from harness.workload.schema import Fault
from tests.conftest import make

T0 = 1_800_000_000_000_000_000
S = 1_000_000_000
RECORDS = [Txn(0, 7, 1200, 3, 1_767_225_600_000, 0), Txn(1, 8, 90_000, 4, 1_767_225_601_000, S // 2),
           Txn(2, 7, 500, 3, 1_767_225_599_000, S)]
LANDED = (np.array([1, 0, 1], np.int32), np.array([0, 0, 1], np.int64))


def decisions(*rows: tuple[int, str | None, str | None, int, int, int]) -> np.ndarray:
    """(txn_id, decision, reason, recv s after T0, partition, offset) as the collector saves them."""
    codes = DECISION_CODES | {None: UNKNOWN}
    reasons = REASON_CODES | {"?": UNKNOWN}
    return np.array([(t, RECORDS[t].user_id, T0 + RECORDS[t].offset_ns, T0 + recv_s * S, codes[d], reasons[r],
                      100 * t, t, p, o) for t, d, r, recv_s, p, o in rows], dtype=RECEIVED)


def write(tmp_path: Path, received: np.ndarray, windows: np.ndarray | None = None,
          faults: list[FaultEvent] | None = None, **workload: Any) -> Path:
    archive.write(tmp_path, "kafka", wl=make(**workload), records=RECORDS, load_start_ns=T0,
                  drain_end_ns=T0 + 9 * S, landed=LANDED, received=received, windows=windows, faults=faults or [])
    return tmp_path


def test_the_inputs_carry_every_field_their_intended_send_time_and_where_they_landed(tmp_path: Path) -> None:
    run = write(tmp_path, decisions())
    inputs = pq.read_table(layout.inputs_parquet(run, "kafka")).to_pydict()
    assert list(inputs) == [*Txn._fields, "sent_ns", "v", "partition", "offset"]
    assert [Txn(*row[:6]) for row in zip(*inputs.values())] == RECORDS
    assert inputs["sent_ns"] == [T0, T0 + S // 2, T0 + S]
    assert (inputs["v"], inputs["partition"], inputs["offset"]) == ([1, 1, 1], [1, 0, 1], [0, 0, 1])


def test_the_schema_version_of_each_input_is_the_one_it_was_sent_in(tmp_path: Path) -> None:
    run = write(tmp_path, decisions(), schema_v2_from_s=0.5)
    assert pq.read_table(layout.inputs_parquet(run, "kafka")).column("v").to_pylist() == [1, 2, 2]


def test_every_decision_copy_is_kept_with_its_names_receive_time_and_position(tmp_path: Path) -> None:
    received = decisions((0, "APPROVE", None, 2, 1, 0), (1, "BLOCK", "spend", 3, 0, 0),
                         (0, "APPROVE", None, 5, 1, 2), (2, None, "?", 6, 1, 1))
    got = pq.read_table(layout.decisions_parquet(write(tmp_path, received), "kafka")).to_pydict()
    assert list(got) == ["txn_id", "user_id", "sent_ns", "recv_ns", "decision", "reason", "spend_cents", "count",
                         "partition", "offset"]
    assert got["txn_id"] == [0, 1, 0, 2], "in the order received, duplicates included"
    assert got["decision"] == ["APPROVE", "BLOCK", "APPROVE", "unknown"]
    assert got["reason"] == [None, "spend", None, "unknown"]
    assert got["recv_ns"] == [T0 + 2 * S, T0 + 3 * S, T0 + 5 * S, T0 + 6 * S]
    assert (got["partition"], got["offset"]) == ([1, 0, 1, 1], [0, 0, 2, 1])
    assert (got["sent_ns"], got["spend_cents"], got["count"]) == \
        ([T0, T0 + S // 2, T0, T0 + S], [0, 100, 0, 200], [0, 1, 0, 2])


def test_each_file_names_its_engine_the_load_start_and_the_drain_end(tmp_path: Path) -> None:
    run = write(tmp_path, decisions(), windows=np.empty(0, WINDOW_RECEIVED))
    for path in (layout.inputs_parquet(run, "kafka"), layout.decisions_parquet(run, "kafka"),
                 layout.windows_parquet(run, "kafka"), layout.faults_parquet(run, "kafka")):
        meta = pq.read_schema(path).metadata
        assert (meta[b"engine"], int(meta[b"load_start_ns"]), int(meta[b"drain_end_ns"])) == (b"kafka", T0, T0 + 9 * S)


def test_window_results_are_written_only_when_the_row_owes_some(tmp_path: Path) -> None:
    assert not layout.windows_parquet(write(tmp_path / "a", decisions()), "kafka").exists()
    rows = np.array([(7, 1_767_229_200_000, 1700, 2, T0 + 4 * S, 0, 5), (7, 1_767_229_200_000, 1700, 2, T0 + 8 * S,
                                                                         0, 6)], dtype=WINDOW_RECEIVED)
    got = pq.read_table(layout.windows_parquet(write(tmp_path / "b", decisions(), rows), "kafka")).to_pydict()
    assert got == {"user_id": [7, 7], "window_end_ms": [1_767_229_200_000] * 2, "spend_cents": [1700, 1700],
                   "count": [2, 2], "recv_ns": [T0 + 4 * S, T0 + 8 * S], "partition": [0, 0], "offset": [5, 6]}


def test_faults_are_kept_as_injected_with_what_they_hit_and_any_error(tmp_path: Path) -> None:
    hit = FaultEvent(Fault(at_s=4, target="worker", instance=1, restart_after_s=2), injected_ns=T0 + 4 * S,
                     target="kafka-processor-1 (pid 42)", recovered_ns=T0 + 6 * S)
    failed = FaultEvent(Fault(at_s=7, target="broker"), injected_ns=T0 + 7 * S, error="ClusterError: gone")
    got = pq.read_table(layout.faults_parquet(write(tmp_path, decisions(), faults=[hit, failed]), "kafka"))
    assert got.to_pylist() == [
        {"fault_at_s": 4.0, "fault_action": "kill", "fault_target": "worker", "fault_instance": 1,
         "fault_restart_after_s": 2.0, "injected_ns": T0 + 4 * S, "recovered_ns": T0 + 6 * S,
         "target": "kafka-processor-1 (pid 42)", "error": None},
        {"fault_at_s": 7.0, "fault_action": "kill", "fault_target": "broker", "fault_instance": 0,
         "fault_restart_after_s": 5.0, "injected_ns": T0 + 7 * S, "recovered_ns": None, "target": "",
         "error": "ClusterError: gone"}]


def test_a_run_without_faults_still_has_its_faults_file_with_every_column(tmp_path: Path) -> None:
    got = pq.read_table(layout.faults_parquet(write(tmp_path, decisions()), "kafka"))
    assert got.num_rows == 0 and "injected_ns" in got.column_names and "fault_target" in got.column_names


def test_an_older_runs_history_without_positions_still_reads(tmp_path: Path) -> None:
    old = np.zeros(3, dtype=OLDER_RECEIVED[0])
    old["txn_id"], old["recv_ns"] = [4, 5, 6], [T0, T0 + 1, T0 + 2]
    np.save(tmp_path / "received.npy", old)
    got = read_npy(tmp_path / "received.npy", RECEIVED, OLDER_RECEIVED)
    assert got.dtype == RECEIVED and got["txn_id"].tolist() == [4, 5, 6]
    assert got["recv_ns"].tolist() == old["recv_ns"].tolist()
    assert got["partition"].tolist() == got["offset"].tolist() == [UNKNOWN] * 3


def value(txn_id: int) -> bytes:
    return json.dumps({"txn_id": txn_id, "user_id": 7, "amount_cents": 100, "v": 1, "sent_ns": T0}).encode()


def test_each_input_maps_to_the_partition_and_offset_it_landed_at() -> None:
    partition, offset = positions.landed([(2, 0, value(1)), (0, 0, value(0)), (2, 1, value(3))], 5, "transactions")
    assert partition.tolist() == [0, 2, UNKNOWN, 2, UNKNOWN], "2 and 4 never landed"
    assert offset.tolist() == [0, 0, UNKNOWN, 1, UNKNOWN]


def test_a_second_copy_of_an_input_does_not_move_the_first() -> None:
    partition, offset = positions.landed([(1, 4, value(0)), (1, 9, value(0))], 1, "transactions")
    assert (partition.tolist(), offset.tolist()) == ([1], [4])


@pytest.mark.parametrize("bad", [value(5), value(-1), b"not json", None, b'{"user_id": 7}', b'{"txn_id": "0"}'],
                         ids=["beyond-the-run", "negative", "not-json", "tombstone", "no-id", "text-id"])
def test_a_record_that_is_not_one_of_the_runs_inputs_is_refused_with_where_it_is(bad: bytes | None) -> None:
    with pytest.raises(ClusterError, match="transactions partition 3 offset 17 holds no transaction of this run"):
        positions.landed([(3, 17, bad)], 5, "transactions")


@dataclass
class Msg:
    p: int
    o: int
    v: bytes | None
    err: Any = None

    def error(self) -> Any:
        return self.err

    def partition(self) -> int:
        return self.p

    def offset(self) -> int:
        return self.o

    def value(self) -> bytes | None:
        return self.v


@dataclass
class FakeConsumer:
    """A topic of `logs` (partition -> values), delivered `per_poll` at a time; a partition
    listed in `stuck` never delivers."""

    logs: dict[int, list[bytes]]
    per_poll: int = 2
    stuck: set[int] = field(default_factory=set)
    next: dict[int, int] = field(default_factory=dict)

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions=dict.fromkeys(self.logs))})

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, len(self.logs[tp.partition])

    def assign(self, tps: list[TopicPartition]) -> None:
        self.next = {tp.partition: 0 for tp in tps}

    def consume(self, n: int, timeout: float) -> list[Msg]:
        out = []
        for p, o in self.next.items():
            if p not in self.stuck:
                out += [Msg(p, i, v) for i, v in enumerate(self.logs[p][o:o + self.per_poll], o)]
                self.next[p] = min(o + self.per_poll, len(self.logs[p]))
        return out

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.next[tp.partition]) for tp in tps]


def test_the_topic_is_read_to_the_end_of_every_partition() -> None:
    consumer = FakeConsumer({0: [value(0), value(2), value(3)], 1: [], 2: [value(1), value(4)]})
    records = list(positions._whole(consumer, "transactions", stall_s=1))  # type: ignore[arg-type]
    assert positions.landed(records, 5, "transactions")[1].tolist() == [0, 0, 1, 2, 1]


def test_a_partition_that_stops_delivering_fails_the_archive_with_its_name() -> None:
    consumer = FakeConsumer({0: [value(0)], 1: [value(1)]}, stuck={1})
    with pytest.raises(ClusterError, match=r"cannot read the transactions topic back whole .* partition 1 \(of 1 "):
        list(positions._whole(consumer, "transactions", stall_s=0.2))  # type: ignore[arg-type]
