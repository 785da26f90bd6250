"""Names that end up in paths, topics, consumer groups and container names: checked once
when a workload is read, turned into a safe spelling in one place."""
from __future__ import annotations

import re

# Patterns are matched whole (fullmatch): `$` alone would let a trailing newline through.
# A workload's `name`: one path component of the run folder (`<timestamp>-<name>[-sweep]`),
# far below the 255 bytes a file name may have.
WORKLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# An engine row: the engine, optionally a colon and a label of the user's choice
# (`flink:at-least-once`). Used as it is for the row's log folder, so never a path.
ENGINE_LABEL = re.compile(r"[a-z][a-z0-9]*(:[A-Za-z0-9][A-Za-z0-9_-]{0,39})?")
# A Kafka topic the workload names. Kafka allows [A-Za-z0-9._-], up to 249 characters; a
# letter or digit first keeps clear of `.`, `..` and the internal `__` topics, and 100
# leaves room for the names derived from it (`-state-changelog`; Spark's `-<row>-batches`,
# up to 55 more).
TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def workload_name_problem(name: str) -> str | None:
    """None if `name` is a valid workload name, else what is allowed."""
    if WORKLOAD_NAME.fullmatch(name):
        return None
    return ("1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit "
            "(it names the run folder)")


def label_problem(label: str) -> str | None:
    """None if `label` is a valid engine row label, else what is allowed."""
    if ENGINE_LABEL.fullmatch(label):
        return None
    return ("not a valid engine label: an engine name, optionally ':' and up to 40 letters, digits, '_' or '-' "
            "(e.g. flink:at-least-once)")


def topic_problem(topic: str) -> str | None:
    """None if `topic` is a valid topic name for a workload, else what is allowed."""
    if TOPIC.fullmatch(topic):
        return None
    return "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit (a Kafka topic name)"


def same_topic(a: str, b: str) -> bool:
    """Whether Kafka takes `a` and `b` for one topic: it refuses a topic whose name differs
    from an existing one only by '.' against '_' (both become '_' in its metric names)."""
    return a.replace(".", "_") == b.replace(".", "_")


def safe_name(label: str) -> str:
    """`label` as a Kafka topic or group, a container name or a network alias may spell it:
    lower case, anything but letters, digits and '-' turned into '-'."""
    return re.sub(r"[^a-z0-9-]+", "-", label.lower()).strip("-")
