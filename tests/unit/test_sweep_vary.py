"""`showdown sweep --vary ROW.OPTION=V1,V2,...`: one line per value of one row's option."""
from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from harness.present import charts
from harness.run import sweep
from harness.run.sweep import Line
from harness.support.errors import WorkloadError
from tests.conftest import make


def workload():  # type: ignore[no-untyped-def]
    return make(engines={"flink": {"parallelism": 1}, "kafka": {}},
                sweep={"rates": [500, 1000], "duration_s": 30, "warmup_s": 5})


def test_each_value_is_a_line_of_the_row_read_as_yaml_and_checked_as_its_option() -> None:
    lines = sweep.vary(workload(), "flink.checkpoint_interval_ms=100, 500,1000")
    assert lines == [Line("flink", "checkpoint_interval_ms", v) for v in (100, 500, 1000)]
    assert [line.label for line in lines][0] == "flink checkpoint_interval_ms=100"
    assert sweep.vary(workload(), "flink.delivery=at_least_once")[0].value == "at_least_once"


@pytest.mark.parametrize("spec,says", [
    ("flink=100", "expected ROW.OPTION=V1,V2"),
    ("flink.checkpoint_interval_ms=", "expected ROW.OPTION=V1,V2"),
    ("spark.trigger_interval_ms=100", "spark is not one of the workload's engines (flink, kafka)"),
    ("flink.checkpoint_every=100", "flink has no option checkpoint_every; its options: "),
    ("flink.checkpoint_interval_ms=fast", "--vary flink.checkpoint_interval_ms=fast: "),
    ("flink.delivery=twice", "--vary flink.delivery=twice: "),
    ("flink.checkpoint_interval_ms=100,100", "100 is given twice"),
])
def test_a_bad_vary_names_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(WorkloadError, match="^.*" + says.replace("(", r"\(").replace(")", r"\)")):
        sweep.vary(workload(), spec)


def test_a_steps_workload_sets_the_lines_value_on_its_row_only() -> None:
    wl = workload()
    changes = sweep.step_changes(wl, 500, Line("flink", "checkpoint_interval_ms", 250))
    step = wl.model_copy(update=changes)
    assert step.engines["flink"] == {"parallelism": 1, "checkpoint_interval_ms": 250}
    assert step.engines["kafka"] == {} and step.rate == 500 and step.faults == []
    assert step.name == "t-500-checkpoint-interval-ms-250", "each value's run folders apart"
    assert "engines" not in sweep.step_changes(wl, 500, Line("flink"))
    assert sweep.step_changes(wl, 500, Line("flink"))["name"] == "t-500"


def test_a_varied_sweep_shows_each_line_at_the_first_rate_and_its_ceiling() -> None:
    steps = [{"engine": f"flink checkpoint_interval_ms={v}", "rate": r, "sustainable": ok, "why_not": why,
              "p50_ms": p50, "p99_ms": p50 * 2, "cpu_s_per_million": 9.0, "option": "checkpoint_interval_ms",
              "value": v}
             for v, r, ok, why, p50 in [(100, 500, True, "", 150.0), (100, 1000, False, "p99 over", 9000.0),
                                        (1000, 500, True, "", 900.0), (1000, 1000, True, "", 950.0)]]
    result = {"workload": "w", "backend": "local", "criteria": {"rates": [500, 1000]},
              "vary": {"row": "flink", "option": "checkpoint_interval_ms", "values": [100, 1000]},
              "sustainable": {"flink checkpoint_interval_ms=100": steps[0],
                              "flink checkpoint_interval_ms=1000": steps[3]}, "steps": steps}
    console = Console(record=True, width=250)
    console.print(sweep.table(result))
    out = console.export_text()
    assert "p50 ms at 500" in out and "p99 ms at 500" in out
    row_100 = next(line for line in out.splitlines() if "interval_ms=100 " in line)
    assert "150" in row_100 and "300" in row_100 and "1,000: p99 over" in row_100
    row_1000 = next(line for line in out.splitlines() if "interval_ms=1000" in line)
    assert "≥ 1,000" in row_1000 and "900" in row_1000


def test_the_chart_draws_the_varied_row_against_the_value_and_the_other_rows_as_its_floor(tmp_path: Path) -> None:
    def step(engine: str, value: object, p50: float) -> dict[str, object]:
        varied = value is not None
        return {"engine": engine, "rate": 500, "sustainable": True, "why_not": "", "p50_ms": p50, "p99_ms": p50 * 2,
                "option": "checkpoint_interval_ms" if varied else None, "value": value}

    steps = [step("flink:at-least-once", None, 90.0), *(step(f"flink checkpoint_interval_ms={v}", v, v * 1.5)
                                                       for v in (1000, 100, 500))]
    result = {"criteria": {"rates": [500]}, "steps": steps,
              "vary": {"row": "flink", "option": "checkpoint_interval_ms", "values": [1000, 100, 500]}}
    chart = charts.vary(result, tmp_path)
    assert chart is not None and chart.png == tmp_path / "vary.png" and chart.png.stat().st_size > 0
    assert "flink:at-least-once p50" in chart.svg and "checkpoint_interval_ms" in chart.svg
    modes = {**result, "steps": [{**s, "value": "thread"} for s in steps[1:]]}
    assert charts.vary(modes, tmp_path) is None, "a mode has no order to draw along"
    assert charts.vary({k: v for k, v in result.items() if k != "vary"}, tmp_path) is None
