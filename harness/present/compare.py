"""`showdown compare A B`: two results per engine side by side, and per metric whether B is
better, worse, or inside the noise the repeats show.

The noise rule: a side with repeats spans [min, max] over its runs; when A's and B's
spans overlap, the difference is inside run-to-run noise. Single runs on both sides have no
noise estimate, so their verdict says so."""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.present.repeat import cell, fmt, label
from harness.present.report import style
from harness.results.read import workload_fields
from harness.support.errors import ResultsError

HIGHER_IS_BETTER = {"decisions_per_s"}  # every other metric: lower is better
VERDICT_STYLE = {"B better": "green", "B worse": "red"}


@dataclass(frozen=True)
class Row:
    metric: str
    a: str
    b: str
    delta: str
    percent: str
    verdict: str


def verdict(metric: str, a: dict[str, Any], b: dict[str, Any]) -> str:
    if a["median"] is None or b["median"] is None:
        return "—"
    single = len(a["values"]) == 1 and len(b["values"]) == 1
    if not single and a["min"] <= b["max"] and b["min"] <= a["max"]:
        return "inside noise"
    if a["median"] == b["median"]:
        return "same"
    better = (b["median"] > a["median"]) == (metric in HIGHER_IS_BETTER)
    word = "B better" if better else "B worse"
    if single:
        return f"{word}, noise unknown"
    # One run against the other side's spread: a single tail figure often falls outside a
    # spread of three (measured: the same code's smoke p99 14 % under three runs' minimum).
    return f"{word}, one side a single run" if len(a["values"]) == 1 or len(b["values"]) == 1 else word


# What a busy neighbour cannot change: counts of what arrived, not when.
COUNTS = {"missing", "duplicates", "wrong", "windows_missing", "windows_duplicates", "windows_wrong"}
NOT_EVIDENCE = "not evidence: disturbed"


def rows(a: dict[str, Any], b: dict[str, Any], disturbed: bool = False) -> list[Row]:
    """One engine's metrics (repeat.json's `metrics`) of A and B: medians, B − A, verdict.
    `disturbed`: a run on either side was, so no timing or CPU figure gets a verdict."""
    out = []
    for m in dict.fromkeys([*a, *b]):
        sa, sb = a.get(m), b.get(m)
        va = sa["median"] if sa else None
        vb = sb["median"] if sb else None
        delta = pct = "—"
        if va is not None and vb is not None:
            d = vb - va
            delta = "0" if d == 0 else ("+" if d > 0 else "-") + fmt(m, abs(d))
            pct = f"{d / va * 100:+.1f} %" if va else "—"
        judged = verdict(m, sa, sb) if sa and sb else "—"
        out.append(Row(label(m), cell(m, sa), cell(m, sb), delta, pct,
                       NOT_EVIDENCE if disturbed and m not in COUNTS and judged != "—" else judged))
    return out


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in d.items():
        out.update(_flat(v, f"{prefix}{key}.") if isinstance(v, dict) else {f"{prefix}{key}": v})
    return out


def _differences(a: dict[str, Any], b: dict[str, Any]) -> str:
    fa, fb = _flat(a), _flat(b)
    return ", ".join(f"{k} {fa.get(k, '—')} vs {fb.get(k, '—')}"
                     for k in dict.fromkeys([*fa, *fb]) if fa.get(k) != fb.get(k))


def warnings(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What differs between the two results besides the engines' behaviour: each such
    difference may explain a delta as well as the engines do."""
    out = []
    if a.get("workload_name") != b.get("workload_name"):
        out.append(f"different workloads: A ran {a.get('workload_name')}, B ran {b.get('workload_name')}")
    ma, mb = a.get("metadata", {}), b.get("metadata", {})
    ha, hb = (hashlib.sha256(m.get("workload", {}).get("text", "").encode()).hexdigest()[:12] for m in (ma, mb))
    if ha != hb:
        wa, wb = workload_fields(ma), workload_fields(mb)
        fields = [k for k in dict.fromkeys([*wa, *wb]) if wa.get(k) != wb.get(k)]
        out.append(f"workload text differs (sha256 {ha} vs {hb})"
                   + (f" in: {', '.join(fields)}" if fields else ""))
    if ma.get("backend") != mb.get("backend"):
        out.append(f"different backends: {ma.get('backend')} vs {mb.get('backend')}")
    for key, what in (("machine", "different machines"), ("versions", "different versions"),
                      ("git", "different harness code (git)")):
        diff = _differences(ma.get(key, {}), mb.get(key, {}))
        if diff:
            out.append(f"{what}: {diff}")
    return out


def _ok(result: dict[str, Any], engine: str) -> bool:
    return "ok" in result["engines"][engine]["status"]


def print_comparison(a: dict[str, Any], b: dict[str, Any], a_name: str, b_name: str, console: Console) -> None:
    """A and B are repeat.json-shaped (harness.present.repeat.load)."""
    # No emoji codes: an engine label like `flink:thread:` would print as a picture.
    say = functools.partial(console.print, highlight=False, emoji=False)
    common = [e for e in a["engines"] if e in b["engines"] and _ok(a, e) and _ok(b, e)]
    if not common:
        raise ResultsError(f"no engine with a successful run in both A ({', '.join(a['engines']) or 'none'}) and "
                           f"B ({', '.join(b['engines']) or 'none'}): nothing to compare")
    for side, name, result in (("A", a_name, a), ("B", b_name, b)):
        n = len(result["runs"])
        say(f"{side}: {escape(name)} ({result.get('workload_name')}, {'one run' if n == 1 else f'{n} runs'})")
    for line in warnings(a, b):
        say(f"[yellow]warning: {escape(line)}[/]")
    for e in dict.fromkeys([*a["engines"], *b["engines"]]):
        lacking = [f"{'not run' if e not in r['engines'] else 'no successful run'} in {side}"
                   for side, r in (("A", a), ("B", b)) if e not in r["engines"] or not _ok(r, e)]
        if lacking:
            say(f"[yellow]{escape(e)}: not compared, {' and '.join(lacking)}[/]")
    for e in common:
        disturbed = [f"{sum(r['engines'][e].get('disturbed', []))} of {len(r['runs'])} run(s) in {side}"
                     for side, r in (("A", a), ("B", b)) if any(r["engines"][e].get("disturbed", []))]
        if disturbed:
            say(f"[yellow]{escape(e)}: disturbed by other processes ({' and '.join(disturbed)}): its timings and CPU "
                f"are not evidence, so they get no verdict; rerun on a quiet machine[/]")
        t = Table(title=Text(e), title_justify="left")
        for col in ("metric", "A", "B", "B − A", "%", "verdict"):
            t.add_column(col, justify="left" if col in ("metric", "verdict") else "right")
        for r in rows(a["engines"][e]["metrics"], b["engines"][e]["metrics"], bool(disturbed)):
            colour = next((s for w, s in VERDICT_STYLE.items() if r.verdict.startswith(w)), None)
            t.add_row(r.metric, escape(r.a), escape(r.b), r.delta, r.percent, style(r.verdict, colour, "rich"))
        say(t)
    say(escape("With repeats: median (min–max); 'inside noise' when the two [min, max] ranges overlap. "
               "Lower is better except decisions per s. A verdict against a single run is weak: repeat both."))
    if len(a["runs"]) == 1 and len(b["runs"]) == 1:
        say("[yellow]A and B are single runs: there is no noise estimate, so no difference above can be told "
            "from run-to-run variation. Rerun with `showdown run --repeat N` (e.g. 3).[/]")
