from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.load.generator import schedule
from harness.support.errors import WorkloadError
from harness.support.paths import ROOT, WORKLOADS
from harness.workload import files as workload
from harness.workload import size
from harness.workload.schema import Workload
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
                                   "Kafka", "spark:" + "x" * 41, "kafka:\u00e9t\u00e9", "kafka:-x",
                                   "kafka:x\n"])
def test_an_engine_label_is_one_safe_name(label: str) -> None:
    msg = _error(engines={label: {}})
    assert f"engines.{label}: not a valid engine label" in msg


def test_labels_that_would_share_a_topic_or_container_name_are_refused() -> None:
    assert "too alike to spark:a_b" in _error(engines={"spark:a_b": {}, "spark:a-b": {}})


def test_safe_name_spells_a_label_for_topics_and_containers() -> None:
    from harness.support.names import safe_name

    assert safe_name("flink:at-least-once") == "flink-at-least-once"
    assert safe_name("spark:Idem_Potent") == "spark-idem-potent"


# Part 5 of the hardening: what validation used to accept and a run then died of, or got wrong.

def _load_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(WorkloadError) as e:
        workload.load(path)
    return str(e.value)


HEAD = "name: t\nseed: 1\nduration_s: 10\nwarmup_s: 1\n"


def test_a_workload_too_big_for_memory_is_refused() -> None:
    msg = _error(rate=1_000_000, duration_s=86_400)
    assert "rate: this workload needs about" in msg and "GiB in memory (86,400,000,000 events)" in msg
    assert "the limit here is" in msg and "lower rate or duration_s" in msg
    burst = {"per_minute": 600, "events": 1000, "amount_cents": 1, "spacing_ms": 1}
    assert "lower the bursts' per_minute or events" in _error(rate=1, duration_s=86_400, fraud={"spend_bursts": burst})
    assert "sweep.rates: its step at 1,000,000 ev/s needs" in _error(sweep={"rates": [1_000_000], "duration_s": 3600})


def test_the_memory_estimate_counts_the_real_schedule_and_fits_a_30_minute_run() -> None:
    wl = make(duration_s=100, rate=100, phases=[{"start_s": 10, "duration_s": 10, "multiplier": 10}])
    assert size.need(wl, wl.rate, wl.duration_s, wl.phases).events == len(schedule(wl)) == 19_000
    # Validated without this machine's limit: 3,000 ev/s for 30 min fits a 24 GiB machine.
    wl = Workload.model_validate({"name": "t", "seed": 1, "duration_s": 1800, "rate": 3000, "users": 100_000})
    assert size.need(wl, wl.rate, wl.duration_s, wl.phases).bytes < 12 * size.GIB


@pytest.mark.parametrize("field", ["users", "merchants"])
def test_users_and_merchants_are_bounded(field: str) -> None:
    assert f"{field}: Input should be less than or equal to 10000000" in _error(**{field: 10**12})


def test_an_over_long_name_is_refused_with_what_is_allowed() -> None:
    msg = _error(name="x" * 300)
    assert "name: 1 to 64 letters, digits" in msg and "(300 characters)" in msg and "x" * 100 not in msg


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    # 9^6 strings: small enough for a failing test not to take the machine's memory.
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 6)]
    msg = _load_error(tmp_path, HEAD + "rate: 100\n" + "\n".join(levels) + "\ndescription: *a5\n")
    assert "a0 (line 6): YAML anchors and aliases" in msg


@pytest.mark.parametrize(("text", "expected"), [
    ("rate: &r 100\nsweep: {rates: [*r]}\n", "rate (line 5): YAML anchors and aliases (&name, *name) are not allowed"),
    ("rate: 100\nkafka: {partitions: 2}\nrate: 200\n", "rate: given twice, on line 5 and line 7"),
    ("rate: 100\nkafka:\n  brokers: 1\n  brokers: 3\n", "brokers: given twice, on line 7 and line 8"),
    ("rate: 100\nkafka: {<<: {brokers: 3}}\n", "line 6: merge keys (<<) are not allowed"),
    ("rate: 100\ndescription: " + "[" * 5000 + "\n", "line 6: nested more than 20 levels deep"),
    ("rate: 100\nusers: " + "9" * 5000 + "\n", "line 6: a number of 5,000 digits"),
    ("rate: 100\nfaults: [{at_s: 1, restart_after_s: .inf}]\n", "faults.0.restart_after_s: Input should be a finite"),
    ('rate: "1e3"\n', "rate: Input should be a valid number (got '1e3')"),
    ("rate: 100\n#" + "x" * 1_000_000 + "\n", "more than 1,000,000 characters"),
])
def test_the_loader_refuses_what_a_workload_file_has_no_use_for(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _load_error(tmp_path, HEAD + text)


def test_a_file_that_is_not_utf8_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(WorkloadError, match="not UTF-8 text"):
        workload.load(path)


def test_numbers_in_scientific_notation_stay_numbers(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(HEAD + "rate: 1e3\nsweep: {rates: [1.5e2, 2E+3]}\n")
    wl, _ = workload.load(path)
    assert wl.rate == 1000.0 and wl.sweep.rates == [150.0, 2000.0]


@pytest.mark.parametrize(("kafka", "expected"), [
    ({"decisions_topic": "transactions"}, "transactions_topic ('transactions') and decisions_topic ('transactions')"),
    ({"windows_topic": "decisions"}, "decisions_topic ('decisions') and windows_topic ('decisions')"),
    ({"windows_topic": "transactions-state-changelog"}, "and the changelog of the kafka engine's state"),
    ({"transactions_topic": "a.b", "decisions_topic": "a_b"}, "are one Kafka topic (it takes '.' and '_' alike)"),
    ({"transactions_topic": "pay ments"}, "kafka.transactions_topic: 1 to 100 letters, digits, '.', '_' or '-'"),
    ({"decisions_topic": "__consumer_offsets"}, "kafka.decisions_topic: 1 to 100 letters"),
    ({"windows_topic": "w" * 101}, "kafka.windows_topic: 1 to 100 letters"),
])
def test_topics_are_valid_kafka_names_and_each_its_own(kafka: dict[str, str], expected: str) -> None:
    assert expected in _error(kafka=kafka)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"engines": {"kafka": {}}, "faults": [{"at_s": 3, "instance": 2}]},
     "faults.0.instance: engines.kafka runs 2 processors (parallelism: 2), so kill:worker takes instance 0 to 1 (got 2)"),
    ({"engines": {"flink": {"taskmanagers": 2}, "flink:b": {}}, "faults": [{"at_s": 3, "instance": 1}]},
     "faults.0.instance: engines.flink:b runs 1 TaskManager (taskmanagers: 1), so kill:worker takes instance 0"),
    ({"engines": {"spark": {}}, "faults": [{"at_s": 3, "target": "executor", "instance": 1}]},
     "faults.0.instance: engines.spark runs 1 Worker (workers: 1), so kill:executor takes instance 0 (got 1)"),
    ({"faults": [{"at_s": 3, "target": "broker", "instance": 1}]},
     "faults.0.instance: kafka.brokers is 1, so kill:broker takes instance 0 (got 1)"),
    ({"engines": {"spark": {}}, "faults": [{"at_s": 3, "target": "driver", "instance": 1}]},
     "faults.0: instance must be 0: there is one driver to hit (got 1)"),
])
def test_a_fault_instance_must_exist(overrides: dict[str, object], expected: str) -> None:
    assert expected in _error(**overrides)


def test_a_fault_instance_within_the_workers_is_taken() -> None:
    wl = make(kafka={"brokers": 3}, engines={"flink": {"taskmanagers": 2}},
              faults=[{"at_s": 3, "instance": 1}, {"at_s": 4, "target": "broker", "instance": 2}])
    assert [f.instance for f in wl.faults] == [1, 2]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"engines": {"kafka": {}}, "faults": [{"at_s": 3, "restart_after_s": math.inf}]}, "faults.0.restart_after_s"),
    ({"drain_timeout_s": math.inf}, "drain_timeout_s"),
    ({"driver": {"max_lag_ms": math.inf}}, "driver.max_lag_ms"),
    ({"sweep": {"p99_limit_ms": math.inf}}, "sweep.p99_limit_ms"),
    ({"engines": {"kafka": {"cpus": math.nan}}}, "engines.kafka: cpus"),
])
def test_no_float_may_be_infinite_or_nan(overrides: dict[str, object], field: str) -> None:
    assert f"{field}: Input should be a finite number" in _error(**overrides)


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"rate": True}, "rate: Input should be a valid number (got True)"),
    ({"seed": "5"}, "seed: Input should be a valid integer (got '5')"),
    ({"kafka": {"brokers": True}}, "kafka.brokers: a number, not true or false"),
    ({"sweep": {"rates": [100, True]}}, "sweep.rates.1: Input should be a valid number"),
    ({"engines": {"kafka": {"parallelism": True}}}, "engines.kafka: parallelism: Input should be a valid integer"),
])
def test_a_number_is_neither_a_bool_nor_text(overrides: dict[str, object], expected: str) -> None:
    assert expected in _error(**overrides)


def test_sizes_and_times_are_bounded() -> None:
    assert "at most 100; raise slide_s" in _error(windows={"size_s": 3600, "slide_s": 1},
                                                  beyond_lateness={"fraction": 0})
    assert "amount.max_cents: Input should be less than or equal to" in _error(amount={"max_cents": 10**19})
    assert "rules.allowed_lateness_s: Input should be less than or equal to 86400" in \
        _error(rules={"allowed_lateness_s": 10**12})
    assert "event_time_start: Input should have timezone info" in _error(event_time_start=datetime(2026, 1, 1))
    assert make(event_time_start=datetime(2026, 1, 1, tzinfo=UTC)).event_time_start_ms == 1_767_225_600_000
