"""`showdown scale`: each engine's sustainable rate per node count, the capacity curve of
Theodolite (Henning and Hasselbring, 2021). For each count N of `--nodes`, every row runs
with N workers (Kafka processors, Flink TaskManagers with their slots, Spark Workers with
an executor each), and `showdown sweep` finds its ceiling there; each N's sweep folder
stays beside scale.json. The brokers stay as the workload says: what scales is the
engine under test."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from harness.backends.base import Backend
from harness.results import layout
from harness.results.store import RunDir
from harness.run import sweep
from harness.support.console import console
from harness.support.errors import WorkloadError
from harness.workload import files
from harness.workload.engine_options import KINDS, kind
from harness.workload.schema import Workload

SCALE = "scale.json"


def node_options(wl: Workload, row: str, n: int) -> dict[str, Any]:
    """Row `row`'s options with `n` workers: n processors; n TaskManagers, the job's
    parallelism filling their slots; n Spark Workers (an executor each)."""
    options = dict(wl.engines[row] or {})
    k = kind(row)
    if k in ("kafka", "passthrough"):
        if n > wl.kafka.partitions:
            raise WorkloadError(f"--nodes {n}: engines.{row} would run {n} processors on kafka.partitions "
                                f"{wl.kafka.partitions}; the extra ones would idle: raise kafka.partitions")
        return {**options, "parallelism": n}
    if k == "flink":
        slots = KINDS["flink"].options.model_validate(options).slots  # type: ignore[attr-defined]
        return {**options, "taskmanagers": n, "parallelism": n * slots}
    return {**options, "workers": n}


def cores(wl: Workload, row: str, backend: Backend) -> float | None:
    """The CPU limit of `row`'s workers at one node, where the backend enforces limits
    (containers); None where they share the machine (local) or it is not ours (a cluster)."""
    if backend.name != "containers":
        return None
    o = KINDS[kind(row)].options.model_validate(wl.engines[row] or {})
    return float(getattr(o, "cpus", None) or getattr(o, "container_cpus"))


def workload_at(wl: Workload, text: str, rows: list[str], n: int) -> tuple[Workload, str]:
    """The workload with `n` nodes for each of `rows`, validated as a file would be, and its text."""
    data = yaml.safe_load(text)
    data["engines"] = {**(data.get("engines") or {}), **{row: node_options(wl, row, n) for row in rows}}
    data["name"] = f"{wl.name}-{n}nodes"
    return files.parse(data, f"{wl.name} at {n} node(s)"), yaml.safe_dump(data, sort_keys=False)


def run(wl: Workload, workload_path: str, text: str, results_base: Path, rows: list[str], nodes: list[int],
        backend: Backend, finish_step: Callable[[RunDir], None] = lambda _: None) -> Path:
    """A sweep of `rows` at each node count; returns the folder holding scale.json."""
    at = [workload_at(wl, text, rows, n) for n in nodes]  # every count checked before the first run
    out = layout.new_folder(results_base, f"{wl.name}-scale")
    result: dict[str, Any] = {"workload": wl.name, "backend": backend.name, "nodes": nodes,
                              "criteria": wl.sweep.model_dump(), "rows": {row: {} for row in rows}, "sweeps": {}}
    for n, (wl_n, text_n) in zip(nodes, at, strict=True):
        console.rule(f"[bold]scale: {n} node{'s' * (n > 1)} per engine")
        folder = sweep.run(wl_n, workload_path, text_n, out, [sweep.Line(row) for row in rows], backend, finish_step)
        found = json.loads((folder / layout.SWEEP).read_text())
        result["sweeps"][str(n)] = folder.name
        for row in rows:
            best = found["sustainable"].get(row)
            failed = sweep.last_failed(found, row)
            per_node = cores(wl_n, row, backend)
            rate = best["rate"] if best else None
            result["rows"][row][str(n)] = {
                "rate": rate, "above_rates_tried": bool(best) and failed is None,
                "cores": per_node * n if per_node else None,
                "per_core": round(rate / (per_node * n), 1) if rate and per_node else None,
                "disturbed": bool(best and best.get("disturbed"))}
        (out / SCALE).write_text(json.dumps(result, indent=2))
    console.print(table(result))
    return out


def table(result: dict[str, Any]) -> Table:
    t = Table(title=f"Capacity per node count — {result['workload']} ({result['backend']})", title_justify="left")
    t.add_column("engine")
    for n in result["nodes"]:
        t.add_column(f"{n} node{'s' * (n > 1)}: ev/s", justify="right")
        t.add_column("per core", justify="right")
    for row, by_n in result["rows"].items():
        cells = []
        for n in result["nodes"]:
            c = by_n.get(str(n))
            if c is None:
                cells += ["—", "—"]
                continue
            rate = "[red]none[/]" if c["rate"] is None else f"{'≥ ' if c['above_rates_tried'] else ''}{c['rate']:,.0f}"
            cells += [rate + (" [red](disturbed)[/]" if c["disturbed"] else ""),
                      "—" if c["per_core"] is None else f"{c['per_core']:,.0f}"]
        t.add_row(row, *cells)
    t.caption = ("the highest sustainable rate of each node count's sweep (its folder beside scale.json); ≥: no "
                 "rate tried failed; per core: by the workers' CPU limits (containers backend only)")
    return t
