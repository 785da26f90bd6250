from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.support.errors import WorkloadError
from harness.support.paths import ROOT, WORKLOADS
from harness.workload import files as workload
from tests.conftest import make


@pytest.mark.parametrize("path", sorted(WORKLOADS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_workloads_are_valid(path: Path) -> None:
    wl, text = workload.load(path)
    assert wl.name == path.stem
    assert text.startswith("#")


def test_defaults_follow_the_spec() -> None:
    r = make().rules
    assert (r.window_s, r.spend_limit_cents, r.velocity_window_s, r.velocity_limit, r.allowed_lateness_s) == \
        (3600, 500_000, 60, 8, 10)
    assert make().kafka.partitions == 4


def _error(**overrides: object) -> str:
    with pytest.raises(WorkloadError) as e:
        make(**overrides)
    return str(e.value)


def test_unknown_field_names_the_allowed_fields() -> None:
    msg = _error(rules={"windw_s": 5})
    assert "rules.windw_s: unknown field" in msg
    assert "window_s" in msg and "allowed_lateness_s" in msg


def test_bad_value_names_field_value_and_bound() -> None:
    msg = _error(rate=-5)
    assert "rate:" in msg and "greater than 0" in msg and "-5" in msg


def test_bad_choice_names_allowed_values() -> None:
    msg = _error(faults=[{"at_s": 3, "target": "moon"}])
    assert "faults.0.target" in msg and "'worker'" in msg and "moon" in msg
    assert "kafka.brokers" in _error(kafka={"brokers": 2})


def test_cross_field_rules() -> None:
    assert "warmup_s" in _error(warmup_s=20)
    assert "overlap" in _error(phases=[{"start_s": 1, "duration_s": 4, "multiplier": 2},
                                       {"start_s": 3, "duration_s": 2, "multiplier": 2}])
    assert "after duration_s" in _error(phases=[{"start_s": 8, "duration_s": 5, "multiplier": 2}])
    assert "faults.0.at_s" in _error(faults=[{"at_s": 10}])
    assert "beyond_lateness" in _error(out_of_order={"fraction": 0.1, "max_delay_ms": 20_000})


def test_engines_and_their_options_are_checked() -> None:
    msg = _error(engines={"storm": {}})
    assert "engines.storm" in msg and "kafka" in msg and "passthrough" in msg
    msg = _error(engines={"kafka": {"paralelism": 2}})
    assert "paralelism" in msg and "parallelism" in msg
    assert "engines.kafka" in _error(engines={"kafka": {"parallelism": 0}})


def test_not_a_mapping() -> None:
    with pytest.raises(WorkloadError, match="YAML mapping"):
        workload.parse([1, 2])


def test_bad_file_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseed: 1\nduration_s: 10\nrate: fast\n")
    out = subprocess.run([sys.executable, "-m", "harness.cli", "run", "-w", str(bad), "--results",
                          str(tmp_path / "results")], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "rate" in out.stdout and "fast" in out.stdout
    assert not (tmp_path / "results").exists()


def test_an_engine_may_run_twice_under_labels() -> None:
    wl = make(engines={"flink": {}, "flink:at-least-once": {"delivery": "at_least_once"}})
    assert list(wl.engines) == ["flink", "flink:at-least-once"]
    msg = _error(engines={"flink:alo": {"delivery": "maybe"}})
    assert "engines.flink:alo" in msg and "exactly_once" in msg and "at_least_once" in msg


def test_fault_action_and_target_must_fit() -> None:
    assert "takes target 'job'" in _error(faults=[{"at_s": 3, "action": "cancel-resubmit"}])
    wl = make(engines={"flink": {}}, faults=[{"at_s": 3, "action": "cancel-resubmit", "target": "job"}])
    assert wl.faults[0].kind == "cancel-resubmit:job"


def test_every_engine_must_take_every_fault() -> None:
    msg = _error(engines={"spark": {}, "kafka": {}}, faults=[{"at_s": 3, "action": "kill", "target": "driver"}])
    assert "engines.kafka" in msg and "kill:driver" in msg and "kill:worker" in msg
    assert make(engines={"spark": {}}, faults=[{"at_s": 3, "target": "executor"}]).faults[0].kind == "kill:executor"


def test_a_broker_kill_fits_every_engine() -> None:
    wl = make(engines={"kafka": {}, "passthrough": {}, "flink": {}, "spark": {}},
              faults=[{"at_s": 3, "action": "kill", "target": "broker", "instance": 0}])
    assert wl.faults[0].kind == "kill:broker"
    assert "takes target 'job'" in _error(faults=[{"at_s": 3, "action": "cancel-resubmit", "target": "broker"}])


def test_sweep_rates_must_ascend() -> None:
    assert make(sweep={"rates": [100, 200]}).sweep.rates == [100, 200]
    assert "ascending" in _error(sweep={"rates": [200, 100]})


def test_the_steady_load_ends_at_the_first_surge_or_fault() -> None:
    assert make(duration_s=100).steady_until_s() == 100
    wl = make(duration_s=100, phases=[{"start_s": 60, "duration_s": 10, "multiplier": 2}],
              faults=[{"at_s": 40}], engines={"kafka": {}})
    assert wl.steady_until_s() == 40


@pytest.mark.parametrize("label", ["passthrough:../../../../tmp/ESCAPED", "kafka:a/b", "flink:", "flink:x y",
                                   "Kafka", "spark:" + "x" * 41, "kafka:\u00e9t\u00e9", "kafka:-x"])
def test_an_engine_label_is_one_safe_name(label: str) -> None:
    msg = _error(engines={label: {}})
    assert f"engines.{label}: not a valid engine label" in msg


def test_labels_that_would_share_a_topic_or_container_name_are_refused() -> None:
    assert "too alike to spark:a_b" in _error(engines={"spark:a_b": {}, "spark:a-b": {}})


def test_safe_name_spells_a_label_for_topics_and_containers() -> None:
    from harness.support.names import safe_name

    assert safe_name("flink:at-least-once") == "flink-at-least-once"
    assert safe_name("spark:Idem_Potent") == "spark-idem-potent"
