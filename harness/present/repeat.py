"""`showdown run --repeat N`: one workload N times in a row, and per engine and metric the
median and the spread (min–max) over the runs. One run cannot tell a difference from
run-to-run noise; the spread of a few can (harness/present/compare.py).

Also how `compare` and `recommend` read result folders: a run folder (summary.json) is a
repeat of one."""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.present.report import fmt_ms, style
from harness.results import layout
from harness.results.read import load_repeat, load_summary
from harness.results.schema import EngineResult, Summary
from harness.support.errors import ResultsError


def engine_metrics(e: EngineResult) -> dict[str, float | None]:
    """The figures of one engine's result (status ok) that are compared across runs, by a
    name that carries the unit. None: the run has no such figure (a fault that never
    recovered, `wrong` of passthrough, which applies no rules)."""
    m = e.measured()
    lat, c = m.latency_ms, m.correctness
    out: dict[str, float | None] = {
        "p50_ms": lat.p50, "p90_ms": lat.p90, "p99_ms": lat.p99, "p99.9_ms": lat.p999,
        "max_ms": lat.max, "decisions_per_s": m.throughput.decisions_per_s,
        "missing": c.missing, "duplicates": c.duplicates, "wrong": c.wrong,
    }
    w = e.windows
    if w:  # the event-time windows output (workload `windows`)
        out.update({"windows_missing": w.missing, "windows_duplicates": w.duplicates,
                    "windows_wrong": w.wrong + w.unexpected,
                    "windows_delay_p50_ms": w.emission_delay_ms.get("p50"),
                    "windows_delay_p99_ms": w.emission_delay_ms.get("p99")})
    # Faults by position: every run of a workload has the same schedule.
    for i, r in enumerate(e.recovery, 1):
        out[f"fault{i}_output_gap_s"] = r.output_gap_s
        out[f"fault{i}_recovery_time_s"] = r.recovery_time_s
    # During load and drain, as in the run's table.
    out["engine_cpu_s"] = m.cpu_seconds.engine_load
    return out


def stats(values: list[float | None]) -> dict[str, Any]:
    """Median, min and max of the values a run has; `values` keeps one entry per run."""
    nums = [v for v in values if v is not None]
    return {"median": statistics.median(nums) if nums else None, "min": min(nums, default=None),
            "max": max(nums, default=None), "values": values}


def aggregate(runs: list[tuple[str, Summary]], planned: int | None = None) -> dict[str, Any]:
    """repeat.json from (run folder name, summary) pairs in run order: per engine its status
    in each run and per metric `stats` over the runs, the values aligned with `runs`."""
    names = list(dict.fromkeys(e.engine for _, s in runs for e in s.engines))
    engines = {}
    for name in names:
        results = [next((e for e in s.engines if e.engine == name), None) for _, s in runs]
        figures = [engine_metrics(e) if e and e.ok else {} for e in results]
        keys = dict.fromkeys(k for f in figures for k in f)
        engines[name] = {"status": [e.status if e else "not run" for e in results],
                         "disturbed": [bool(e and e.disturbed) for e in results],
                         "metrics": {k: stats([f.get(k) for f in figures]) for k in keys}}
    first = runs[0][1] if runs else None
    # The first run's metadata stands for all: one command ran them on one machine.
    return {"workload_name": first.workload_name if first else None, "repeat": planned or len(runs),
            "runs": [name for name, _ in runs],
            "metadata": first.metadata.model_dump(mode="json") if first else {}, "engines": engines}


def not_a_result(path: Path, kinds: str) -> ResultsError:
    return ResultsError(f"{path}: not {kinds}")


def load(path: Path) -> dict[str, Any]:
    """A run folder or a repeat folder (or its summary.json / repeat.json) as repeat.json."""
    d = layout.result_folder(path)
    if (d / layout.REPEAT).is_file():
        return load_repeat(d / layout.REPEAT)
    if (d / layout.SUMMARY).is_file():
        return aggregate([(d.name, load_summary(d))])
    raise not_a_result(path, f"a run folder ({layout.SUMMARY}) or a repeat folder ({layout.REPEAT})")


def summaries(path: Path) -> list[tuple[Path, Summary]] | None:
    """(summary.json path, summary) of each run in a run or repeat folder; None for neither."""
    d = layout.result_folder(path)
    if (d / layout.REPEAT).is_file():
        files = [d / run / layout.SUMMARY for run in load_repeat(d / layout.REPEAT)["runs"]]
    elif (d / layout.SUMMARY).is_file():
        files = [d / layout.SUMMARY]
    else:
        return None
    return [(f, load_summary(f)) for f in files]


def label(metric: str) -> str:
    return metric.replace("_", " ")


def fmt(metric: str, v: float | None) -> str:
    if v is None:
        return "—"
    if metric.endswith("_ms"):
        return fmt_ms(v)
    if metric.endswith("_s") and not metric.endswith("_per_s"):
        # Output gaps are often tenths of a second: one decimal would hide their differences.
        return f"{v:.2f}" if abs(v) < 1 else f"{v:,.1f}"
    if metric.endswith("_per_s"):
        return f"{v:,.1f}"
    # A count; the median of an even number of runs can fall between two.
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def cell(metric: str, s: dict[str, Any] | None) -> str:
    """One run's figure, or `median (min–max)` of several, and how many runs had it if not all."""
    if s is None or s["median"] is None:
        return "—"
    values = s["values"]
    if len(values) == 1:
        return fmt(metric, s["median"])
    text = f"{fmt(metric, s['median'])} ({fmt(metric, s['min'])}–{fmt(metric, s['max'])})"
    have = sum(v is not None for v in values)
    return text if have == len(values) else f"{text} [{have} of {len(values)}]"


def table(result: dict[str, Any]) -> Table:
    engines = result["engines"]
    t = Table(title=f"Stream Showdown — {result['workload_name']}: median (min–max) over {len(result['runs'])} "
                    f"of {result['repeat']} runs", title_justify="left")
    t.add_column("metric", justify="left")
    for name in engines:
        t.add_column(Text(name), justify="right")
    t.add_row("runs ok", *(f"{e['status'].count('ok')} of {len(e['status'])}" for e in engines.values()))
    if any(any(e.get("disturbed", [])) for e in engines.values()):
        t.add_row("runs disturbed", *(style(str(sum(e.get("disturbed", []))), "red" if any(e.get("disturbed", []))
                                            else None, "rich") for e in engines.values()))
    for k in dict.fromkeys(k for e in engines.values() for k in e["metrics"]):
        t.add_row(label(k), *(escape(cell(k, e["metrics"].get(k))) for e in engines.values()))
    t.caption = escape("latency in ms after warm-up; gap and recovery in s per fault; CPU s of the engine during "
                       "load and drain; [k of N]: only k runs had the figure (e.g. a fault that never recovered); disturbed: other "
                       "processes used over 5 % of the machine, so that run's latency is not evidence")
    return t
