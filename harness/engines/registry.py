"""The registry of engines, by the name a workload file uses: each kind's options and
faults (harness/workload/engine_options.py) and the class that deploys it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from harness.backends import images
from harness.engines.base import Engine
from harness.engines.flink import FlinkEngine
from harness.engines.kafka import KafkaTransactionsEngine
from harness.engines.spark import SparkEngine
from harness.engines.spark import image as spark_image
from harness.workload.engine_options import KINDS, FlinkOptions, KafkaOptions, SparkOptions, kind


def _kafka(name: str, options: BaseModel) -> Engine:
    assert isinstance(options, KafkaOptions)
    return KafkaTransactionsEngine(name, options, applies_rules=KINDS[kind(name)].applies_rules)


def _flink(name: str, options: BaseModel) -> Engine:
    assert isinstance(options, FlinkOptions)
    return FlinkEngine(name, options)


def _spark(name: str, options: BaseModel) -> Engine:
    assert isinstance(options, SparkOptions)
    return SparkEngine(name, options)


@dataclass(frozen=True)
class Entry:
    factory: Callable[[str, BaseModel], Engine]
    # The containers backend's image for the engine's processes, built on first use.
    image: Callable[[], str]


REGISTRY: dict[str, Entry] = {
    "kafka": Entry(_kafka, images.python_image),
    "passthrough": Entry(_kafka, images.python_image),
    "flink": Entry(_flink, images.flink_image),
    "spark": Entry(_spark, spark_image),
}


def create(name: str, options: dict[str, Any] | None) -> Engine:
    """The engine of row `name` (`kind[:label]`), its options validated."""
    k = kind(name)
    return REGISTRY[k].factory(name, KINDS[k].options.model_validate(options or {}))


def image(name: str) -> str:
    """The image row `name`'s processes run in on the containers backend."""
    return REGISTRY[kind(name)].image()
