"""`showdown scale`: what N nodes means for each engine, the node counts accepted, and the
capacity table and chart from scale.json."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.containers import ContainersBackend
from harness.backends.local import LocalBackend
from harness.cli import _counts
from harness.present import charts
from harness.run import scale
from harness.support.errors import WorkloadError
from tests.conftest import make

ROWS = {"kafka": {"cpus": 1.5}, "flink": {"slots": 3, "container_cpus": 2.0}, "spark": {"worker_cores": 2}}


def test_n_nodes_are_n_processors_taskmanagers_with_their_slots_or_spark_workers() -> None:
    wl = make(engines=ROWS, kafka={"partitions": 8})
    assert scale.node_options(wl, "kafka", 3) == {"cpus": 1.5, "parallelism": 3}
    assert scale.node_options(wl, "flink", 2) == {"slots": 3, "container_cpus": 2.0, "taskmanagers": 2,
                                                  "parallelism": 6}
    assert scale.node_options(wl, "spark", 4) == {"worker_cores": 2, "workers": 4}


def test_more_processors_than_partitions_are_refused_naming_the_partitions() -> None:
    wl = make(engines={"kafka": {}}, kafka={"partitions": 2})
    with pytest.raises(WorkloadError, match="kafka.partitions 2"):
        scale.node_options(wl, "kafka", 3)


def test_each_node_count_is_a_valid_workload_with_its_own_name() -> None:
    wl = make(engines=ROWS, kafka={"partitions": 8})
    text = yaml.safe_dump(wl.model_dump(mode="json"))
    at2, text2 = scale.workload_at(wl, text, ["flink", "spark"], 2)
    assert at2.name == f"{wl.name}-2nodes" and at2.engines["flink"]["taskmanagers"] == 2
    assert at2.engines["kafka"] == {"cpus": 1.5}  # a row not scaled keeps its options
    assert yaml.safe_load(text2)["engines"]["spark"]["workers"] == 2


def test_per_core_figures_only_where_the_backend_bounds_each_worker() -> None:
    wl = make(engines=ROWS)
    assert scale.cores(wl, "kafka", ContainersBackend()) == 1.5
    assert scale.cores(wl, "flink", ContainersBackend()) == 2.0
    assert scale.cores(wl, "kafka", LocalBackend()) is None


@pytest.mark.parametrize("text", ["", "0,1", "1,1", "a", "9", "1,,x"])
def test_node_counts_are_distinct_whole_numbers_from_1_to_8(text: str) -> None:
    with pytest.raises(WorkloadError, match="--nodes"):
        _counts(text)
    assert _counts("4,1,2") == [1, 2, 4]


RESULT: dict[str, Any] = {
    "workload": "w", "backend": "containers", "nodes": [1, 2],
    "rows": {"kafka": {"1": {"rate": 400, "above_rates_tried": False, "cores": 1.0, "per_core": 400.0,
                             "disturbed": False},
                       "2": {"rate": 800, "above_rates_tried": True, "cores": 2.0, "per_core": 400.0,
                             "disturbed": False}},
             "spark": {"1": {"rate": None, "above_rates_tried": False, "cores": 2.0, "per_core": None,
                             "disturbed": False}}},
}


def test_the_table_marks_floors_and_rows_that_sustained_nothing() -> None:
    from rich.console import Console
    console = Console(width=200, record=True)
    console.print(scale.table(RESULT))
    text = console.export_text()
    assert "≥ 800" in text and "400" in text and "none" in text


def test_the_chart_draws_each_engine_that_sustained_a_rate(tmp_path: Path) -> None:
    chart = charts.scale(RESULT, tmp_path)
    assert chart is not None and chart.png.exists() and "<svg" in chart.svg
    nothing = {**RESULT, "rows": {"spark": RESULT["rows"]["spark"]}}
    assert charts.scale(nothing, tmp_path / "none") is None
