"""Reading results back: one loader per file kind, which upgrades an older summary.json
or refuses it with a message that names the file (never a traceback)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

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
    """A format-1 summary (no format_version) in the current format: what older runs did not
    record becomes what their readers assumed (CPU over the whole run, no backlog)."""
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
        e = err.errors()[0]
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        more = f" (and {err.error_count() - 1} more problem(s))" if err.error_count() > 1 else ""
        raise ResultsError(f"{source}: not a summary this version can read: {field}: {e['msg']}{more}") from None


def load_summary(path: Path) -> Summary:
    """A run's summary.json, given as the run folder or as the file itself."""
    target = path / layout.SUMMARY if path.is_dir() else path
    if path.is_dir() and not target.exists():
        raise ResultsError(f"{path}: no {layout.SUMMARY} here: not a run folder")
    return summary_from(read_json(target), str(target))


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
