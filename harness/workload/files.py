"""Workload files: YAML in, a validated `Workload` out, or an error that names the field."""
from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness.support.errors import WorkloadError
from harness.support.names import label_problem, safe_name
from harness.workload import size
from harness.workload.engine_options import instance_problem, unsupported_faults, validate_engine_options
from harness.workload.schema import Workload, instances

# A workload file is a few KB: reading more is a wrong path, not a workload.
MAX_CHARS = 1_000_000
# Workload fields nest four levels deep; composing a node recurses once per level.
MAX_DEPTH = 20
# Numbers in scientific notation: PyYAML (YAML 1.1) reads 1e6 and 1.5e3 as text, where
# the user meant the number, as YAML 1.2 reads them.
SCIENTIFIC = re.compile(r"[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+\Z")


class Refused(yaml.MarkedYAMLError):
    """YAML a workload file may not hold; `problem` names the key or the line."""


def _line(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}"


class WorkloadLoader(yaml.SafeLoader):
    """Safe YAML less what a workload file has no use for and what would hide a mistake:
    anchors and aliases (a few lines of them expand to billions of nodes), a key given twice
    (YAML keeps the last without a word), merge keys, and nesting deep enough to exhaust
    the composer's recursion. Refused while composing, so nothing is ever expanded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            # A mapping's value is composed with its key as `index`.
            where = f"{index.value} ({_line(event.start_mark)})" if isinstance(index, yaml.ScalarNode) \
                else _line(event.start_mark)
            raise Refused(problem=f"{where}: YAML anchors and aliases (&name, *name) are not allowed in a "
                                  f"workload file: write the value out")
        if self.depth >= MAX_DEPTH:
            raise Refused(problem=f"{_line(event.start_mark)}: nested more than {MAX_DEPTH} levels deep: "
                                  f"not a workload")
        self.depth += 1
        node = super().compose_node(parent, index)
        self.depth -= 1
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise Refused(problem=f"{_line(key_node.start_mark)}: merge keys (<<) are not allowed in a "
                                      f"workload file")
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in lines:
                raise Refused(problem=f"{key}: given twice, on line {lines[key]} and line {line} (YAML would "
                                      f"keep only the last): remove one")
            lines[key] = line
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # Python reads no int of more than 4,300 digits
            raise Refused(problem=f"{_line(node.start_mark)}: a number of {len(node.value):,} digits: too long "
                                  f"for any field") from None


WorkloadLoader.add_implicit_resolver("tag:yaml.org,2002:float", SCIENTIFIC, list("-+0123456789"))
WorkloadLoader.add_constructor("tag:yaml.org,2002:int", WorkloadLoader.construct_yaml_int)


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


def _shown(value: Any) -> str:
    """`value` as the message quotes it: a long one cut, with its length."""
    text = repr(value)
    if len(text) <= 80:
        return text
    return f"{text[:60]}... ({len(value)} characters)" if isinstance(value, str) else f"{text[:60]}..."


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
            shown = "" if loc == () or isinstance(value, dict) else f" (got {_shown(value)})"
            lines.append(f"  {field}: {msg}{shown}")
    return "\n".join(lines)


def _engines_and_faults_problem(wl: Workload) -> str | None:
    """A line naming the field at fault in the engine rows, the faults they take and the
    worker or broker each fault hits."""
    for i, fault in enumerate(wl.faults):
        if fault.target == "broker" and fault.instance >= wl.kafka.brokers:
            return (f"faults.{i}.instance: kafka.brokers is {wl.kafka.brokers}, so kill:broker takes "
                    f"{instances(wl.kafka.brokers)} (got {fault.instance})")
    spelled: dict[str, str] = {}
    for name, options in wl.engines.items():
        problem = label_problem(name) or validate_engine_options(name, options) or unsupported_faults(name, wl.faults)
        other = spelled.setdefault(safe_name(name), name)
        if not problem and other != name:
            problem = f"too alike to {other} (both become {safe_name(name)!r} in topic and container names)"
        if problem:
            return f"engines.{name}: {problem}"
        for i, fault in enumerate(wl.faults):
            problem = instance_problem(name, options, fault)
            if problem:
                return f"faults.{i}.instance: {problem}"
    return None


def parse(data: Any, source: str = "workload") -> Workload:
    if not isinstance(data, dict):
        raise WorkloadError(f"{source}: a workload file must be a YAML mapping of fields, got {type(data).__name__}")
    try:
        wl = Workload.model_validate(data)
    except ValidationError as err:
        raise WorkloadError(_describe(err, source)) from None
    problem = _engines_and_faults_problem(wl) or size.problem(wl)
    if problem:
        raise WorkloadError(f"{source}: invalid workload\n  {problem}")
    return wl


def read_yaml(path: Path, kind: str, invalid: str) -> tuple[Any, str]:
    """A file of the user's, `kind` (a workload file, a cluster file): its YAML, read by
    WorkloadLoader, and its text; `invalid` heads a refused construct's message."""
    try:
        with path.open(encoding="utf-8") as f:
            text = f.read(MAX_CHARS + 1)
    except OSError as e:
        raise WorkloadError(f"cannot read {kind} {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise WorkloadError(f"{path}: not UTF-8 text: not a {kind}") from None
    if len(text) > MAX_CHARS:
        raise WorkloadError(f"{path}: more than {MAX_CHARS:,} characters: not a {kind} (those are a few KB)")
    try:
        return yaml.load(text, Loader=WorkloadLoader), text
    except Refused as e:
        raise WorkloadError(f"{path}: {invalid}\n  {e.problem.replace('workload file', kind)}") from None
    except yaml.YAMLError as e:
        raise WorkloadError(f"{path}: not valid YAML: {e}") from None


def load(path: Path | str) -> tuple[Workload, str]:
    """The validated workload and the file's text (kept in every result for provenance)."""
    data, text = read_yaml(Path(path), "workload file", "invalid workload")
    return parse(data, str(path)), text
