"""How the collector turns a record of the decisions (or windows) topic into a row of the
history (harness/load/history.py), and what it counts as malformed instead."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from harness.judge.checker import check
from harness.judge.oracle import Decision
from harness.load import collector
from harness.load.history import DECISION_CODES, REASON_CODES, RECEIVED, UNKNOWN, WINDOW_RECEIVED

RECV_NS = 1_700_000_000_123_456_789
PARTITION, OFFSET = 3, 40_961
AT = (RECV_NS, PARTITION, OFFSET)  # received then, read from that partition and offset

# A decision as the Kafka processor and the Flink job write it (the engine field is ignored).
BLOCK = {"txn_id": 41, "user_id": 7, "sent_ns": 1_700_000_000_000_000_000, "decision": "BLOCK",
         "reason": "velocity", "spend_cents": 15_000, "count": 9, "engine": "kafka"}
WINDOW = {"user_id": 7, "window_start_ms": 1_767_225_600_000, "window_end_ms": 1_767_229_200_000,
          "spend_cents": 12_345, "count": 3}


def encode(d: dict[str, Any]) -> bytes:
    return json.dumps(d, separators=(",", ":")).encode()


def history(*rows: tuple[int, ...] | None) -> np.ndarray:
    """The rows as the collector saves them at the end of a run."""
    return np.array([r for r in rows if r is not None], dtype=RECEIVED)


def test_a_decision_becomes_one_row_in_the_history_layout_stamped_with_its_receive_time_and_position() -> None:
    row = history(collector._row(encode(BLOCK), *AT))[0]
    assert (row["txn_id"], row["user_id"], row["sent_ns"], row["recv_ns"]) == \
        (41, 7, 1_700_000_000_000_000_000, RECV_NS)
    assert (row["partition"], row["offset"]) == (PARTITION, OFFSET)
    assert (row["decision"], row["reason"]) == (DECISION_CODES["BLOCK"], REASON_CODES["velocity"])
    assert (row["spend_cents"], row["count"]) == (15_000, 9)


@pytest.mark.parametrize("reason", [{"reason": None}, {}], ids=["null", "absent"])
def test_a_null_or_absent_reason_is_no_reason_not_unknown(reason: dict[str, Any]) -> None:
    d = {k: v for k, v in BLOCK.items() if k != "reason"} | {"decision": "APPROVE"} | reason
    row = history(collector._row(encode(d), *AT))[0]
    assert (row["decision"], row["reason"]) == (DECISION_CODES["APPROVE"], REASON_CODES[None])


def test_an_unknown_decision_or_reason_is_kept_as_a_row_with_the_unknown_code() -> None:
    row = history(collector._row(encode(BLOCK | {"decision": "REVIEW", "reason": "geo"}), *AT))[0]
    assert (row["txn_id"], row["decision"], row["reason"]) == (41, UNKNOWN, UNKNOWN)


def test_the_checker_counts_an_unknown_decision_as_delivered_but_wrong() -> None:
    oracle = [Decision(0, 7, "BLOCK", "velocity", 15_000, 9)]
    got = history(collector._row(encode(BLOCK | {"txn_id": 0, "decision": "REVIEW"}), *AT))
    c = check(got, oracle, apply_rules=True)
    assert (c.missing, c.wrong) == (0, 1)
    assert c.examples["wrong"] == ["0: got ?/velocity spend=15000 count=9, expected BLOCK/velocity spend=15000 count=9"]


@pytest.mark.parametrize("field", ["txn_id", "user_id", "sent_ns", "decision", "spend_cents", "count"])
def test_a_decision_missing_a_required_field_is_malformed(field: str) -> None:
    assert collector._row(encode({k: v for k, v in BLOCK.items() if k != field}), *AT) is None


@pytest.mark.parametrize("value", [
    b'{"txn_id": 41, "user_id": 7',  # cut short
    b"",
    b"\xff\xfe not utf-8",
    b"null",
    b"[41, 7]",
    b'"BLOCK"',
    None,  # a tombstone: a record without a value
], ids=["truncated", "empty", "not-utf8", "null", "array", "string", "tombstone"])
def test_bytes_that_are_not_a_json_object_are_malformed(value: bytes | None) -> None:
    assert collector._row(value, *AT) is None  # type: ignore[arg-type]
    assert collector._window_row(value, *AT) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [{"txn_id": "forty-one"}, {"count": None}, {"decision": ["BLOCK"]},
                                 {"reason": {"spend": 1}}], ids=["text-id", "null-count", "list", "dict"])
def test_a_field_of_the_wrong_type_is_malformed(bad: dict[str, Any]) -> None:
    assert collector._row(encode(BLOCK | bad), *AT) is None


def test_numeric_fields_written_as_strings_are_read_as_numbers() -> None:
    row = history(collector._row(encode(BLOCK | {"txn_id": "41", "spend_cents": "15000"}), *AT))[0]
    assert (row["txn_id"], row["spend_cents"]) == (41, 15_000)


def test_a_window_result_becomes_a_row_keyed_by_user_and_window_end() -> None:
    wrow = collector._window_row(encode(WINDOW), *AT)
    row = np.array([wrow], dtype=WINDOW_RECEIVED)[0]
    assert (row["user_id"], row["end_ms"], row["spend_cents"], row["count"], row["recv_ns"]) == \
        (7, 1_767_229_200_000, 12_345, 3, RECV_NS)
    assert (row["partition"], row["offset"]) == (PARTITION, OFFSET)


@pytest.mark.parametrize("field", ["user_id", "window_end_ms", "spend_cents", "count"])
def test_a_window_result_missing_a_field_is_malformed(field: str) -> None:
    assert collector._window_row(encode({k: v for k, v in WINDOW.items() if k != field}), *AT) is None


def test_a_decision_on_the_windows_topic_is_not_a_window_result() -> None:
    assert collector._window_row(encode(BLOCK), *AT) is None


def test_the_collector_reads_only_committed_output_from_the_start_without_committing() -> None:
    client = {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SASL_SSL"}
    a = collector.consumer_config(client, "showdown-1a2b3c4d-collector")
    assert a["isolation.level"] == "read_committed"
    assert (a["auto.offset.reset"], a["enable.auto.commit"]) == ("earliest", False)
    # The run's own group (fresh each run: no offsets left by an earlier one), on the cluster's settings.
    assert (a["group.id"], a["security.protocol"]) == ("showdown-1a2b3c4d-collector", "SASL_SSL")


@pytest.mark.parametrize("field, value", [("txn_id", 2**63), ("txn_id", -(2**63) - 1), ("txn_id", 41.7),
                                          ("user_id", "7.0"), ("count", True), ("spend_cents", None)])
def test_a_number_the_history_cannot_hold_exactly_is_malformed_not_truncated_or_fatal(field: str,
                                                                                       value: Any) -> None:
    assert collector._row(encode({**BLOCK, field: value}), *AT) is None
    window_field = {"txn_id": "window_end_ms"}.get(field, field)
    assert collector._window_row(encode({**WINDOW, window_field: value}), *AT) is None


def test_the_largest_ids_still_save() -> None:
    rows = [collector._row(encode({**BLOCK, "txn_id": 2**63 - 1}), *AT), collector._row(encode(BLOCK), *AT)]
    assert history(*rows)["txn_id"].tolist() == [2**63 - 1, 41]
