from __future__ import annotations

from harness.present import charts
from tests.conftest import SMOKE_TEXT, engine, failed, fault, summary

WITH_FAULT = SMOKE_TEXT + "engines: {kafka: {}, flink: {}}\nfaults: [{at_s: 8, action: kill, target: worker}]\n"


def test_fault_markers_stand_at_the_injected_time_not_the_planned_one() -> None:
    late = fault().model_copy(update={"at_s": 9.4})  # the nemesis hit 1.4 s after its plan
    later = fault().model_copy(update={"at_s": 9.6})
    m = charts.markers(summary(engine(faults=[late]), engine("flink", faults=[later]), text=WITH_FAULT))
    assert m.events == [(9.5, "kill worker")]


def test_a_fault_no_engine_recorded_is_marked_where_it_was_planned() -> None:
    m = charts.markers(summary(failed("kafka"), text=WITH_FAULT))
    assert m.events == [(8.0, "kill worker")]


def test_a_fault_whose_injection_failed_does_not_move_the_marker() -> None:
    missed = fault().model_copy(update={"at_s": 30.0, "target": "", "error": "no executor to kill"})
    m = charts.markers(summary(engine(faults=[missed]), text=WITH_FAULT))
    assert m.events == [(8.0, "kill worker")]
