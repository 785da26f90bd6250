"""The registry of engines, by the name a workload file uses."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from harness.engines.base import Engine
from harness.engines.flink import FlinkEngine, FlinkOptions
from harness.engines.kafka import KafkaOptions, KafkaTransactionsEngine
from harness.engines.spark import SparkEngine, SparkOptions
from harness.workload import CLUSTER_FAULTS, Fault

OPTIONS: dict[str, type[BaseModel]] = {
    "kafka": KafkaOptions,
    "passthrough": KafkaOptions,
    "flink": FlinkOptions,
    "spark": SparkOptions,
}


FAULTS: dict[str, frozenset[str]] = {
    "kafka": KafkaTransactionsEngine.fault_actions,
    "passthrough": KafkaTransactionsEngine.fault_actions,
    "flink": FlinkEngine.fault_actions,
    "spark": SparkEngine.fault_actions,
}


def kind(name: str) -> str:
    """`flink:at-least-once` is a second `flink` row with its own options: the engine is
    what stands before the colon, the whole name labels the row."""
    return name.split(":", 1)[0]


def validate_engine_options(name: str, options: dict[str, Any] | None) -> str | None:
    """None if fine, else a sentence naming the field, the value and what is allowed."""
    if kind(name) not in OPTIONS:
        return f"unknown engine; allowed engines: {', '.join(OPTIONS)} (optionally with a :label)"
    try:
        OPTIONS[kind(name)].model_validate(options or {})
    except ValidationError as err:
        parts = []
        for e in err.errors():
            field = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                parts.append(f"{field}: unknown option; allowed: {', '.join(OPTIONS[kind(name)].model_fields)}")
            else:
                parts.append(f"{field}: {e['msg']} (got {e.get('input')!r})")
        return "; ".join(parts)
    return None


def unsupported_faults(name: str, faults: list[Fault]) -> str | None:
    """None if engine `name` can take every fault, else a sentence saying what it can take."""
    missing = sorted({f.kind for f in faults} - FAULTS[kind(name)] - CLUSTER_FAULTS)
    if not missing:
        return None
    return (f"cannot take the fault(s) {', '.join(missing)} (action:target); "
            f"it takes {', '.join(sorted(FAULTS[kind(name)]))}")


def create(name: str, options: dict[str, Any] | None) -> Engine:
    base = kind(name)
    opts = OPTIONS[base].model_validate(options or {})
    if base in ("kafka", "passthrough"):
        assert isinstance(opts, KafkaOptions)
        return KafkaTransactionsEngine(name, opts, applies_rules=base == "kafka")
    if base == "flink":
        assert isinstance(opts, FlinkOptions)
        return FlinkEngine(name, opts)
    if base == "spark":
        assert isinstance(opts, SparkOptions)
        return SparkEngine(name, opts)
    raise KeyError(name)
