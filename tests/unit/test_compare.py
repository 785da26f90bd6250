from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from harness import cli
from harness.present import compare, repeat
from harness.present.repeat import stats
from tests.conftest import SMOKE_TEXT, engine, summary, write_repeat, write_run


def test_single_runs_have_no_noise_estimate() -> None:
    assert compare.verdict("p99_ms", stats([100]), stats([90])) == "B better, noise unknown"
    assert compare.verdict("p99_ms", stats([100]), stats([110])) == "B worse, noise unknown"
    assert compare.verdict("missing", stats([0]), stats([0])) == "same"


def test_overlapping_ranges_are_inside_noise() -> None:
    a = stats([100, 120, 140])
    assert compare.verdict("p99_ms", a, stats([130])) == "inside noise"  # one side's repeats are enough
    assert compare.verdict("p99_ms", a, stats([150, 160, 170])) == "B worse"
    assert compare.verdict("p99_ms", a, stats([99])) == "B better, one side a single run"
    assert compare.verdict("p99_ms", a, stats([60, 80, 99])) == "B better"


def test_more_decisions_per_second_is_better() -> None:
    assert compare.verdict("decisions_per_s", stats([190, 195]), stats([199, 200])) == "B better"
    assert compare.verdict("engine_cpu_s", stats([10, 11]), stats([12, 13])) == "B worse"


def test_rows_show_medians_delta_and_percent() -> None:
    a = repeat.aggregate([("a", summary(engine(p99=200, wrong=None)))])["engines"]["kafka"]["metrics"]
    b = repeat.aggregate([("b1", summary(engine(p99=100))), ("b2", summary(engine(p99=140)))])
    rows = {r.metric: r for r in compare.rows(a, b["engines"]["kafka"]["metrics"])}
    p99 = rows["p99 ms"]
    assert (p99.a, p99.b, p99.delta, p99.percent, p99.verdict) == ("200", "120 (100–140)", "-80.0", "-40.0 %",
                                                                   "B better, one side a single run")
    assert (rows["wrong"].a, rows["wrong"].verdict) == ("—", "—")  # not judged on A's side
    assert (rows["missing"].delta, rows["missing"].percent) == ("0", "—")


def test_warns_about_everything_besides_the_engines_that_differs() -> None:
    a = repeat.aggregate([("a", summary(engine()))])
    same = repeat.aggregate([("b", summary(engine()))])
    assert compare.warnings(a, same) == []
    other = summary(engine(), text=SMOKE_TEXT.replace("rate: 200", "rate: 500"), backend="containers")
    other.metadata.machine["cpus"] = 4
    other.metadata.versions = {"python": "3.12.1", "pinned": {"flink": {"version": "2.2.1"}}}
    warnings = compare.warnings(a, repeat.aggregate([("b", other)]))
    assert warnings[0].startswith("workload text differs") and warnings[0].endswith("in: rate")
    assert warnings[1:] == ["different backends: local vs containers", "different machines: cpus 2 vs 4",
                            "different versions: python 3.11.7 vs 3.12.1, pinned.flink.version — vs 2.2.1"]
    renamed = repeat.aggregate([("b", summary(engine(), name="fraud-default"))])
    assert compare.warnings(a, renamed) == ["different workloads: A ran smoke, B ran fraud-default"]


def test_compare_prints_per_engine_in_both(tmp_path: Path) -> None:
    a = repeat.load(write_run(tmp_path / "a", summary(engine(p99=100), engine("flink:thread:x"))))
    b = repeat.load(write_repeat(tmp_path / "b", [summary(engine(p99=90)), summary(engine(p99=95))]))
    console = Console(record=True, width=200)
    compare.print_comparison(a, b, "A-dir", "B-dir", console)
    out = console.export_text()
    assert "A: A-dir (smoke, one run)" in out and "B: B-dir (smoke, 2 runs)" in out
    assert "flink:thread:x: not compared, not run in B" in out  # and not an emoji
    assert "B better" in out and "noise unknown" not in out


def test_single_runs_are_told_to_repeat(tmp_path: Path) -> None:
    a = repeat.load(write_run(tmp_path / "a", summary(engine(p99=100))))
    console = Console(record=True, width=200)
    compare.print_comparison(a, a, "a", "a", console)
    out = console.export_text()
    assert "no noise estimate" in out and "--repeat N" in out


def test_nothing_in_common_or_not_a_result_is_an_input_error(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "a", summary(engine("kafka")))
    write_run(tmp_path / "b", summary(engine("flink")))
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "nothing to compare" in out and "not a run folder" in out
