"""Disturbance (docs/spec.md, section 4): what processes outside the run used, and that every
table, compare and recommend mark a disturbed row and take no evidence from its latency."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from harness.backends import daemon
from harness.present import compare, recommend, repeat, report
from harness.run import disturbance, sweep
from harness.run.disturbance import OtherCpu, _Proc
from tests.conftest import SMOKE_TEXT, engine, summary, write_run
from tests.unit.test_recommend import runs

BURN = [sys.executable, "-c", "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass"]


def _burn(seconds: float) -> list[str]:
    return [BURN[0], BURN[1], BURN[2].format(s=seconds)]


def test_the_run_is_the_harness_its_descendants_and_with_containers_the_docker_daemons() -> None:
    procs = {(pid, 0.0): _Proc(ppid, name, 0.0, 0.0) for pid, ppid, name in [
        (1, 0, "init"), (10, 1, "bash"), (11, 10, "showdown"), (12, 11, "java"), (13, 12, "python"),
        (20, 1, "dockerd"), (21, 1, "containerd-shim"), (22, 21, "java"), (30, 1, "stress")]}
    assert disturbance.run_pids(procs, 11, frozenset()) == {11, 12, 13}
    assert disturbance.run_pids(procs, 11, daemon.DAEMONS) == {11, 12, 13, 20, 21, 22}


def test_a_process_outside_the_run_that_burns_cpu_disturbs_it() -> None:
    outsider = subprocess.Popen(["sleep", "30"])  # stands for the harness: the burner is not under it
    burner = subprocess.Popen(_burn(1.5))
    try:
        others = OtherCpu(root=outsider.pid)
        others.start()
        time.sleep(1.5)
        d = others.stop()
    finally:
        for p in (burner, outsider):
            p.kill()
            p.wait()
    assert d.disturbed and d.other_cpu_s >= 1.0, d
    assert d.busiest and d.busiest[0].startswith("python"), d.busiest


def test_a_runs_process_adopted_by_init_stays_the_runs() -> None:
    """A killed Spark Worker leaves its executor to init: it is still the run's. Two samplers
    side by side, one taking another process for the harness: only that one counts it."""
    stranger = subprocess.Popen(["sleep", "30"])
    ours, theirs = OtherCpu(), OtherCpu(root=stranger.pid)
    ours.start()
    theirs.start()
    try:
        # The shell starts the burner and exits after the samplers have seen both: the burner,
        # known as the run's, is orphaned and burns on.
        burn = " ".join(f"'{a}'" for a in _burn(2.0))
        subprocess.run(["sh", "-c", f"{burn} & sleep {1.3 * disturbance.SAMPLE_INTERVAL_S}"], check=True)
        time.sleep(2.5)
        d_ours, d_theirs = ours.stop(), theirs.stop()
    finally:
        stranger.kill()
        stranger.wait()
    assert d_ours.other_cpu_s < 0.5 and d_theirs.other_cpu_s > 1.0, (d_ours, d_theirs)


def test_the_runs_own_short_lived_children_are_not_others() -> None:
    """A child that burns a second and exits between two samples (a `docker inspect`, a
    killed worker) is counted through the time its reaper records for its children. Two
    samplers side by side, one of them taking another process for the harness, see the
    same neighbours: they differ by the child alone."""
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        ours, theirs = OtherCpu(), OtherCpu(root=stranger.pid)
        ours.start()
        theirs.start()
        subprocess.run(_burn(1.0), check=True)
        d_ours, d_theirs = ours.stop(), theirs.stop()
    finally:
        stranger.kill()
        stranger.wait()
    assert d_theirs.other_cpu_s - d_ours.other_cpu_s > 0.8, (d_ours, d_theirs)


def test_the_table_and_its_notes_mark_a_disturbed_row() -> None:
    s = summary(engine("kafka", disturbed_share=0.2), engine("flink"))
    cells = report.rows(s)
    assert cells[0][0] == "kafka (disturbed)" and cells[1][0] == "flink"
    assert any(n.startswith("kafka: disturbed: processes outside the run used 24.0 CPU s, 20.0%") and
               "stress (4242)" in n for n in report.notes(s))


def test_compare_gives_no_timing_verdict_for_a_disturbed_engine(tmp_path: Path) -> None:
    a = repeat.load(write_run(tmp_path / "a", summary(engine(p99=100))))
    b = repeat.load(write_run(tmp_path / "b", summary(engine(p99=50, disturbed_share=0.3))))
    console = Console(record=True, width=200)
    compare.print_comparison(a, b, "a", "b", console)
    out = console.export_text()
    assert "kafka: disturbed by other processes (1 of 1 run(s) in B)" in out
    verdicts = {r.metric: r.verdict for r in compare.rows(a["engines"]["kafka"]["metrics"],
                                                           b["engines"]["kafka"]["metrics"], disturbed=True)}
    assert verdicts["p99 ms"] == compare.NOT_EVIDENCE and verdicts["missing"] == "same"


def test_recommend_takes_no_latency_from_a_disturbed_run() -> None:
    quiet, busy = engine(p99=300), engine(p99=50, disturbed_share=0.2)
    v = recommend.p99_verdict(100, runs((busy, SMOKE_TEXT)))
    assert v.status == recommend.NOT_MEASURED and "disturbed" in v.why and "r0/summary.json" in v.why
    v = recommend.p99_verdict(500, runs((quiet, SMOKE_TEXT), (busy, SMOKE_TEXT)))
    assert v.status == recommend.MEETS and "p99 300 ms" in v.why
    ev = recommend.Evidence(runs=[(Path("r/summary.json"), summary(busy))])
    assert any("disturbed in r/summary.json (other processes used 20% of the machine)" in n
               for n in recommend.notes("kafka", ev))


def test_a_disturbed_sweep_step_is_no_evidence_either_way() -> None:
    steps = [{"engine": "spark", "rate": 250, "sustainable": True, "why_not": ""},
             {"engine": "spark", "rate": 500, "sustainable": False, "why_not": "the driver fell off its schedule",
              "disturbed": True}]
    s = {"workload": "w", "backend": "local", "sustainable": {"spark": steps[0]}, "steps": steps}
    v = recommend.rate_verdict("spark", 500, [(Path("s/sweep.json"), s)])
    assert v.status == recommend.NOT_MEASURED and "1 disturbed step(s) not counted" in v.why
    steps[0].update(p50_ms=900, p99_ms=2000, cpu_s_per_million=10)
    console = Console(record=True, width=250)
    console.print(sweep.table(s))
    assert "spark (disturbed)" in console.export_text()
