"""Reading results back: one loader per file kind, which upgrades an older summary.json
or refuses it with a message that names the file (never a traceback)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from harness.results import layout
from harness.results.schema import FORMAT_VERSION, Summary
from harness.support.errors import ResultsError
from harness.workload.schema import Workload


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: a folder, not a file") from None
    except OSError as e:
        raise ResultsError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not UTF-8 text: not a file Stream Showdown wrote") from None
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON ({e}); was the run interrupted while writing it?") from None


def _parsed_workload(text: Any) -> dict[str, Any] | None:
    """The recorded workload text parsed as this version reads workloads; None if it cannot."""
    try:
        data = yaml.safe_load(text) if isinstance(text, str) else None
        return Workload.model_validate(data).model_dump(mode="json") if isinstance(data, dict) else None
    except (yaml.YAMLError, ValidationError):
        return None


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """An older summary in the current format: what older runs did not record becomes what
    their readers assumed (format 1, no format_version: CPU over the whole run, no backlog)
    or unknown (before format 3: no disturbance measured, no worst p99 after recovery)."""
    meta = data.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("workload"), dict):
        meta["workload"].setdefault("parsed", _parsed_workload(meta["workload"].get("text")))
    for e in data.get("engines") or []:
        if not isinstance(e, dict) or e.get("status") != "ok":
            continue
        cpu = e.get("cpu_seconds")
        if isinstance(cpu, dict):
            cpu.setdefault("engine_load", cpu.get("engine"))
            cpu.setdefault("kafka_load", cpu.get("kafka"))
        tp = e.get("throughput")
        if isinstance(tp, dict):
            tp.setdefault("backlog_max", None)
            tp.setdefault("backlog_growth_per_s", None)
        for r in e.get("recovery") or []:
            if isinstance(r, dict):
                r.setdefault("duplicates", None)
    data["format_version"] = FORMAT_VERSION
    return data


def summary_from(data: Any, source: str) -> Summary:
    """A parsed summary.json as the current model: upgraded if older, refused if newer or malformed."""
    if not isinstance(data, dict):
        raise ResultsError(f"{source}: not a summary (a JSON object), got {type(data).__name__}")
    version = data.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ResultsError(f"{source}: format_version must be a whole number, got {version!r}")
    if version > FORMAT_VERSION:
        raise ResultsError(f"{source}: written in results format {version} by a newer Stream Showdown; this one "
                           f"reads formats 1 to {FORMAT_VERSION}: upgrade it to read this run")
    if version < FORMAT_VERSION:
        data = upgrade(data)
    try:
        return Summary.model_validate(data)
    except ValidationError as err:
        raise ResultsError(_refusal(source, "a summary", err)) from None


def _refusal(source: object, kind: str, err: ValidationError) -> str:
    """One line for a file of the wrong shape: its first problem, by key, and how many more."""
    e = err.errors()[0]
    field = ".".join(str(p) for p in e["loc"]) or "(top level)"
    # Not "or instance of <a model class>": the reader of the message has JSON, not models.
    msg = "Input should be a JSON object" if e["type"] in ("model_type", "dict_type") else e["msg"]
    more = f" (and {err.error_count() - 1} more problem(s))" if err.error_count() > 1 else ""
    return f"{source}: not {kind} this version can read: {field}: {msg}{more}"


def load_summary(path: Path) -> Summary:
    """A run's summary.json, given as the run folder or as the file itself."""
    target = path / layout.SUMMARY if path.is_dir() else path
    if path.is_dir() and not target.exists():
        raise ResultsError(_no_summary(path))
    summary = summary_from(read_json(target), str(target))
    marker = layout.killed_marker(target.parent)
    if summary.status != "complete" and marker.is_file():
        try:
            how = str(json.loads(marker.read_text())["how"])
        except (OSError, ValueError, KeyError, TypeError):
            how = f"the harness was killed during this run ({marker} says so, unreadably)"
        summary = summary.model_copy(update={"status": "killed", "error": how})
    return summary


def _no_summary(folder: Path) -> str:
    """What a folder without a summary.json is instead: another kind of result, a run that
    died before its first summary was written, or no result at all."""
    for name, kind in ((layout.REPEAT, "a repeat"), (layout.SWEEP, "a sweep")):
        if (folder / name).is_file():
            return f"{folder}: {kind} folder ({name}), not a run folder: give one of the run folders in it"
    if any((folder / name).exists() for name in layout.RUN_FILES):
        return (f"{folder}: run {folder.name} did not finish: it was interrupted or killed before it wrote its "
                f"{layout.SUMMARY}")
    return f"{folder}: no {layout.SUMMARY} here: not a run folder"


def workload_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    """The recorded workload's fields from a metadata mapping (a repeat.json's): parsed with
    every default where the run recorded it so, else as its file said; {} if neither reads."""
    workload = metadata.get("workload") if isinstance(metadata, dict) else None
    if not isinstance(workload, dict):
        return {}
    if isinstance(workload.get("parsed"), dict):
        return dict(workload["parsed"])
    try:
        fields = yaml.safe_load(workload.get("text") or "")
    except yaml.YAMLError:
        return {}
    return fields if isinstance(fields, dict) else {}


def read_npy(path: Path, dtype: np.dtype, older: tuple[np.dtype, ...] = ()) -> np.ndarray:
    """A history file (load/history.py) of `dtype` rows, refused with its name if it is cut
    short or another file. A file of an `older` layout, written before `dtype` gained
    fields, comes back as `dtype` rows with those fields -1 (the history's "unknown")."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (ValueError, EOFError):
        raise ResultsError(f"{path}: not a whole .npy file (cut short, or another kind of file); was the run killed "
                           f"while writing it?") from None
    except OSError as e:
        raise ResultsError(f"cannot read {path}: {e.strerror}") from None
    if not isinstance(data, np.ndarray) or data.ndim != 1 or (data.dtype != dtype and data.dtype not in older):
        raise ResultsError(f"{path}: not the rows a run records there: not a file Stream Showdown wrote")
    if data.dtype == dtype:
        return data
    upgraded = np.empty(len(data), dtype)
    for name in dtype.names or ():
        upgraded[name] = data[name] if name in (data.dtype.names or ()) else -1
    return upgraded


class Shape(BaseModel):
    """What a reader needs of an untyped JSON file, checked before it reads it. Strict: no
    string taken for a number, so what passes is used as read; keys it does not name pass."""

    model_config = ConfigDict(extra="allow", strict=True)


class Stats(Shape):
    """A metric over a repeat's runs (present/repeat.stats)."""

    median: float | None
    min: float | None
    max: float | None
    values: list[float | None]


class RepeatEngine(Shape):
    status: list[str]
    metrics: dict[str, Stats]
    disturbed: list[bool] = []  # per run; repeat.json before format 3 has none


class RepeatWorkload(Shape):
    text: str = ""


class RepeatMetadata(Shape):
    """What compare reads of a repeat's metadata (its first run's schema.Metadata)."""

    workload: RepeatWorkload = RepeatWorkload()
    machine: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    git: dict[str, Any] = {}


class Repeat(Shape):
    """repeat.json (present/repeat.aggregate)."""

    workload_name: str | None
    repeat: int
    runs: list[str]
    metadata: RepeatMetadata
    engines: dict[str, RepeatEngine]


class SweepStep(Shape):
    """One step of sweep.json (run/sweep.Step), as recommend reads it."""

    engine: str
    rate: float
    sustainable: bool
    why_not: str
    disturbed: bool = False  # sweep.json before format 3 has none


class Sweep(Shape):
    """sweep.json (run/sweep._result), as recommend reads it."""

    sustainable: dict[str, SweepStep | None]
    steps: list[SweepStep]


def _checked(path: Path, shape: type[Shape]) -> dict[str, Any]:
    """A JSON file as read, refused with the key at fault unless it has `shape`."""
    data = read_json(path)
    try:
        shape.model_validate(data)
    except ValidationError as err:
        raise ResultsError(_refusal(path, f"a {path.name}", err)) from None
    return data


def load_repeat(path: Path) -> dict[str, Any]:
    return _checked(path, Repeat)


def load_sweep(path: Path) -> dict[str, Any]:
    return _checked(path, Sweep)
