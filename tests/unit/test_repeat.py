from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.present import repeat
from harness.results.schema import WindowsResult
from harness.results.store import RunDir
from harness.support.paths import WORKLOADS
from tests.conftest import engine, failed, fault, summary, write_repeat, write_run


def test_engine_metrics_carry_every_figure_with_its_unit() -> None:
    m = repeat.engine_metrics(engine(p99=100, faults=[fault(gap=0.3, recovery=None)], cpu=2.5))
    assert list(m) == ["p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms", "decisions_per_s", "missing",
                       "duplicates", "wrong", "fault1_output_gap_s", "fault1_recovery_time_s", "engine_cpu_s"]
    assert (m["p99_ms"], m["fault1_output_gap_s"], m["fault1_recovery_time_s"], m["engine_cpu_s"]) == \
        (100, 0.3, None, 2.5)


def test_aggregate_gives_median_min_max_and_the_values_in_run_order() -> None:
    runs = [("r1", summary(engine(p99=300))), ("r2", summary(engine(p99=100))), ("r3", summary(failed("kafka"))),
            ("r4", summary(engine(p99=200)))]
    result = repeat.aggregate(runs, planned=5)
    assert (result["runs"], result["repeat"], result["workload_name"]) == (["r1", "r2", "r3", "r4"], 5, "smoke")
    k = result["engines"]["kafka"]
    assert k["status"] == ["ok", "ok", "failed", "ok"]
    assert k["metrics"]["p99_ms"] == {"median": 200, "min": 100, "max": 300, "values": [300, 100, None, 200]}
    assert result["metadata"]["backend"] == "local"


def test_a_figure_some_runs_lack_is_left_out_and_counted() -> None:
    runs = [(f"r{i}", summary(engine(faults=[fault(recovery=r)]))) for i, r in enumerate([5.0, None, 7.0])]
    s = repeat.aggregate(runs)["engines"]["kafka"]["metrics"]["fault1_recovery_time_s"]
    assert (s["median"], s["min"], s["max"]) == (6.0, 5.0, 7.0)
    assert repeat.cell("fault1_recovery_time_s", s) == "6.0 (5.0–7.0) [2 of 3]"
    assert repeat.cell("p99_ms", repeat.stats([1234.5])) == "1,234"  # one run: the figure alone
    assert repeat.cell("wrong", repeat.stats([None, None])) == "—"


def test_formats_follow_the_unit() -> None:
    assert [repeat.fmt("p50_ms", 70.17), repeat.fmt("p99_ms", 4014.6), repeat.fmt("fault1_output_gap_s", 0.133),
            repeat.fmt("engine_cpu_s", 16.94), repeat.fmt("decisions_per_s", 199.8), repeat.fmt("missing", 313),
            repeat.fmt("decisions_per_s", 199.0), repeat.fmt("duplicates", 156.5), repeat.fmt("wrong", None)] == \
        ["70.2", "4,015", "0.13", "16.9", "199.8", "313", "199.0", "156.5", "—"]


def test_load_reads_a_run_or_a_repeat_folder_and_names_anything_else(tmp_path: Path) -> None:
    run = write_run(tmp_path / "one", summary(engine(p99=120)))
    single = repeat.load(run / "summary.json")
    assert single["runs"] == ["one"] and single["engines"]["kafka"]["metrics"]["p99_ms"]["values"] == [120]
    rep = write_repeat(tmp_path / "x2", [summary(engine(p99=1)), summary(engine(p99=3))])
    assert repeat.load(rep)["engines"]["kafka"]["metrics"]["p99_ms"]["median"] == 2
    assert [s.engines[0].measured().latency_ms.p99 for _, s in repeat.summaries(rep) or []] == [1, 3]
    assert repeat.summaries(tmp_path) is None
    with pytest.raises(repeat.ResultsError, match="not a run folder") as e:
        repeat.load(tmp_path)
    assert e.value.exit_code == 2
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{")
    with pytest.raises(repeat.ResultsError, match="not valid JSON"):
        repeat.load(tmp_path / "broken")


def test_table_has_a_column_per_engine_and_the_runs_that_succeeded() -> None:
    result = repeat.aggregate([("r1", summary(engine(), engine("flink:thread", p99=900))),
                               ("r2", summary(engine(), engine("flink:thread", p99=1100)))])
    t = repeat.table(result)
    assert [str(c.header) for c in t.columns] == ["metric", "kafka", "flink:thread"]
    assert list(t.columns[2].cells)[:4] == ["2 of 2", "500 (450–550)", "800 (720–880)", "1,000 (900–1,100)"]


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_repeat_must_be_a_positive_count(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--repeat", value])
    assert e.value.code == 2
    assert "--repeat" in capsys.readouterr().err


def test_run_repeat_writes_one_folder_with_the_runs_and_repeat_json(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.run import runner

    p99s = iter([100.0, 300.0, 200.0])
    backends: list[Any] = []

    def fake_run(wl: Any, path: str, text: str, base: Path, backend: Any, engines: Any, keep: bool) -> RunDir:
        backends.append(backend)
        s = summary(engine(p99=next(p99s)))
        run_dir = RunDir(base, wl.name, s.metadata)
        run_dir.add(s.engines[0])
        run_dir.finish("complete")
        return run_dir

    monkeypatch.setattr(runner, "run", fake_run)
    code = cli.main(["run", "-w", str(WORKLOADS / "smoke.yaml"), "--backend", "local", "--repeat", "3",
                     "--results", str(tmp_path)])
    assert code == 0
    assert backends[0].name == "local" and all(b is backends[0] for b in backends), "chosen once for the set"
    [out] = tmp_path.iterdir()
    assert out.name.endswith("-smoke-x3")
    result = json.loads((out / "repeat.json").read_text())
    assert len(result["runs"]) == 3 and all((out / r).is_dir() for r in result["runs"])
    assert result["engines"]["kafka"]["metrics"]["p99_ms"]["median"] == 200


def test_a_run_with_windows_also_compares_the_windows_figures() -> None:
    w = WindowsResult(required=50, received=50, missing=1, duplicates=0, wrong=2, unexpected=1, optional_received=3,
                      emission_delay_ms={"p50": 900.0, "p99": 1500.0}, exactly_once=False)
    m = repeat.engine_metrics(engine(windows=w))
    assert (m["windows_missing"], m["windows_duplicates"], m["windows_wrong"], m["windows_delay_p99_ms"]) == \
        (1, 0, 3, 1500.0)
    assert "windows_missing" not in repeat.engine_metrics(engine())
