"""The figures of a run's report, drawn from what the run wrote: summary.json,
timeseries.csv and each engine's received.npy. Each figure comes back as SVG text (for the
self-contained HTML page) and is saved as PNG (for report.md)."""
from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from harness.judge.judge import scheduled_ns  # noqa: E402
from harness.judge.metrics import first_copies, rolling_p99  # noqa: E402
from harness.load.generator import generate  # noqa: E402
from harness.load.history import OLDER_RECEIVED, RECEIVED  # noqa: E402
from harness.results import layout  # noqa: E402
from harness.results.read import read_npy  # noqa: E402
from harness.results.schema import EngineResult, Summary  # noqa: E402

STEP_NS = 500_000_000  # the latency-over-time curve's resolution

# A figure per question a reader asks of the run.
TITLES = {
    "latency": "Latency over time (SPEC 4's rolling p99, log scale)",
    "cdf": "Latency distribution (after warm-up)",
    "throughput": "Throughput: offered by the driver vs decisions received",
    "backlog": "Backlog (consumer lag): records sent but not yet decided",
    "recovery": "Faults: output gap and time to recover",
    "vary": "Latency against the varied option, at the sweep's first rate",
    "scale": "Sustainable rate per node count (capacity curve)",
}


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    svg: str
    png: Path


@dataclass(frozen=True)
class Markers:
    events: list[tuple[float, str]]  # faults and the schema switch: (seconds after the load start, label)
    phases: list[tuple[float, float, float]]  # (start s, end s, rate multiplier)
    warmup_s: float


def markers(summary: Summary) -> Markers:
    wl = summary.workload
    if wl is None:  # a recorded workload this version cannot parse: no markers
        return Markers([], [], 0.0)
    events = [(_injected_s(summary, i, f.at_s), f"{f.action} {f.target}") for i, f in enumerate(wl.faults)]
    if wl.schema_v2_from_s is not None:
        events.append((wl.schema_v2_from_s, "schema v2"))
    phases = [(p.start_s, p.start_s + p.duration_s, p.multiplier) for p in wl.phases]
    return Markers(events, phases, wl.warmup_s)


def _injected_s(summary: Summary, i: int, planned_s: float) -> float:
    """When fault `i` was injected, seconds after the load's start: the median over the
    engines that recorded it (each row has its own run; they differ by milliseconds), else
    the planned time."""
    times = [e.recovery[i].at_s for e in summary.engines if len(e.recovery) > i and e.recovery[i].target]
    return float(statistics.median(times)) if times else planned_s


Series = dict[str, list[dict[str, float | None]]]  # timeseries.csv's rows by engine
# What every row the runner appends has; p50, p99 (nothing decided that second) and backlog
# (older runs) may be empty.
NEEDED = ("engine", "second", "offered", "received")


def _row(r: dict[str | None, str | None]) -> dict[str, float | None] | None:
    """A timeseries.csv row's figures; None for a row cut short or damaged."""
    # DictReader keys a row's surplus fields None and gives its missing ones None.
    if None in r or None in r.values() or not all(r.get(k) for k in NEEDED):
        return None
    try:
        return {str(k): float(v) if v else None for k, v in r.items() if k != "engine"}
    except ValueError:
        return None


def timeseries(run_dir: Path, warn: Callable[[str], None]) -> Series:
    """timeseries.csv by engine; the rows that cannot be read are skipped and counted in a
    warning: a run killed while appending leaves its last row cut short."""
    path = run_dir / layout.TIMESERIES
    if not path.exists():
        return {}
    # Damaged bytes spoil their own row only.
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rows: Series = defaultdict(list)
    reader = csv.DictReader(lines)
    if not set(NEEDED) <= set(reader.fieldnames or []):
        warn(f"{path}: no header naming the columns a run writes ({', '.join(NEEDED)}): throughput and backlog "
             f"not drawn")
        return {}
    skipped = 0
    try:
        for r in reader:
            row = _row(r)
            if row is None:
                skipped += 1
            else:
                rows[str(r["engine"])].append(row)
    except csv.Error:  # a field past the csv module's size limit: not text a run wrote
        # Every line below the header but the rows read whole.
        skipped = len(lines) - 1 - sum(len(v) for v in rows.values())
    if skipped:
        read = sum(len(v) for v in rows.values())
        warn(f"{path}: {skipped} row(s) cut short or damaged, skipped; the charts show the {read} readable one(s)")
    return dict(rows)


def _mark(ax: Any, m: Markers) -> None:
    for start, end, mult in m.phases:
        ax.axvspan(start, end, color="orange", alpha=0.12, label=f"x{mult:g} rate")
    for at, label in m.events:
        ax.axvline(at, color="red", linestyle="--", linewidth=1)
        ax.annotate(label, (at, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", color="red", fontsize=8)


def _save(fig: Figure, name: str, out: Path) -> Chart:
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{name}.png"
    fig.savefig(png, dpi=110, bbox_inches="tight")
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    return Chart(name, TITLES[name], svg[svg.index("<svg"):], png)


def _legend(ax: Any, loc: str) -> None:
    # Nothing labelled (a run whose engines all failed): no legend, rather than a warning.
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc=loc)


def _over_time(fig: Figure, ax: Any, ylabel: str, m: Markers, name: str, out: Path) -> Chart:
    """The common end of every chart over the run's seconds: labels, markers, legend, grid."""
    ax.set_xlabel("seconds after the load started")
    ax.set_ylabel(ylabel)
    _mark(ax, m)
    _legend(ax, "upper left")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, name, out)


def _decisions(run_dir: Path, e: EngineResult) -> np.ndarray | None:
    path = layout.received(run_dir, e.engine)
    if not e.ok or not path.exists() or e.load_start_ns is None:
        return None
    return first_copies(read_npy(path, RECEIVED, OLDER_RECEIVED))


def _schedule(summary: Summary, e: EngineResult, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The decisions and every record's intended send time by txn_id, for the rolling p99.
    With none missing the decisions hold the whole schedule; otherwise it is generated
    again from the recorded workload, so that a record never decided still counts."""
    c, wl = e.correctness, summary.workload
    if c is not None and c.missing and wl is not None and e.load_start_ns is not None:
        return first, scheduled_ns(generate(wl), e.load_start_ns)
    renumbered = first.copy()
    renumbered["txn_id"] = np.arange(len(first))
    return renumbered, renumbered["sent_ns"]


def _latency_over_time(run_dir: Path, summary: Summary, m: Markers, out: Path) -> Chart | None:
    fig, ax = plt.subplots(figsize=(10, 4))
    drawn = False
    for e in summary.engines:
        first = _decisions(run_dir, e)
        if first is None or len(first) == 0 or e.load_start_ns is None:
            continue
        start = e.load_start_ns
        xs = np.arange(start + STEP_NS, int(first["recv_ns"].max()) + 1, STEP_NS)
        if len(xs) == 0:  # every decision within the first step: no point to draw
            continue
        # SPEC 4's rolling p99, backlog included: an outage shows as a ramp, not a hole.
        first, scheduled = _schedule(summary, e, first)
        ax.plot((xs - start) / 1e9, rolling_p99(first, scheduled, xs) / 1e6, label=e.engine, linewidth=1.2)
        drawn = True
    # No curve: a log scale of nothing would warn, and the figure would show nothing.
    if not drawn:
        plt.close(fig)
        return None
    ax.set_yscale("log")
    ax.axvspan(0, m.warmup_s, color="grey", alpha=0.1, label="warm-up")
    return _over_time(fig, ax, "rolling 1-s p99 (ms), pending records included", m, "latency", out)


def _cdf(run_dir: Path, summary: Summary, m: Markers, out: Path) -> Chart | None:
    fig, ax = plt.subplots(figsize=(10, 4))
    drawn = False
    for e in summary.engines:
        first = _decisions(run_dir, e)
        if first is None or e.load_start_ns is None:
            continue
        keep = first["sent_ns"] >= e.load_start_ns + int(m.warmup_s * 1e9)
        lat = np.sort((first["recv_ns"][keep] - first["sent_ns"][keep]) / 1e6)
        if len(lat):
            ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=e.engine, linewidth=1.2)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of decisions")
    for q in (0.5, 0.99):
        ax.axhline(q, color="grey", linewidth=0.8, linestyle=":")
    _legend(ax, "lower right")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, "cdf", out)


def _throughput(series: Series, m: Markers, out: Path) -> Chart | None:
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(10, 4))
    offered_drawn = False
    for engine, rows in series.items():
        xs = [r["second"] for r in rows]
        if not offered_drawn:  # the same schedule for every engine
            ax.plot(xs, [r["offered"] for r in rows], color="black", linestyle="--", linewidth=1, label="offered")
            offered_drawn = True
        ax.plot(xs, [r["received"] for r in rows], label=f"{engine} out", linewidth=1.2)
    return _over_time(fig, ax, "records per second", m, "throughput", out)


def _backlog(series: Series, m: Markers, out: Path) -> Chart | None:
    drawn = False
    fig, ax = plt.subplots(figsize=(10, 4))
    for engine, rows in series.items():
        if rows and rows[0].get("backlog") is not None:  # runs from before the column have none
            ax.plot([r["second"] for r in rows], [r["backlog"] for r in rows], label=engine, linewidth=1.2)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    return _over_time(fig, ax, "records sent, not yet decided", m, "backlog", out)


def _recovery(summary: Summary, out: Path) -> Chart | None:
    bars = [(e.engine, r) for e in summary.engines if e.ok for r in e.recovery if not r.error]
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(bars)))
    for i, (engine, r) in enumerate(bars):
        at = r.at_s
        ax.barh(i, r.output_gap_s, left=at, color="tab:red", alpha=0.8,
                label="longest silence (its length, drawn from the fault)" if i == 0 else None)
        if r.recovered:
            ax.barh(i, r.recovery_time_s, left=at, color="tab:orange", alpha=0.3,
                    label="until p99 back for good" if i == 0 else None)
        else:
            ax.annotate("never recovered", (at + r.output_gap_s, i), xytext=(4, -3), textcoords="offset points",
                        fontsize=8, color="tab:red")
    ax.set_yticks(range(len(bars)), [f"{e}: {r.fault.action} {r.fault.target}" for e, r in bars],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(left=0)
    ax.set_xlabel("seconds after the load started")
    _legend(ax, "lower right")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, "recovery", out)


def draw(run_dir: Path, summary: Summary, out: Path, warn: Callable[[str], None]) -> list[Chart]:
    """The figures there is something to draw in; `warn` hears of rows of the time series
    that could not be read."""
    m = markers(summary)
    series = timeseries(run_dir, warn)
    charts = [_latency_over_time(run_dir, summary, m, out), _cdf(run_dir, summary, m, out),
              _throughput(series, m, out), _backlog(series, m, out), _recovery(summary, out)]
    return [c for c in charts if c]


def vary(result: dict[str, Any], out: Path) -> Chart | None:
    """A varied sweep (sweep.json with `vary`): the varied row's p50 and p99 at the first
    rate against the option's value, and each other row of the sweep as a dashed floor (the
    at-least-once rows, say, beside an exactly-once row's checkpoint interval)."""
    spec = result.get("vary")
    if not spec:
        return None
    first_rate = result["criteria"]["rates"][0]
    at_first = [s for s in result["steps"] if s["rate"] == first_rate and s.get("p50_ms") is not None]
    points = [(s["value"], s["p50_ms"], s["p99_ms"]) for s in at_first if s.get("option") == spec["option"]]
    if not points or not all(isinstance(v, int | float) and not isinstance(v, bool) for v, _, _ in points):
        return None  # nothing measured, or values with no order to draw (e.g. a mode)
    points.sort()
    fig, ax = plt.subplots(figsize=(8, 4))
    values = [v for v, _, _ in points]
    ax.plot(values, [p50 for _, p50, _ in points], marker="o", label=f"{spec['row']} p50")
    ax.plot(values, [p99 for _, _, p99 in points], marker="o", label=f"{spec['row']} p99")
    floors = [s for s in at_first if s.get("option") is None]
    for s, colour in zip(floors, ("black", "dimgray", "saddlebrown", "darkslateblue"), strict=False):
        ax.axhline(s["p50_ms"], linestyle="--", linewidth=1, color=colour, label=f"{s['engine']} p50")
        ax.axhline(s["p99_ms"], linestyle=":", linewidth=1, color=colour, label=f"{s['engine']} p99")
    if min(values) > 0:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{spec['row']}.{spec['option']}")
    ax.set_ylabel(f"latency ms at {first_rate:,g} ev/s")
    _legend(ax, "upper left")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, "vary", out)


def scale(result: dict[str, Any], out: Path) -> Chart | None:
    """scale.json drawn: each engine's sustainable rate against its node count, with the
    line it would follow if it scaled linearly from one node as a dotted guide. A rate no
    tried rate bounded (every step held) is a floor: drawn as an upward triangle."""
    nodes = result["nodes"]
    fig, ax = plt.subplots(figsize=(8, 4))
    drawn = floors = False
    for row, by_n in result["rows"].items():
        cells = [(n, by_n[str(n)]) for n in nodes if by_n.get(str(n)) and by_n[str(n)]["rate"]]
        if not cells:
            continue
        drawn = True
        line = ax.plot([n for n, _ in cells], [c["rate"] for _, c in cells], marker="o", label=row)[0]
        first_n, first = cells[0]
        ax.plot(nodes, [first["rate"] * n / first_n for n in nodes], linestyle=":", linewidth=1,
                color=line.get_color())
        above = [(n, c["rate"]) for n, c in cells if c["above_rates_tried"]]
        if above:
            ax.scatter([n for n, _ in above], [r for _, r in above], marker="^", s=120, color=line.get_color(),
                       label=None if floors else "≥: a floor (every rate tried held)", zorder=3)
            floors = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xticks(nodes)
    ax.set_xlabel("nodes per engine (processors, TaskManagers, Spark Workers)")
    ax.set_ylabel("sustainable ev/s")
    _legend(ax, "upper left")
    ax.grid(True, alpha=0.3)
    return _save(fig, "scale", out)
