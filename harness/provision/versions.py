"""Reads versions.toml, the single source of pinned versions, and reports what is installed."""
from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
import tomllib
from typing import Any

from harness.support.paths import ROOT


@functools.cache
def pinned() -> dict[str, Any]:
    with open(ROOT / "versions.toml", "rb") as f:
        return tomllib.load(f)


def runtime(engine: str) -> list[str]:
    """The pip requirements of an engine's Python runtime: its local venv and its image."""
    v = pinned()[engine]
    if engine == "flink":
        return [f"apache-flink=={v['version']}"]
    return [f"pyspark=={v['version']}", *v["python"]]


def python_package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@functools.cache
def java_version() -> str:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "not found"
    first = (out.stderr or out.stdout).splitlines()
    return first[0].strip() if first else "unknown"


def harness_versions() -> dict[str, str]:
    import confluent_kafka

    return {
        "python": platform.python_version(),
        "java": java_version(),
        "confluent-kafka": python_package("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "stream-showdown": python_package("stream-showdown"),
    }
