"""The history a run records: one row per decision (and window result) received, as the
collector writes it and the judge reads it (docs/spec.md, section 4)."""
from __future__ import annotations

import numpy as np

DECISION_CODES = {"APPROVE": 0, "BLOCK": 1, "LATE": 2}
REASON_CODES = {None: 0, "spend": 1, "velocity": 2}
UNKNOWN = -1

_DECISION = [
    ("txn_id", "i8"), ("user_id", "i8"), ("sent_ns", "i8"), ("recv_ns", "i8"),
    ("decision", "i1"), ("reason", "i1"), ("spend_cents", "i8"), ("count", "i8"),
]
# Where the record was read in its topic: an auditor can fetch it again, and tell a record
# the engine wrote twice (two positions) from one record read twice (one position).
_POSITION = [("partition", "i4"), ("offset", "i8")]
RECEIVED = np.dtype(_DECISION + _POSITION)
# received.npy of runs before the positions were recorded: read as RECEIVED, positions UNKNOWN.
OLDER_RECEIVED = (np.dtype(_DECISION),)
# One received record of the windows output (docs/design/event-time-windows.md).
WINDOW_RECEIVED = np.dtype([
    ("user_id", "i8"), ("end_ms", "i8"), ("spend_cents", "i8"), ("count", "i8"), ("recv_ns", "i8"), *_POSITION,
])
