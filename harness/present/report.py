"""The comparison table, one row per engine, from a run's summary (results/schema.py)."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.results import layout
from harness.results.schema import FaultResult, Summary, Throughput, WindowsResult
from harness.results.store import RunDir
from harness.support.console import console as default_console


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


# How cells are marked up: plain text (report.md), rich markup (the console), HTML (report.html).
Markup = Literal["plain", "rich", "html"]
CSS_CLASS = {"green": "good", "red": "bad"}


def style(text: str, colour: str | None, markup: Markup) -> str:
    """`text` in `colour` (green: as it should be; red: a problem), or as is."""
    if markup == "html":
        text = html.escape(text)
        return f'<span class="{CSS_CLASS[colour]}">{text}</span>' if colour else text
    return f"[{colour}]{text}[/]" if markup == "rich" and colour else text


def _count(v: int | None, markup: Markup) -> str:
    if v is None:
        return "—"
    return style(str(v), "green" if v == 0 else "red", markup)


def _recovery(rec: list[FaultResult], markup: Markup) -> str:
    if not rec:
        return "—"
    parts = []
    for r in rec:
        if r.error:
            parts.append(style("fault failed", "red", markup))
        elif r.recovered and r.recovery_time_s is not None:
            parts.append(f"{r.output_gap_s:.1f} / {r.recovery_time_s:.1f}")
        else:
            parts.append(f"{r.output_gap_s:.1f} / {style('never', 'red', markup)} (p99 {fmt_ms(r.final_p99_ms)} ms)")
    return "\n".join(parts)


def _backlog(tp: Throughput, markup: Markup) -> str:
    if tp.backlog_max is None:  # results from before the backlog was recorded
        return "—"
    growth = tp.backlog_growth_per_s
    if growth is None:
        return f"{tp.backlog_max:,}"
    # Growing by more than 1 % of the offered rate: the engine is falling behind.
    behind = growth > 0.01 * tp.offered_per_s
    return f"{tp.backlog_max:,}\n" + style(f"{growth:+,.0f}/s", "red" if behind else None, markup)


COLUMNS = ["engine", "p50", "p90", "p99", "p99.9", "max", "offered/s", "out/s", "on sched", "backlog", "missing", "dup",
           "wrong", "gap / recovery s", "CPU s eng/kafka"]
WINDOWS_COLUMN = "windows\nmiss/dup/wrong\ndelay p50/p99 ms"
WINDOWS_CAPTION = ("; windows = the event-time windows output against the oracle (missing, duplicated, wrong or "
                   "unexpected results), and the delay from a perfect watermark passing a window's end to its result")
CAPTION = ("latency in ms (receive time − intended send time, after warm-up); gap = longest silence after the "
           "fault; recovery = from the fault to the first 10 s with the rolling p99 within its threshold, outside "
           "that silence (docs/spec.md, section 4); disturbed = other processes used over 5 % of the machine "
           "during the load and drain, so the row's latency is not evidence; backlog = most records sent but not yet decided, "
           "and its growth per second in the steady load (after warm-up, before a surge or fault); CPU = seconds "
           "used during the load and drain")


def has_windows(summary: Summary) -> bool:
    return any(e.windows for e in summary.engines)


def columns(summary: Summary) -> list[str]:
    """The table's columns: the windows output's only when the run has one."""
    return [*COLUMNS, WINDOWS_COLUMN] if has_windows(summary) else COLUMNS


def caption(summary: Summary) -> str:
    return CAPTION + (WINDOWS_CAPTION if has_windows(summary) else "")


def _windows(w: WindowsResult | None, markup: Markup) -> str:
    if not w:
        return "—"
    counts = "/".join(_count(v, markup) for v in (w.missing, w.duplicates, w.wrong))
    if w.unexpected:
        counts += " " + style(f"+{w.unexpected} unexpected", "red", markup)
    d = w.emission_delay_ms
    return f"{counts}\n{fmt_ms(d.get('p50'))} / {fmt_ms(d.get('p99'))}"


def rows(summary: Summary, markup: Markup = "plain") -> list[list[str]]:
    """The comparison table's cells, one row per engine, marked up for the console, the
    HTML page, or not at all."""
    out = []
    windows = has_windows(summary)
    width = len(COLUMNS) + windows
    for e in summary.engines:
        if not e.ok:
            out.append([style(e.engine, None, markup), style(e.status, "red", markup), *["—"] * (width - 2)])
            continue
        m = e.measured()
        lat, tp, c, cpu = m.latency_ms, m.throughput, m.correctness, m.cpu_seconds
        kept = tp.driver_kept_schedule
        out.append([
            style(e.engine, None, markup) + (" " + style("(disturbed)", "red", markup) if e.disturbed else ""),
            fmt_ms(lat.p50), fmt_ms(lat.p90), fmt_ms(lat.p99), fmt_ms(lat.p999), fmt_ms(lat.max),
            f"{tp.offered_per_s:,.0f}", f"{tp.decisions_per_s:,.0f}",
            style("yes" if kept else "no", "green" if kept else "red", markup),
            _backlog(tp, markup),
            _count(c.missing, markup), _count(c.duplicates, markup), _count(c.wrong, markup),
            _recovery(e.recovery, markup),
            # During the load and drain (format-1 results: the whole run).
            f"{_cpu(cpu.engine_load)} / {_cpu(cpu.kafka_load)}",
            *([_windows(e.windows, markup)] if windows else []),
        ])
    return out


def _cpu(seconds: float | None) -> str:
    return "not measured" if seconds is None else f"{seconds:.0f}"


def table(summary: Summary) -> Table:
    t = Table(title=f"Stream Showdown — {summary.workload_name} ({summary.status})", title_justify="left")
    for col in columns(summary):
        t.add_column(col, justify="left" if col == "engine" else "center" if col == "on sched" else "right")
    for row in rows(summary, markup="rich"):
        t.add_row(*row)
    t.caption = caption(summary)
    return t


def unfinished(summary: Summary) -> str | None:
    """Why the run is not complete, said before its table; None if it is."""
    if summary.status == "complete":
        return None
    why = summary.error or "it was interrupted or killed before it recorded why (or it is still running)"
    return f"run {summary.status}: {why}"


def no_rows(summary: Summary, name: str) -> str:
    """Why run `name` has no engine's row: a table of none would say nothing."""
    if summary.error:
        why = f" ({summary.error})"
    elif summary.finished_at is None:
        why = " (or it is still running)"
    else:
        why = ""
    return f"run {name} did not finish: it was interrupted or killed before any engine's row was written{why}"


def notes(summary: Summary) -> list[str]:
    """What the table cannot show: engines' errors, the first offending txn_ids, events of the run."""
    out = []
    for e in summary.engines:
        name = e.engine
        if e.error:
            out.append(f"{name} {e.status}: {e.error}")
        c = e.correctness
        for kind, ids in (c.examples if c else {}).items():
            out.append(f"{name}: first {kind}: " + "; ".join(ids))
        for kind, items in (e.windows.examples if e.windows else {}).items():
            out.append(f"{name}: first {kind} window results: " + "; ".join(items))
        if c and c.by_schema:
            out.append(f"{name}: by value schema: " + "; ".join(
                f"{v} ({s.sent:,} sent) missing {s.missing}, dup {s.duplicates}, "
                f"wrong {'—' if s.wrong is None else s.wrong}" for v, s in c.by_schema.items()))
        d = e.disturbance
        if d and d.disturbed:
            out.append(f"{name}: disturbed: processes outside the run used {d.other_cpu_s:.1f} CPU s, {d.share:.1%} "
                       f"of the machine during the load and drain (load average {d.load_average[0]:.2f} at its "
                       f"start; busiest: {', '.join(d.busiest) or 'short-lived ones'}): its latency is not evidence")
        for r in e.recovery:
            if r.recovered and r.worst_after_recovery_p99_ms is not None and r.threshold_ms is not None \
                    and r.worst_after_recovery_p99_ms > r.threshold_ms:
                out.append(f"{name}: after recovering from {r.fault.action} {r.fault.target} at {r.at_s} s, the "
                           f"rolling p99 went above the {fmt_ms(r.threshold_ms)}-ms threshold again, to "
                           f"{fmt_ms(r.worst_after_recovery_p99_ms)} ms")
            if r.duplicates:
                out.append(f"{name}: {r.duplicates:,} duplicate(s) received after "
                           f"{r.fault.action} {r.fault.target} at {r.at_s} s, before the next fault")
        for line in e.events:
            out.append(f"{name}: {line}")
    return out


def print_summary(summary: Summary, console: Console | None = None) -> None:
    console = console or default_console
    headline = unfinished(summary)
    if headline:
        console.print(f"[bold red]{escape(headline)}[/]")
    console.print(table(summary))
    for line in notes(summary):
        console.print(f"[yellow]{escape(line)}[/]")


def _metadata(summary: Summary) -> list[tuple[str, str]]:
    m = summary.metadata
    v = m.versions
    pinned = v.get("pinned", {})
    machine = m.machine
    git = m.git
    return [
        ("workload", f"{summary.workload_name} (seed {m.workload.seed}, {m.workload.path})"),
        ("status", f"{summary.status}, {summary.started_at} → {summary.finished_at}"),
        ("backend", m.backend_note or m.backend),
        ("machine", f"{machine.get('cpu_model')}, {machine.get('cpus')} CPUs, {machine.get('memory_gib')} GiB, "
                    f"{machine.get('platform')}"
                    + "".join(f", {k.replace('_', ' ')} {machine[k]}" for k in
                              ("cpu_governor", "cgroup_cpu_max", "load_average") if machine.get(k) is not None)),
        ("disturbance", "; ".join(f"{e.engine} {e.disturbance.share:.1%}" + (" (disturbed)" if e.disturbed else "")
                                  for e in summary.engines if e.disturbance) or "not measured"),
        ("versions", f"Kafka {pinned.get('kafka', {}).get('version')}, Flink {pinned.get('flink', {}).get('version')}, "
                     f"Spark {pinned.get('spark', {}).get('version')}, Python {v.get('python')}, {v.get('java')}, "
                     f"confluent-kafka {v.get('confluent-kafka')} (librdkafka {v.get('librdkafka')})"),
        ("git", f"{git.get('commit')}{' (uncommitted changes)' if git.get('dirty') else ''}"),
    ]


PAGE_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
.wide { overflow-x: auto; }
table { border-collapse: collapse; margin: 1em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; white-space: pre-line; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.bad { color: #b00; font-weight: 600; } .good { color: #070; }
figure { margin: 1.5em 0; } figcaption { font-weight: 600; margin-bottom: .3em; }
svg { max-width: 100%; height: auto; } .caption, .meta td { color: #555; text-align: left; }
"""


def write_files(run_dir: Path, summary: Summary, out: Console | None = None) -> tuple[Path, Path]:
    """report.html (one self-contained page: inline SVG, no network needed) and report.md
    (with its figures as PNG files in report-files/) in `run_dir`; what could not be drawn
    is said on `out`."""
    from harness.present import charts  # matplotlib: only when a report is written

    console = out or default_console

    def warn(line: str) -> None:
        console.print(f"[yellow]warning: {escape(line)}[/]", highlight=False, soft_wrap=True)

    figures = charts.draw(run_dir, summary, run_dir / layout.REPORT_FILES, warn)
    note_lines = notes(summary)
    headline = unfinished(summary)
    cells = rows(summary)
    title = f"Stream Showdown — {summary.workload_name} ({summary.status})"
    body_rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows(summary, "html"))
    page = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
            f"<style>{PAGE_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
            f"<p class='bad'>{html.escape(headline)}</p>" if headline else "",
            # A narrow window scrolls the table rather than cutting its last columns off.
            "<div class='wide'><table><thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns(summary))
            + "</tr></thead>",
            f"<tbody>{body_rows}</tbody></table></div><p class='caption'>{html.escape(caption(summary))}</p>"]
    page += [f"<figure><figcaption>{html.escape(f.title)}</figcaption>{f.svg}</figure>" for f in figures]
    page += ["<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in note_lines) + "</ul>"
             if note_lines else ""]
    page += ["<h2>Run</h2><table class='meta'>" + "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in _metadata(summary)) + "</table>",
        "</body></html>"]
    html_path = run_dir / layout.REPORT_HTML
    html_path.write_text("\n".join(page))

    cols = [c.replace("\n", "<br>") for c in columns(summary)]
    md = [f"# {title}", "", *([f"**{headline}**", ""] if headline else []),
          "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(c.replace("\n", "<br>") for c in r) + " |" for r in cells]
    md += ["", caption(summary), ""]
    md += [f"## {f.title}\n\n![{f.name}]({f.png.relative_to(run_dir)})\n" for f in figures]
    if note_lines:
        md += ["## Notes", "", *(f"- {n}" for n in note_lines), ""]
    md += ["## Run", "", *(f"- **{k}**: {v}" for k, v in _metadata(summary)), ""]
    md_path = run_dir / layout.REPORT_MD
    md_path.write_text("\n".join(md))
    return html_path, md_path


def write_report(run_dir: RunDir, out: Console | None = None) -> None:
    """report.html and report.md of a finished run; a failure to draw is said, not raised:
    the figures are a view of the results, which are already written."""
    out = out or default_console
    try:
        pages = write_files(run_dir.path, run_dir.summary, out)
        out.print(f"Report: {pages[0]} and {pages[1].name}")
    except Exception as e:
        out.print(f"[yellow]could not draw the report ({type(e).__name__}: {e}); "
                  f"`showdown report {run_dir.path}` tries again[/]")
