"""Names that end up in paths, topics, consumer groups and container names: checked once
when a workload is read, turned into a safe spelling in one place."""
from __future__ import annotations

import re

# A workload's `name`: one path component of the run folder.
WORKLOAD_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# An engine row: the engine, optionally a colon and a label of the user's choice
# (`flink:at-least-once`). Used as it is for the row's log folder, so never a path.
ENGINE_LABEL = re.compile(r"^[a-z][a-z0-9]*(:[A-Za-z0-9][A-Za-z0-9_-]{0,39})?$")


def label_problem(label: str) -> str | None:
    """None if `label` is a valid engine row label, else what is allowed."""
    if ENGINE_LABEL.match(label):
        return None
    return ("not a valid engine label: an engine name, optionally ':' and up to 40 letters, digits, '_' or '-' "
            "(e.g. flink:at-least-once)")


def safe_name(label: str) -> str:
    """`label` as a Kafka topic or group, a container name or a network alias may spell it:
    lower case, anything but letters, digits and '-' turned into '-'."""
    return re.sub(r"[^a-z0-9-]+", "-", label.lower()).strip("-")
