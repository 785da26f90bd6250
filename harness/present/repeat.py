"""`showdown run --repeat N`: one workload N times in a row, and per engine and metric the
median and the spread (min–max) over the runs. One run cannot tell a difference from
run-to-run noise; the spread of a few can (harness/present/compare.py).

Also how `compare` and `recommend` read result folders: a run folder (summary.json) is a
repeat of one."""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.present.report import fmt_ms
from harness.support.errors import ResultsError

REPEAT_FILE = "repeat.json"
SUMMARY_FILE = "summary.json"
SWEEP_FILE = "sweep.json"


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ResultsError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON ({e}); was the run interrupted while writing it?") from None


def engine_metrics(e: dict[str, Any]) -> dict[str, float | None]:
    """The figures of one engine's result (status ok) that are compared across runs, by a
    name that carries the unit. None: the run has no such figure (a fault that never
    recovered, `wrong` of passthrough, which applies no rules)."""
    lat = e["latency_ms"]
    c = e["correctness"]
    cpu = e["cpu_seconds"]
    out: dict[str, float | None] = {
        "p50_ms": lat["p50"], "p90_ms": lat["p90"], "p99_ms": lat["p99"], "p99.9_ms": lat["p999"],
        "max_ms": lat["max"], "decisions_per_s": e["throughput"]["decisions_per_s"],
        "missing": c["missing"], "duplicates": c["duplicates"], "wrong": c["wrong"],
    }
    w = e.get("windows")
    if w:  # the event-time windows output (workload `windows`)
        out.update({"windows_missing": w["missing"], "windows_duplicates": w["duplicates"],
                    "windows_wrong": w["wrong"] + w["unexpected"],
                    "windows_delay_p50_ms": w["emission_delay_ms"].get("p50"),
                    "windows_delay_p99_ms": w["emission_delay_ms"].get("p99")})
    # Faults by position: every run of a workload has the same schedule.
    for i, r in enumerate(e.get("recovery", []), 1):
        out[f"fault{i}_output_gap_s"] = r.get("output_gap_s")
        out[f"fault{i}_recovery_time_s"] = r.get("recovery_time_s")
    # During load and drain when recorded (older results: the whole run), as in the run's table.
    out["engine_cpu_s"] = cpu.get("engine_load", cpu["engine"])
    return out


def stats(values: list[float | None]) -> dict[str, Any]:
    """Median, min and max of the values a run has; `values` keeps one entry per run."""
    nums = [v for v in values if v is not None]
    return {"median": statistics.median(nums) if nums else None, "min": min(nums, default=None),
            "max": max(nums, default=None), "values": values}


def aggregate(runs: list[tuple[str, dict[str, Any]]], planned: int | None = None) -> dict[str, Any]:
    """repeat.json from (run folder name, summary) pairs in run order: per engine its status
    in each run and per metric `stats` over the runs, the values aligned with `runs`."""
    names = list(dict.fromkeys(e["engine"] for _, s in runs for e in s.get("engines", [])))
    engines = {}
    for name in names:
        results = [next((e for e in s.get("engines", []) if e["engine"] == name), None) for _, s in runs]
        figures = [engine_metrics(e) if e and e.get("status") == "ok" else {} for e in results]
        keys = dict.fromkeys(k for f in figures for k in f)
        engines[name] = {"status": [e.get("status") if e else "not run" for e in results],
                         "metrics": {k: stats([f.get(k) for f in figures]) for k in keys}}
    first = runs[0][1] if runs else {}
    # The first run's metadata stands for all: one command ran them on one machine.
    return {"workload_name": first.get("workload_name"), "repeat": planned or len(runs),
            "runs": [name for name, _ in runs], "metadata": first.get("metadata", {}), "engines": engines}


def result_folder(path: Path) -> Path:
    """The folder of a result given as its folder or as its summary.json, repeat.json or sweep.json."""
    return path.parent if path.is_file() and path.name in (REPEAT_FILE, SUMMARY_FILE, SWEEP_FILE) else path


def not_a_result(path: Path, kinds: str) -> ResultsError:
    return ResultsError(f"{path}: not {kinds}")


def load(path: Path) -> dict[str, Any]:
    """A run folder or a repeat folder (or its summary.json / repeat.json) as repeat.json."""
    d = result_folder(path)
    if (d / REPEAT_FILE).is_file():
        return read_json(d / REPEAT_FILE)
    if (d / SUMMARY_FILE).is_file():
        return aggregate([(d.name, read_json(d / SUMMARY_FILE))])
    raise not_a_result(path, f"a run folder ({SUMMARY_FILE}) or a repeat folder ({REPEAT_FILE})")


def summaries(path: Path) -> list[tuple[Path, dict[str, Any]]] | None:
    """(summary.json path, summary) of each run in a run or repeat folder; None for neither."""
    d = result_folder(path)
    if (d / REPEAT_FILE).is_file():
        files = [d / run / SUMMARY_FILE for run in read_json(d / REPEAT_FILE)["runs"]]
    elif (d / SUMMARY_FILE).is_file():
        files = [d / SUMMARY_FILE]
    else:
        return None
    return [(f, read_json(f)) for f in files]


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
    for k in dict.fromkeys(k for e in engines.values() for k in e["metrics"]):
        t.add_row(label(k), *(escape(cell(k, e["metrics"].get(k))) for e in engines.values()))
    t.caption = escape("latency in ms after warm-up; gap and recovery in s per fault; CPU s of the engine during "
                       "load and drain; [k of N]: only k runs had the figure (e.g. a fault that never recovered)")
    return t
