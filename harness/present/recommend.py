"""`showdown recommend`: which engines meet stated requirements on the evidence of given
results, each verdict with the figure and the file it came from.

The evidence of a run or repeat folder is its runs' summary.json files; of a sweep folder
its sweep.json alone: a sweep's steps are driven past each engine's capacity on purpose,
so their latency and losses describe overload, not the engine at the load asked about."""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from harness.present import repeat
from harness.present.report import fmt_ms, style
from harness.results import layout
from harness.results.read import load_sweep
from harness.results.schema import EngineResult, FaultResult, Measured, Summary
from harness.support.errors import ResultsError
from harness.workload.schema import CLUSTER_FAULTS

MEETS, FAILS, NOT_MEASURED = "meets", "fails", "not measured"
STATUS_STYLE = {MEETS: "green", FAILS: "red", NOT_MEASURED: None}


@dataclass(frozen=True)
class Requirements:
    p99_ms: float | None  # None: latency not asked about (`check` only; `recommend` requires it)
    exactly_once: bool = False
    state_hours: float | None = None
    rate: float | None = None


@dataclass(frozen=True)
class Verdict:
    requirement: str
    status: str  # MEETS, FAILS or NOT_MEASURED
    why: str  # the figure and the file it came from, or what is missing


@dataclass(frozen=True)
class EngineRun:
    file: Path  # summary.json, as given on the command line
    summary: Summary
    result: EngineResult  # the engine's row in the summary

    @property
    def figures(self) -> Measured:
        return self.result.measured()


@dataclass
class Evidence:
    runs: list[tuple[Path, Summary]] = field(default_factory=list)  # (summary.json, summary)
    sweeps: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)  # (sweep.json, sweep)

    def engines(self) -> list[str]:
        return list(dict.fromkeys([*(e.engine for _, s in self.runs for e in s.engines),
                                   *(e for _, s in self.sweeps for e in s.get("sustainable", {}))]))

    def of(self, engine: str) -> list[EngineRun]:
        """The engine's successful results: a failed one measured nothing."""
        return [EngineRun(f, s, e) for f, s in self.runs for e in s.engines if e.engine == engine and e.ok]


def gather(paths: list[Path]) -> Evidence:
    ev = Evidence()
    seen: set[Path] = set()
    for p in paths:
        runs = repeat.summaries(p)
        sweep_file = layout.result_folder(p) / layout.SWEEP
        if runs is None and not sweep_file.is_file():
            raise repeat.not_a_result(p, "a run, repeat or sweep folder (summary.json, repeat.json or sweep.json); "
                                         "a glob like results/*/ matches folders only")
        if runs is None:
            sweep = load_sweep(sweep_file)
            if sweep_file.resolve() not in seen:
                seen.add(sweep_file.resolve())
                ev.sweeps.append((sweep_file, sweep))
            continue
        # A run given twice (alone and inside its repeat folder) is one piece of evidence.
        for f, summary in runs:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                ev.runs.append((f, summary))
    return ev


def _files(files: list[Path]) -> str:
    return str(files[0]) + (f" and {len(files) - 1} more" if len(files) > 1 else "")


def p99_verdict(limit_ms: float, runs: list[EngineRun]) -> Verdict:
    """The steady-state p99, worst over the runs: with faults, the pre-fault p99 recovery is
    judged against (the 10 s before the first fault), else the p99 after warm-up. Runs with
    surges (`phases`) do not count."""
    req = f"p99 ≤ {limit_ms:,g} ms"
    figures = []
    disturbed = [r for r in runs if r.result.disturbed]
    for r in runs:
        if r.summary.workload and r.summary.workload.phases:
            continue  # a surge is a stress test, not the steady state
        if r.result.disturbed:
            continue  # its latency measured a neighbour too (docs/spec.md, section 4)
        faults = r.result.recovery
        steady = [f.pre_fault_p99_ms for f in faults if f.pre_fault_p99_ms is not None]
        p99 = r.figures.latency_ms.p99
        if faults and steady:
            figures.append((max(steady), "before the fault", r.file))
        elif not faults and p99 is not None:
            figures.append((p99, "after warm-up", r.file))
    if not figures:
        why = ("no given run has a steady-state p99 of it (a fault run needs decisions in the 10 s before its "
               "first fault; runs with surges or disturbed do not count)")
        if disturbed:
            why = (f"every given run of it with a steady-state p99 was disturbed by other processes, so its latency "
                   f"is not evidence ({_files([r.file for r in disturbed])}): rerun on a quiet machine")
        return Verdict(req, NOT_MEASURED, why if runs else "no given run of it")
    worst, when, file = max(figures, key=lambda f: f[0])
    ok = worst <= limit_ms
    of = f"worst of {len(figures)} runs: " if len(figures) > 1 else ""
    return Verdict(req, MEETS if ok else FAILS,
                   f"p99 {fmt_ms(worst)} ms {when} {'≤' if ok else '>'} {limit_ms:,g} ms ({of}{file})")


def _engine_fault(rec: FaultResult) -> bool:
    """A fault that hit the engine itself (not Kafka) and was injected (it names what it hit)."""
    return rec.fault.kind not in CLUSTER_FAULTS and bool(rec.target)


def exactly_once_verdict(engine: str, runs: list[EngineRun]) -> Verdict:
    req = "exactly-once"
    if not runs:
        return Verdict(req, NOT_MEASURED, "no given run of it")
    for r in runs:
        c = r.figures.correctness
        # wrong is None where the engine applies no rules (passthrough): nothing to get wrong.
        bad = [f"{v:,} {k}" for k, v in (("missing", c.missing), ("duplicates", c.duplicates), ("wrong", c.wrong))
               if v]
        if bad:
            return Verdict(req, FAILS, f"{', '.join(bad)} ({r.file})")
    faulted = [r.file for r in runs if any(_engine_fault(f) for f in r.result.recovery)]
    if not faulted:
        return Verdict(req, NOT_MEASURED, f"no given run injected a fault into {engine}: exactly-once is only shown "
                                          f"across a failure (add a run with a worker, job, executor or driver "
                                          f"fault)")
    return Verdict(req, MEETS, f"0 missing, duplicates and wrong in {len(runs)} run(s), {len(faulted)} with a "
                               f"fault injected into {engine} ({_files(faulted)})")


def state_verdict(hours: float, runs: list[EngineRun]) -> Verdict:
    """Met by a run whose workload kept each user's state over a window of at least `hours`
    with no wrong decision. The window is the rule's; a run shorter than it filled it only
    that far, so the figure comes with the run's length."""
    req = f"state ≥ {hours:g} h"
    if not runs:
        return Verdict(req, NOT_MEASURED, "no given run of it")
    judged = [r for r in runs if r.figures.correctness.wrong is not None]
    if not judged:
        return Verdict(req, NOT_MEASURED, "it applies no rules, so it keeps no per-user state")
    windows = []  # (window_s, duration_s, run) of each run that recorded its workload
    for r in judged:
        wl = r.summary.workload
        if wl:
            windows.append((wl.rules.window_s, wl.duration_s, r))
    if not windows:
        return Verdict(req, NOT_MEASURED, "no given run of it records its workload")
    long = [w for w in windows if w[0] >= hours * 3600]
    if not long:
        window, _, r = max(windows, key=lambda w: w[0])
        return Verdict(req, NOT_MEASURED, f"the longest window in the given runs is {window / 3600:g} h ({r.file})")
    window, duration, r = next((w for w in long if w[2].figures.correctness.wrong == 0), long[0])
    wrong = r.figures.correctness.wrong or 0
    return Verdict(req, MEETS if wrong == 0 else FAILS,
                   f"window_s {window:,} ({window / 3600:g} h) in a {duration:g}-s run, wrong {wrong:,} ({r.file})")


def rate_verdict(engine: str, rate: float, sweeps: list[tuple[Path, dict[str, Any]]]) -> Verdict:
    req = f"≥ {rate:,g} ev/s"
    found = [(f, s) for f, s in sweeps if engine in s.get("sustainable", {})]
    if not found:
        return Verdict(req, NOT_MEASURED, "no given sweep measured it (`showdown sweep`)")
    # A step other processes disturbed is not evidence either way (docs/spec.md, section 4).
    steps = [(f, st) for f, s in found for st in s["steps"] if st["engine"] == engine and not st.get("disturbed")]
    best = [(st["rate"], f) for f, st in steps if st["sustainable"]]
    top = max(best, key=lambda b: b[0], default=(None, found[0][0]))
    if top[0] is not None and top[0] >= rate:
        return Verdict(req, MEETS, f"sustained {top[0]:,g} ev/s ≥ {rate:,g} ev/s ({top[1]})")
    failed = min(((st["rate"], st["why_not"], f) for f, st in steps if not st["sustainable"]), default=None)
    if failed and failed[0] <= rate:
        return Verdict(req, FAILS, f"{failed[0]:,g} ev/s not sustained: {failed[1]} ({failed[2]})")
    sustained = "none" if top[0] is None else f"{top[0]:,g} ev/s"
    skipped = sum(1 for _, s in found for st in s["steps"] if st["engine"] == engine and st.get("disturbed"))
    return Verdict(req, NOT_MEASURED, f"the sweeps tried no rate that settles it: highest sustained {sustained}, "
                                      f"no failure at or below {rate:,g} ev/s ({top[1]})"
                                      + (f"; {skipped} disturbed step(s) not counted" if skipped else ""))


def verdicts_of(req: Requirements, engine: str, ev: Evidence) -> list[Verdict]:
    runs = ev.of(engine)
    verdicts = [p99_verdict(req.p99_ms, runs)] if req.p99_ms is not None else []
    if req.exactly_once:
        verdicts.append(exactly_once_verdict(engine, runs))
    if req.state_hours is not None:
        verdicts.append(state_verdict(req.state_hours, runs))
    if req.rate is not None:
        verdicts.append(rate_verdict(engine, req.rate, ev.sweeps))
    return verdicts


def judge(req: Requirements, ev: Evidence) -> dict[str, list[Verdict]]:
    return {engine: verdicts_of(req, engine, ev) for engine in ev.engines()}


def applies_no_rules(engine: str, ev: Evidence) -> bool:
    return bool(ev.of(engine)) and all(r.figures.correctness.wrong is None for r in ev.of(engine))


def notes(engine: str, ev: Evidence) -> list[str]:
    """What a reader of the verdicts should know about the evidence itself."""
    out = [f"{e.status} in {f}: not counted" for f, s in ev.runs for e in s.engines
           if e.engine == engine and not e.ok]
    out += [f"disturbed in {r.file} (other processes used {r.result.disturbance.share:.0%} of the machine): its "
            f"latency is not counted" for r in ev.of(engine) if r.result.disturbance and r.result.disturbed]
    if applies_no_rules(engine, ev):
        out.append("applies no rules: the floor Kafka itself imposes, not a candidate for the fraud job")
    options = [r.result.describe.get("options") or {} for r in ev.of(engine)]
    differ = [k for k in dict.fromkeys(k for o in options for k in o)
              if len({json.dumps(o.get(k)) for o in options}) > 1]
    if differ:
        out.append(f"ran with different {', '.join(differ)} across the given runs: the verdicts pool them")
    return out


def _say(console: Console) -> Callable[..., None]:
    # No emoji codes: an engine label like `flink:thread:` would print as a picture.
    return functools.partial(console.print, highlight=False, emoji=False)


def _print_verdicts(verdicts: dict[str, list[Verdict]], ev: Evidence, say: Callable[..., None]) -> None:
    """The requirements and the evidence, then each engine's verdicts and notes; an engine
    the evidence lacks is named as such."""
    present = ev.engines()
    asked = [v.requirement for v in next(iter(verdicts.values()))]
    say(f"Requirements: {', '.join(asked)}. Evidence: {len(ev.runs)} run(s), {len(ev.sweeps)} sweep(s).")
    width = max(len(v.requirement) for vs in verdicts.values() for v in vs)
    for engine, vs in verdicts.items():
        say(f"\n[bold]{escape(engine)}[/]")
        if engine not in present:
            say(f"  [yellow]not in the given results, which hold {escape(', '.join(present))}[/]")
        for v in vs:
            status = style(f"{v.status:<12}", STATUS_STYLE[v.status], "rich")
            say(f"  {v.requirement:<{width}}  {status}  {escape(v.why)}")
        for line in notes(engine, ev) if engine in present else []:
            say(f"  [yellow]{escape(line)}[/]")


def print_recommendation(req: Requirements, ev: Evidence, console: Console) -> None:
    say = _say(console)
    verdicts = judge(req, ev)
    if not verdicts:
        raise ResultsError("the given folders hold no engine result: nothing to recommend from")
    _print_verdicts(verdicts, ev, say)
    # Passthrough decides nothing: it can meet every figure and still not do the job.
    winners = [e for e, vs in verdicts.items()
               if all(v.status == MEETS for v in vs) and not applies_no_rules(e, ev)]
    say()
    if winners:
        say(f"[green]Meet every requirement:[/] {escape(', '.join(winners))}")
    else:
        say("[red]No engine meets every requirement on this evidence[/] (not measured is not met: add "
            "results that measure it)")


def check(req: Requirements, ev: Evidence, engines: list[str], console: Console) -> bool:
    """`showdown check`: prints the verdicts of each of `engines` (every engine in the
    evidence when empty) by the rules of `recommend`; True when every one meets every
    requirement. Not measured is not met, and an engine the evidence lacks meets nothing."""
    say = _say(console)
    present = ev.engines()
    if not present:
        raise ResultsError("the given folders hold no engine result: nothing to check")
    verdicts = {e: verdicts_of(req, e, ev) for e in engines or present}
    _print_verdicts(verdicts, ev, say)
    failing = [e for e, vs in verdicts.items() if any(v.status != MEETS for v in vs)]
    say()
    if failing:
        say(f"[red]check failed:[/] {escape(', '.join(failing))} "
            f"{'does' if len(failing) == 1 else 'do'} not meet every requirement on this evidence")
    else:
        say(f"[green]check passed:[/] {escape(', '.join(verdicts))} meet every requirement")
    return not failing
