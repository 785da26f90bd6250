"""`showdown sweep`: each engine's sustainable throughput on this machine.

Each rate of the workload's `sweep.rates` is one ordinary run (same workload, that rate,
no faults, `sweep.duration_s`), in ascending order; an engine stops at its first rate that
is not sustainable (see workload.Sweep). Every step's run folder stays next to sweep.json,
so each verdict can be checked against its figures.

With `--vary ROW.OPTION=V1,V2,...` the sweep runs that one row once per value of one of its
options (a line each), so that what the option costs shows at every rate: e.g. the
checkpoint interval that sets Flink's exactly-once latency."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.table import Table

from harness.backends.base import Backend
from harness.judge import metrics
from harness.load.history import OLDER_RECEIVED, RECEIVED
from harness.results import layout
from harness.results.read import read_npy
from harness.results.schema import EngineResult
from harness.results.store import RunDir
from harness.run import runner
from harness.support.console import console
from harness.support.errors import WorkloadError
from harness.support.names import safe_name
from harness.workload.engine_options import KINDS, kind
from harness.workload.schema import Workload


@dataclass(frozen=True)
class Step:
    engine: str
    rate: float
    run: str  # the step's run folder
    sustainable: bool
    why_not: str  # empty when sustainable
    p50_ms: float | None
    p99_ms: float | None
    growth_ms: float | None
    cpu_s_per_million: float | None
    # Other processes used over 5 % of the machine during the step: its verdict is not
    # evidence (docs/spec.md, section 4), and a failed one is run once more.
    disturbed: bool = False
    # With --vary: the option set on the row, and its value in this line.
    option: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Line:
    """One line of a sweep: a workload row, with `option` set to `value` when it is varied."""

    row: str
    option: str | None = None
    value: Any = None

    @property
    def label(self) -> str:
        return self.row if self.option is None else f"{self.row} {self.option}={self.value}"


VARY_FORM = "ROW.OPTION=V1,V2,... (e.g. flink.checkpoint_interval_ms=100,500,1000)"


def vary(wl: Workload, spec: str) -> list[Line]:
    """The lines of `--vary ROW.OPTION=V1,V2,...`, each value checked as the row's option."""
    key, eq, values = spec.partition("=")
    row, dot, option = key.rpartition(".")
    if not (eq and dot and row and option and values.strip(",")):
        raise WorkloadError(f"--vary {spec}: expected {VARY_FORM}")
    if row not in wl.engines:
        raise WorkloadError(f"--vary {spec}: {row} is not one of the workload's engines ({', '.join(wl.engines)})")
    model = KINDS[kind(row)].options
    if option not in model.model_fields:
        raise WorkloadError(f"--vary {spec}: {row} has no option {option}; its options: "
                            f"{', '.join(model.model_fields)}")
    lines: list[Line] = []
    for text in (v.strip() for v in values.split(",") if v.strip()):
        value = yaml.safe_load(text)  # as the workload file would read it: 100 a number, true a bool
        try:
            model.model_validate({**(wl.engines[row] or {}), option: value})
        except ValidationError as e:
            raise WorkloadError(f"--vary {row}.{option}={text}: {e.errors()[0]['msg']}") from None
        if any(line.value == value for line in lines):
            raise WorkloadError(f"--vary {spec}: {text} is given twice")
        lines.append(Line(row, option, value))
    return lines


def judge(e: EngineResult, wl: Workload, run_dir: Path) -> tuple[list[str], float | None]:
    """The reasons a step's engine result is not sustainable (none: it is), and the
    latency growth over the step."""
    s = wl.sweep
    if not e.ok or e.load_start_ns is None:
        return [f"the run {e.status}: {e.error}"], None
    m = e.measured()
    reasons = []
    if not m.throughput.driver_kept_schedule:
        reasons.append("the driver fell off its schedule")
    if m.correctness.missing:
        reasons.append(f"{m.correctness.missing} decisions never arrived")
    p99 = m.latency_ms.p99
    if p99 is None or p99 > s.p99_limit_ms:
        reasons.append(f"p99 {p99} ms over the limit of {s.p99_limit_ms:g} ms")
    first = metrics.first_copies(read_npy(layout.received(run_dir, e.engine), RECEIVED, OLDER_RECEIVED))
    start = e.load_start_ns + int(s.warmup_s * 1e9)
    growth = metrics.latency_growth_ms(first, start, e.load_start_ns + int(s.duration_s * 1e9))
    if growth > s.max_growth_ms:
        reasons.append(f"latency grew by {growth:,.0f} ms over the step (limit {s.max_growth_ms:g})")
    return reasons, growth


def step_changes(wl: Workload, rate: float, line: Line | None = None) -> dict[str, Any]:
    """What a step changes in the workload: its rate and length, no faults, no phases, and
    the varied option of the line's row."""
    s = wl.sweep
    changes: dict[str, Any] = {"name": f"{wl.name}-{rate:g}", "rate": rate, "duration_s": s.duration_s,
                               "warmup_s": s.warmup_s, "faults": [], "phases": []}
    if line is not None and line.option is not None:
        changes["engines"] = {**wl.engines, line.row: {**(wl.engines[line.row] or {}), line.option: line.value}}
        changes["name"] += f"-{safe_name(f'{line.option}-{line.value}')}"  # each value's run folders apart
    return changes


def run(wl: Workload, workload_path: str, text: str, results_base: Path, lines: list[Line],
        backend: Backend, finish_step: Callable[[RunDir], None] = lambda _: None) -> Path:
    """Each of `lines` (`Line(row)`, or the lines of `vary`) in turn, up the rates;
    `finish_step` runs on each step's folder once it is written (the CLI draws its report)."""
    out = layout.new_folder(results_base, f"{wl.name}-sweep")
    steps: list[Step] = []
    for line in lines:
        for rate in wl.sweep.rates:
            changes = step_changes(wl, rate, line)
            step_wl = wl.model_copy(update=changes)  # each value was checked by `vary`
            step_text = yaml.safe_dump({**yaml.safe_load(text), **changes}, sort_keys=False)
            for attempt in ("", " again: the last try was disturbed"):
                console.rule(f"[bold]sweep {line.label} at {rate:g} ev/s{attempt}")
                run_dir = runner.run(step_wl, workload_path, step_text, out, backend, [line.row])
                finish_step(run_dir)
                step = _step(run_dir, wl, line, rate)
                steps.append(step)
                (out / layout.SWEEP).write_text(json.dumps(_result(wl, backend.name, steps, lines), indent=2))
                if step.sustainable or not step.disturbed:
                    break
            reasons = step.why_not
            if reasons:
                console.print(f"[yellow]{line.label} does not sustain {rate:g} ev/s:[/] {reasons}")
                break
    console.print(table(_result(wl, backend.name, steps, lines)))
    return out


def _step(run_dir: RunDir, wl: Workload, line: Line, rate: float) -> Step:
    e = run_dir.summary.engines[0]
    reasons, growth = judge(e, wl, run_dir.path)
    m = e.measured() if e.ok else None
    cpu = m.cpu_seconds.engine_load if m else None
    return Step(
        engine=line.label, rate=rate, run=run_dir.path.name, sustainable=not reasons, why_not="; ".join(reasons),
        p50_ms=m.latency_ms.p50 if m else None, p99_ms=m.latency_ms.p99 if m else None, growth_ms=growth,
        cpu_s_per_million=round(cpu / m.throughput.sent * 1e6, 1) if m and cpu and m.throughput.sent else None,
        disturbed=e.disturbed, option=line.option, value=line.value)


def _result(wl: Workload, backend: str, steps: list[Step], lines: list[Line]) -> dict[str, Any]:
    best: dict[str, Step | None] = {}
    for st in steps:
        best.setdefault(st.engine, None)
        if st.sustainable:
            best[st.engine] = st
    varied_lines = [line for line in lines if line.option is not None]
    varied = {"vary": {"row": varied_lines[0].row, "option": varied_lines[0].option,
                       "values": [line.value for line in varied_lines]}} if varied_lines else {}
    return {"workload": wl.name, "backend": backend, "criteria": wl.sweep.model_dump(), **varied,
            "sustainable": {e: (asdict(s) if s else None) for e, s in best.items()},
            "steps": [asdict(s) for s in steps]}


def _ms(step: dict[str, Any] | None, key: str) -> str:
    return f"{step[key]:,.0f}" if step and step.get(key) is not None else "—"


def table(result: dict[str, Any]) -> Table:
    t = Table(title=f"Sustainable throughput — {result['workload']} ({result['backend']})", title_justify="left")
    # Varied: every line's figures at the same (first) rate, the knob's cost at one load.
    first_rate = result["criteria"]["rates"][0] if result.get("vary") else None
    at_first = [f"p50 ms at {first_rate:,g}", f"p99 ms at {first_rate:,g}"] if first_rate is not None else []
    for col in ("engine", "sustainable ev/s", "p50 ms", "p99 ms", *at_first, "CPU s / M events",
                "first rate not sustained"):
        t.add_column(col, justify="left" if col in ("engine", "first rate not sustained") else "right")
    for engine, best in result["sustainable"].items():
        failed = last_failed(result, engine)
        # With no rate failed, the ceiling lies above the last rate tried: a floor, not a figure.
        rate = f"{'' if failed else '≥ '}{best['rate']:,.0f}" if best else "[red]none[/] (the first rate failed)"
        disturbed = [s for s in (best, failed) if s and s.get("disturbed")]
        first = next((s for s in result["steps"] if s["engine"] == engine and s["rate"] == first_rate), None)
        t.add_row(engine + (" [red](disturbed)[/]" if disturbed else ""), rate, _ms(best, "p50_ms"),
                  _ms(best, "p99_ms"), *([_ms(first, "p50_ms"), _ms(first, "p99_ms")] if at_first else []),
                  f"{best['cpu_s_per_million']:,.0f}" if best and best["cpu_s_per_million"] else "—",
                  f"{failed['rate']:,.0f}: {failed['why_not']}" if failed else "none: add higher rates")
    t.caption = ("sustainable: the driver kept its schedule, nothing missing, p99 under the limit, no upward "
                 "latency trend (Karimov et al., ICDE 2018); CPU of the engine's processes during load and drain; "
                 "disturbed: other processes used over 5 % of the machine in that step, so it is not evidence")
    return t


def last_failed(result: dict[str, Any], engine: str) -> dict[str, Any] | None:
    """The step that ended the engine's sweep (a disturbed failure's retry, if it had one)."""
    return next((s for s in reversed(result["steps"]) if s["engine"] == engine and not s["sustainable"]), None)
