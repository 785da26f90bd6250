"""The audit archive (--keep-records): per engine, every input record with where it landed,
every decision and window result received, every fault as injected, in Parquet, so that
another program can recompute every figure of the row from them and summary.json, without
the harness. results/README.md documents the columns; keep the two in step."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.judge.judge import FaultEvent
from harness.load.generator import Txn, v2_from_txn
from harness.load.history import DECISION_CODES, REASON_CODES, UNKNOWN
from harness.results import layout
from harness.workload.schema import Workload

# The history's codes as the names the decisions topic carries.
_DECISION_NAMES: dict[int, str | None] = {code: name for name, code in DECISION_CODES.items()} | {UNKNOWN: "unknown"}
_REASON_NAMES: dict[int, str | None] = {code: name for name, code in REASON_CODES.items()} | {UNKNOWN: "unknown"}
_FAULTS = pa.schema([
    ("fault_at_s", pa.float64()), ("fault_action", pa.string()), ("fault_target", pa.string()),
    ("fault_instance", pa.int64()), ("fault_restart_after_s", pa.float64()),
    ("injected_ns", pa.int64()), ("recovered_ns", pa.int64()), ("target", pa.string()), ("error", pa.string()),
])


def write(run: Path, engine: str, *, wl: Workload, records: list[Txn], load_start_ns: int, drain_end_ns: int,
          landed: tuple[np.ndarray, np.ndarray], received: np.ndarray, windows: np.ndarray | None,
          faults: list[FaultEvent]) -> None:
    """`landed`: each txn_id's partition and offset in the transactions topic; `received`,
    `windows`: the collector's history (load/history.py); `windows` None when the row owes
    no window results."""
    layout.records(run, engine).mkdir(parents=True, exist_ok=True)
    # The drain's end bounds the last fault's recovery window and the per-second series;
    # summary.json does not hold it.
    meta = {"engine": engine, "load_start_ns": str(load_start_ns), "drain_end_ns": str(drain_end_ns)}
    tables = [(_inputs(wl, records, load_start_ns, landed), layout.inputs_parquet(run, engine)),
              (_decisions(received), layout.decisions_parquet(run, engine)),
              (_faults(faults), layout.faults_parquet(run, engine))]
    if windows is not None:
        tables.append((_windows(windows), layout.windows_parquet(run, engine)))
    for table, path in tables:
        pq.write_table(table.replace_schema_metadata(meta), path)


def _inputs(wl: Workload, records: list[Txn], load_start_ns: int, landed: tuple[np.ndarray, np.ndarray]
            ) -> pa.Table:
    fields = np.array(records, dtype=np.int64).reshape(len(records), len(Txn._fields))
    cols = {name: fields[:, i] for i, name in enumerate(Txn._fields)}
    v2_from = v2_from_txn(wl, records)
    partition, offset = landed
    return pa.table({
        **cols,
        "sent_ns": load_start_ns + cols["offset_ns"],
        "v": np.where(cols["txn_id"] >= (len(records) if v2_from is None else v2_from), 2, 1).astype(np.int8),
        "partition": partition,
        "offset": offset,
    })


def _names(codes: np.ndarray, names: dict[int, str | None]) -> pa.Array:
    keys = np.array(sorted(names))
    values = np.array([names[k] for k in keys], dtype=object)
    return pa.array(values[np.searchsorted(keys, codes)], pa.string())


def _decisions(received: np.ndarray) -> pa.Table:
    return pa.table({
        "txn_id": received["txn_id"], "user_id": received["user_id"], "sent_ns": received["sent_ns"],
        "recv_ns": received["recv_ns"],
        "decision": _names(received["decision"], _DECISION_NAMES),
        "reason": _names(received["reason"], _REASON_NAMES),
        "spend_cents": received["spend_cents"], "count": received["count"],
        "partition": received["partition"], "offset": received["offset"],
    })


def _windows(windows: np.ndarray) -> pa.Table:
    return pa.table({
        "user_id": windows["user_id"], "window_end_ms": windows["end_ms"], "spend_cents": windows["spend_cents"],
        "count": windows["count"], "recv_ns": windows["recv_ns"], "partition": windows["partition"],
        "offset": windows["offset"],
    })


def _faults(faults: list[FaultEvent]) -> pa.Table:
    return pa.Table.from_pylist([{
        "fault_at_s": e.fault.at_s, "fault_action": e.fault.action, "fault_target": e.fault.target,
        "fault_instance": e.fault.instance, "fault_restart_after_s": e.fault.restart_after_s,
        "injected_ns": e.injected_ns, "recovered_ns": e.recovered_ns, "target": e.target, "error": e.error,
    } for e in faults], schema=_FAULTS)
