"""What a workload may say about each engine: its options (`engines.<name>` in a workload
file) and the faults it can take. Data only: the engines (harness/engines/) read their
options from here, and validation checks a file against it before anything starts."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.workload.schema import CLUSTER_FAULTS, Fault, Strict, instances


class KafkaOptions(Strict):
    parallelism: int = Field(2, ge=1, le=64)
    # How long a transaction stays open collecting batches: Kafka Streams' commit.interval.ms
    # under exactly-once (default 100 ms). 0 commits after every poll: lowest latency,
    # but one transaction per few records costs the broker a core on 2 cores.
    commit_interval_ms: int = Field(100, ge=0, le=60_000)
    max_batch: int = Field(500, ge=1, le=100_000)
    fetch_wait_max_ms: int = Field(10, ge=0, le=5_000)
    transaction_timeout_ms: int = Field(10_000, ge=1_000, le=900_000)
    session_timeout_ms: int = Field(10_000, ge=6_000, le=300_000)
    # Containers backend: each processor container's CPU and memory limits.
    cpus: float = Field(1.0, gt=0, le=64)
    memory_mb: int = Field(512, ge=128, le=65_536)


class FlinkOptions(Strict):
    parallelism: int = Field(2, ge=1, le=64)
    taskmanagers: int = Field(1, ge=1, le=8)
    slots: int = Field(2, ge=1, le=64)
    # thread: Python runs inside the TaskManager (pemja), ~3x the keyed throughput of
    # process mode here. Keyed state is not portable between the two modes.
    execution_mode: Literal["thread", "process"] = "thread"
    delivery: Literal["exactly_once", "at_least_once"] = "exactly_once"
    checkpoint_interval_ms: int = Field(1_000, ge=100, le=600_000)
    jobmanager_memory: str = Field("1g", pattern=r"^\d+[mg]$")
    taskmanager_memory: str = Field("2g", pattern=r"^\d+[mg]$")
    heartbeat_timeout_ms: int = Field(10_000, ge=2_000, le=300_000)
    transaction_timeout_ms: int = Field(120_000, ge=10_000, le=900_000)
    # CPU limit of each JobManager, TaskManager and CLI container (containers backend).
    container_cpus: float = Field(2.0, gt=0, le=64)


class SparkOptions(Strict):
    # kafka: Spark's own Kafka sink (at-least-once). transactional: foreachBatch with one
    # Kafka transaction per micro-batch, skipping batches already committed.
    sink: Literal["kafka", "transactional"] = "kafka"
    # 0: start the next micro-batch as soon as the previous one ends.
    trigger_interval_ms: int = Field(0, ge=0, le=600_000)
    # Partitions of the per-user state (fixed for the life of a checkpoint).
    shuffle_partitions: int = Field(2, ge=1, le=200)
    state_store: Literal["rocksdb", "hdfs"] = "rocksdb"
    # Spark Workers, each running one executor of worker_cores cores.
    workers: int = Field(1, ge=1, le=8)
    worker_cores: int = Field(2, ge=1, le=64)
    worker_memory: str = Field("2g", pattern=r"^\d+[mg]$")
    executor_memory: str = Field("1g", pattern=r"^\d+[mg]$")
    driver_memory: str = Field("1g", pattern=r"^\d+[mg]$")
    daemon_memory: str = Field("512m", pattern=r"^\d+[mg]$")
    transaction_timeout_ms: int = Field(60_000, ge=10_000, le=900_000)
    # CPU limit of each Master, Worker and driver container (containers backend).
    container_cpus: float = Field(2.0, gt=0, le=64)


class EngineKind(BaseModel):
    """One engine as a workload file names it: its options and the faults it can take."""

    model_config = ConfigDict(frozen=True)

    options: type[BaseModel]
    # `action:target` of every fault this engine can take besides the cluster faults.
    faults: frozenset[str]
    # False for an engine that copies records without the fraud rules (the checker then
    # judges only missing and duplicate decisions).
    applies_rules: bool = True
    # The option that says how many workers (the `instance`s of a worker or executor fault)
    # the engine runs, and what it calls one; None: always one.
    workers: str | None
    worker: str


KINDS: dict[str, EngineKind] = {
    "kafka": EngineKind(options=KafkaOptions, faults=frozenset({"kill:worker"}), workers="parallelism",
                        worker="processor"),
    "passthrough": EngineKind(options=KafkaOptions, faults=frozenset({"kill:worker"}), applies_rules=False,
                              workers="parallelism", worker="processor"),
    "flink": EngineKind(options=FlinkOptions, faults=frozenset({"kill:worker", "cancel-resubmit:job"}),
                        workers="taskmanagers", worker="TaskManager"),
    # Each Worker of the Spark cluster runs one executor (engines/clusters.py).
    "spark": EngineKind(options=SparkOptions, faults=frozenset({"kill:worker", "kill:executor", "kill:driver"}),
                        workers="workers", worker="Worker"),
}


def kind(name: str) -> str:
    """`flink:at-least-once` is a second `flink` row with its own options: the engine is
    what stands before the colon, the whole name labels the row."""
    return name.split(":", 1)[0]


def validate_engine_options(name: str, options: dict[str, Any] | None) -> str | None:
    """None if fine, else a sentence naming the field, the value and what is allowed."""
    if kind(name) not in KINDS:
        return f"unknown engine; allowed engines: {', '.join(KINDS)} (optionally with a :label)"
    model = KINDS[kind(name)].options
    try:
        model.model_validate(options or {})
    except ValidationError as err:
        parts = []
        for e in err.errors():
            field = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                parts.append(f"{field}: unknown option; allowed: {', '.join(model.model_fields)}")
            else:
                parts.append(f"{field}: {e['msg']} (got {e.get('input')!r})")
        return "; ".join(parts)
    return None


def instance_problem(name: str, options: dict[str, Any] | None, fault: Fault) -> str | None:
    """None if the worker or executor `fault` hits has `fault.instance` in engine row `name`
    (with valid `options`), else a sentence saying how many it runs."""
    if fault.target not in ("worker", "executor"):
        return None
    k = KINDS[kind(name)]
    count = getattr(k.options.model_validate(options or {}), k.workers) if k.workers else 1
    if fault.instance < count:
        return None
    runs = f"{count} {k.worker}{'s' * (count > 1)} ({k.workers}: {count})" if k.workers else f"one {k.worker}"
    return f"engines.{name} runs {runs}, so {fault.kind} takes {instances(count)} (got {fault.instance})"


def unsupported_faults(name: str, faults: list[Fault]) -> str | None:
    """None if engine `name` can take every fault, else a sentence saying what it can take."""
    takes = KINDS[kind(name)].faults
    missing = sorted({f.kind for f in faults} - takes - CLUSTER_FAULTS)
    if not missing:
        return None
    return (f"cannot take the fault(s) {', '.join(missing)} (action:target); "
            f"it takes {', '.join(sorted(takes))}")
