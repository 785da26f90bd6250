"""Workload files: YAML in, a validated `Workload` out, or an error that names the field."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness.support.errors import WorkloadError
from harness.support.names import label_problem, safe_name
from harness.workload.engine_options import unsupported_faults, validate_engine_options
from harness.workload.schema import Workload


def _allowed_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names allowed at `loc`, to name them beside an unknown field."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        current = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid workload"]
    for e in err.errors():
        loc = tuple(e["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(_allowed_fields(Workload, loc))
            lines.append(f"  {field}: unknown field; allowed fields here: {allowed}")
        elif e["type"] == "missing":
            lines.append(f"  {field}: required field is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            shown = "" if loc == () or isinstance(value, dict) else f" (got {value!r})"
            lines.append(f"  {field}: {msg}{shown}")
    return "\n".join(lines)


def parse(data: Any, source: str = "workload") -> Workload:
    if not isinstance(data, dict):
        raise WorkloadError(f"{source}: a workload file must be a YAML mapping of fields, got {type(data).__name__}")
    try:
        wl = Workload.model_validate(data)
    except ValidationError as err:
        raise WorkloadError(_describe(err, source)) from None
    spelled: dict[str, str] = {}
    for name, options in wl.engines.items():
        problem = label_problem(name) or validate_engine_options(name, options) or unsupported_faults(name, wl.faults)
        other = spelled.setdefault(safe_name(name), name)
        if not problem and other != name:
            problem = f"too alike to {other} (both become {safe_name(name)!r} in topic and container names)"
        if problem:
            raise WorkloadError(f"{source}: invalid workload\n  engines.{name}: {problem}")
    return wl


def load(path: Path | str) -> tuple[Workload, str]:
    """The validated workload and the file's text (kept in every result for provenance)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise WorkloadError(f"cannot read workload file {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise WorkloadError(f"{path}: not valid YAML: {e}") from None
    return parse(data, str(path)), text
