"""The comparison table, one row per engine, from a summary.json."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from harness.console import console as default_console


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _count(v: int | None, good_when_zero: bool = True) -> str:
    if v is None:
        return "—"
    return f"[green]{v}[/]" if v == 0 or not good_when_zero else f"[red]{v}[/]"


def _recovery(rec: list[dict[str, Any]]) -> str:
    if not rec:
        return "—"
    parts = []
    for r in rec:
        if r.get("error"):
            parts.append("[red]fault failed[/]")
        elif r.get("recovered"):
            parts.append(f"{r['output_gap_s']:.1f} / {r['recovery_time_s']:.1f}")
        else:
            reached = r.get("final_p99_ms")
            parts.append(f"{r['output_gap_s']:.1f} / [red]never[/] (p99 {_ms(reached)} ms)")
    return "\n".join(parts)


def table(summary: dict[str, Any]) -> Table:
    wl = summary.get("workload_name", "?")
    t = Table(title=f"Stream Showdown — {wl} ({summary.get('status')})", title_justify="left")
    for col, justify in [("engine", "left"), ("p50", "right"), ("p90", "right"), ("p99", "right"),
                         ("p99.9", "right"), ("max", "right"), ("offered/s", "right"), ("out/s", "right"),
                         ("on sched", "center"), ("missing", "right"), ("dup", "right"), ("wrong", "right"),
                         ("gap / recovery s", "right"), ("CPU s eng/kafka", "right")]:
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for e in summary.get("engines", []):
        if e.get("status") != "ok":
            t.add_row(e["engine"], f"[red]{e.get('status')}[/]", *["—"] * 12)
            continue
        lat = e["latency_ms"]
        tp = e["throughput"]
        c = e["correctness"]
        cpu = e["cpu_seconds"]
        t.add_row(
            e["engine"], _ms(lat["p50"]), _ms(lat["p90"]), _ms(lat["p99"]), _ms(lat["p999"]), _ms(lat["max"]),
            f"{tp['offered_per_s']:,.0f}", f"{tp['decisions_per_s']:,.0f}",
            "[green]yes[/]" if tp["driver_kept_schedule"] else "[red]no[/]",
            _count(c["missing"]), _count(c["duplicates"]), _count(c["wrong"]),
            _recovery(e.get("recovery", [])),
            # During the load and drain when recorded (older results: the whole run).
            f"{cpu.get('engine_load', cpu['engine']):.0f} / {cpu.get('kafka_load', cpu['kafka']):.0f}",
        )
    t.caption = "latency in ms (receive time − intended send time, after warm-up); " \
                "gap = longest silence after the fault; recovery = until p99 is back (SPEC 4); " \
                "CPU = seconds used during the load and drain"
    return t


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or default_console
    console.print(table(summary))
    for e in summary.get("engines", []):
        if e.get("error"):
            console.print(f"[red]{e['engine']} {e.get('status')}:[/] {e['error']}")
        examples = (e.get("correctness") or {}).get("examples") or {}
        for kind, ids in examples.items():
            console.print(f"[yellow]{e['engine']}: first {kind}:[/] " + "; ".join(ids))
        for line in e.get("events", []):
            console.print(f"[yellow]{e['engine']}:[/] {line}")
