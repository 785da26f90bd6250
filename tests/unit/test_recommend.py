from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness import cli
from harness.present import recommend, repeat
from harness.present.recommend import (
    FAILS,
    MEETS,
    NOT_MEASURED,
    EngineRun,
    Evidence,
    Requirements,
)
from harness.results.schema import EngineResult
from tests.conftest import (
    SMOKE_TEXT,
    engine,
    failed,
    fault,
    summary,
    write_repeat,
    write_run,
)


def runs(*entries: tuple[EngineResult, str]) -> list[EngineRun]:
    """EngineRuns of one engine entry each, with the workload text of the run."""
    return [EngineRun(Path(f"r{i}/summary.json"), summary(e, text=text), e) for i, (e, text) in enumerate(entries)]


def sweep(engine_name: str, steps: list[tuple[float, bool]]) -> dict[str, Any]:
    rows = [{"engine": engine_name, "rate": r, "sustainable": ok, "why_not": "" if ok else "p99 9000 ms over"}
            for r, ok in steps]
    best = [s for s in rows if s["sustainable"]]
    return {"workload": "w", "sustainable": {engine_name: best[-1] if best else None}, "steps": rows}


def test_p99_is_the_steady_state_one_and_the_worst_run_decides() -> None:
    fault_run = engine(p99=4000, faults=[fault(pre_p99=120)])  # overall p99 is the fault's spike
    calm = engine(p99=300)
    v = recommend.p99_verdict(500, runs((fault_run, SMOKE_TEXT), (calm, SMOKE_TEXT)))
    assert (v.status, v.why) == (MEETS, "p99 300 ms after warm-up ≤ 500 ms (worst of 2 runs: r1/summary.json)")
    v = recommend.p99_verdict(100, runs((fault_run, SMOKE_TEXT)))
    assert (v.status, v.why) == (FAILS, "p99 120 ms before the fault > 100 ms (r0/summary.json)")
    v = recommend.p99_verdict(100, runs((engine(faults=[fault(pre_p99=None)]), SMOKE_TEXT)))
    assert v.status == NOT_MEASURED
    surge = SMOKE_TEXT + "phases: [{start_s: 10, duration_s: 5, multiplier: 10}]\n"
    assert recommend.p99_verdict(500, runs((engine(p99=9000), surge))).status == NOT_MEASURED


def test_exactly_once_needs_a_fault_into_the_engine_and_no_loss_anywhere() -> None:
    clean_fault = engine(faults=[fault()])
    v = recommend.exactly_once_verdict("kafka", runs((clean_fault, SMOKE_TEXT), (engine(), SMOKE_TEXT)))
    assert v.status == MEETS and "1 with a fault injected into kafka (r0/summary.json)" in v.why
    v = recommend.exactly_once_verdict("kafka", runs((clean_fault, SMOKE_TEXT), (engine(duplicates=313), SMOKE_TEXT)))
    assert (v.status, v.why) == (FAILS, "313 duplicates (r1/summary.json)")
    v = recommend.exactly_once_verdict("kafka", runs((engine(), SMOKE_TEXT)))
    assert v.status == NOT_MEASURED and "only shown across a failure" in v.why
    broker = engine(faults=[fault(target="broker", hit="kafka-1")])
    assert recommend.exactly_once_verdict("kafka", runs((broker, SMOKE_TEXT))).status == NOT_MEASURED
    passthrough = engine("passthrough", wrong=None, faults=[fault()])  # applies no rules: nothing to get wrong
    assert recommend.exactly_once_verdict("passthrough", runs((passthrough, SMOKE_TEXT))).status == MEETS


def test_state_hours_come_from_the_recorded_window() -> None:
    two_h = SMOKE_TEXT.replace("window_s: 3600", "window_s: 7200")
    v = recommend.state_verdict(2, runs((engine(), SMOKE_TEXT), (engine(), two_h)))
    assert (v.status, v.why) == (MEETS, "window_s 7,200 (2 h) in a 30-s run, wrong 0 (r1/summary.json)")
    assert recommend.state_verdict(2, runs((engine(wrong=4), two_h))).status == FAILS
    v = recommend.state_verdict(3, runs((engine(), two_h)))
    assert (v.status, v.why) == (NOT_MEASURED, "the longest window in the given runs is 2 h (r0/summary.json)")
    default_window = "name: x\nseed: 1\nduration_s: 60\nrate: 10\n"  # no rules: the default, 3600 s
    assert recommend.state_verdict(1, runs((engine(), default_window))).status == MEETS
    v = recommend.state_verdict(1, runs((engine("passthrough", wrong=None), SMOKE_TEXT)))
    assert v.status == NOT_MEASURED and "no per-user state" in v.why


def test_rate_comes_from_a_sweep() -> None:
    f = Path("s/sweep.json")
    up_to_1000 = [(f, sweep("kafka", [(500, True), (1000, True), (2000, False)]))]
    v = recommend.rate_verdict("kafka", 800, up_to_1000)
    assert (v.status, v.why) == (MEETS, "sustained 1,000 ev/s ≥ 800 ev/s (s/sweep.json)")
    v = recommend.rate_verdict("kafka", 2000, up_to_1000)
    assert (v.status, v.why) == (FAILS, "2,000 ev/s not sustained: p99 9000 ms over (s/sweep.json)")
    only_low = [(f, sweep("kafka", [(500, True)]))]
    assert recommend.rate_verdict("kafka", 800, only_low).status == NOT_MEASURED  # never tried that high
    assert recommend.rate_verdict("flink", 800, up_to_1000).status == NOT_MEASURED


def test_gather_reads_run_repeat_and_sweep_folders_once_each(tmp_path: Path) -> None:
    rep = write_repeat(tmp_path / "x2", [summary(engine()), summary(engine())])
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text(json.dumps(sweep("flink", [(500, True)])))
    ev = recommend.gather([rep, rep / "run-0", tmp_path / "sw"])
    assert [f.parent.name for f, _ in ev.runs] == ["run-0", "run-1"]  # run-0 given twice counts once
    assert len(ev.sweeps) == 1 and ev.engines() == ["kafka", "flink"]
    with pytest.raises(repeat.ResultsError, match="not a run, repeat or sweep folder"):
        recommend.gather([tmp_path])


def test_judge_lists_every_requirement_and_the_engines_that_meet_all() -> None:
    ev = Evidence(runs=[(Path("a/summary.json"), summary(engine(p99=4000, faults=[fault(pre_p99=120)]),
                                                         engine("flink", p99=13866, faults=[fault(pre_p99=1100)]),
                                                         failed("spark")))],
                  sweeps=[(Path("s/sweep.json"), sweep("kafka", [(1000, True)]))])
    verdicts = recommend.judge(Requirements(500, exactly_once=True, state_hours=1, rate=1000), ev)
    assert [v.status for v in verdicts["kafka"]] == [MEETS] * 4
    assert [v.status for v in verdicts["flink"]] == [FAILS, MEETS, MEETS, NOT_MEASURED]
    assert [v.status for v in verdicts["spark"]] == [NOT_MEASURED] * 4
    assert recommend.notes("spark", ev) == ["failed in a/summary.json: not counted"]
    console = Console(record=True, width=200)
    recommend.print_recommendation(Requirements(500), ev, console)
    out = console.export_text()
    assert "p99 1,100 ms before the fault > 500 ms (a/summary.json)" in out
    assert out.rstrip().endswith("Meet every requirement: kafka")


def test_notes_name_options_that_differ_between_runs() -> None:
    ev = Evidence(runs=[(Path(f"{m}/summary.json"), summary(engine("flink", options={"execution_mode": m})))
                        for m in ("thread", "process")])
    assert recommend.notes("flink", ev) == ["ran with different execution_mode across the given runs: the "
                                            "verdicts pool them"]


def test_cli_takes_the_requirements_and_rejects_bad_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "r", summary(engine(p99=100, faults=[fault()])))
    assert cli.main(["recommend", "--p99-ms", "500", "--exactly-once", "--state-hours", "1", str(run)]) == 0
    assert "Meet every requirement: kafka" in capsys.readouterr().out
    for bad in (["--p99-ms", "0", str(run)], ["--p99-ms", "fast", str(run)], [str(run)]):
        with pytest.raises(SystemExit) as e:
            cli.main(["recommend", *bad])
        assert e.value.code == 2
    assert cli.main(["recommend", "--p99-ms", "500", str(tmp_path / "nothing")]) == 2


def test_check_passes_only_when_every_named_engine_meets_every_requirement(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "r", summary(engine(p99=100, faults=[fault(pre_p99=90)]),
                                            engine("flink", p99=900, faults=[fault(pre_p99=800)])))

    def check(*args: str) -> tuple[int, str]:
        code = cli.main(["check", *args, str(run)])
        return code, capsys.readouterr().out

    code, out = check("--p99-ms", "500", "--exactly-once", "--engine", "kafka")
    assert code == 0 and "check passed: kafka" in out and "flink" not in out
    code, out = check("--p99-ms", "500", "--exactly-once")  # every engine in the results
    assert code == 1 and "check failed: flink" in out and "p99 800 ms before the fault > 500 ms" in out
    code, out = check("--exactly-once", "--engine", "flink")  # latency not asked: exactly-once alone
    assert code == 0 and "p99" not in out
    code, out = check("--p99-ms", "500", "--rate", "1000", "--engine", "kafka")  # no sweep: not measured
    assert code == 1 and "not measured" in out
    code, out = check("--p99-ms", "500", "--engine", "kafka", "--engine", "spark")
    assert code == 1 and "not in the given results, which hold kafka, flink" in out
    assert cli.main(["check", str(run)]) == 2, "no requirement stated"
    assert "state at least one requirement" in capsys.readouterr().out
    assert cli.main(["check", "--exactly-once", str(tmp_path / "nothing")]) == 2
