"""The registry of engines, by the name a workload file uses."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from harness.engines.base import Engine
from harness.engines.kafka import KafkaOptions, KafkaTransactionsEngine

OPTIONS: dict[str, type[BaseModel]] = {
    "kafka": KafkaOptions,
    "passthrough": KafkaOptions,
}


def validate_engine_options(name: str, options: dict[str, Any] | None) -> str | None:
    """None if fine, else a sentence naming the field, the value and what is allowed."""
    if name not in OPTIONS:
        return f"unknown engine; allowed engines: {', '.join(OPTIONS)}"
    try:
        OPTIONS[name].model_validate(options or {})
    except ValidationError as err:
        parts = []
        for e in err.errors():
            field = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                parts.append(f"{field}: unknown option; allowed: {', '.join(OPTIONS[name].model_fields)}")
            else:
                parts.append(f"{field}: {e['msg']} (got {e.get('input')!r})")
        return "; ".join(parts)
    return None


def create(name: str, options: dict[str, Any] | None) -> Engine:
    opts = OPTIONS[name].model_validate(options or {})
    if name in ("kafka", "passthrough"):
        return KafkaTransactionsEngine(name, opts, applies_rules=name == "kafka")
    raise KeyError(name)
