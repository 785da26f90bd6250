"""The cluster file (--cluster): validated like a workload, checked against the workload's
rows and faults before anything is reached, secrets expanded only where they are used and
never recorded."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends import choice, cluster_file, existing
from harness.backends.existing import ClusterBackend, ExistingKafka
from harness.support.errors import ClusterError, WorkloadError
from harness.support.paths import PIPELINES, ROOT
from harness.workload.schema import KafkaSettings
from tests.conftest import make

MINIMAL = {"name": "staging", "kafka": {"bootstrap": "127.0.0.1:9094"}}
FULL: dict[str, Any] = {
    "name": "staging", "prefix": "poc",
    "kafka": {"bootstrap": "kafka.example:9094", "engine_bootstrap": "kafka-0.kafka:9092",
              "client": {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                         "sasl.username": "showdown", "sasl.password": "${SHOWDOWN_KAFKA_PW}",
                         "enable.ssl.certificate.verification": False, "socket.timeout.ms": 30000},
              "engine_client": {"security.protocol": "SASL_SSL", "sasl.password": "${ENGINE_PW}"},
              "replication": 3,
              "faults": {"broker": {"kill": "kubectl delete pod kafka-{instance} --grace-period=0 --force"}},
              "cpu": "echo 12.5"},
    "flink": {"rest": "http://flink:8081", "python": "/opt/venv/bin/python", "checkpoints": "s3://poc/chk",
              "faults": {"worker": {"kill": "kubectl delete pod tm-{instance}"}}},
    "spark": {"master": "spark://spark-master:7077", "python": "/opt/venv/bin/python",
              "conf": {"spark.executor.memory": "2g"}},
}


def write(tmp_path: Path, data: Any, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_a_full_file_loads_and_the_minimal_one_takes_the_defaults(tmp_path: Path) -> None:
    full, _ = cluster_file.load(write(tmp_path, FULL))
    assert (full.prefix, full.kafka.replication, full.processors.run) == ("poc", 3, "local")
    minimal, _ = cluster_file.load(write(tmp_path, MINIMAL, "min.yaml"))
    assert (minimal.prefix, minimal.kafka.replication, minimal.flink, minimal.kafka.faults) == \
        ("showdown", 1, None, {})


@pytest.mark.parametrize("change, named", [
    ({"kafka": None}, "kafka"),
    ({"kafka": {"bootstrap": "x:1", "brokers": 3}}, "kafka.brokers: unknown field"),
    ({"prefix": "Has Spaces"}, "prefix: 1 to 32 lower-case"),
    ({"kafka": {"bootstrap": "x:1", "replication": 0}}, "kafka.replication"),
    ({"kafka": {"bootstrap": "x:1", "faults": {"broker": {"restart": "docker start k"}}}},
     "kafka.faults.broker.kill: required field is missing"),
    ({"kafka": {"bootstrap": "x:1", "faults": {"worker": {"kill": "x"}}}}, "kafka.faults.worker"),
    ({"kafka": {"bootstrap": "x:1", "faults": {"broker": {"kill": "  "}}}}, "an empty command"),
    ({"kafka": {"bootstrap": "x:1", "client": {"group.id": "mine"}}}, "group.id: set by the harness"),
    ({"kafka": {"bootstrap": "x:1", "client": {"sasl.username": ["a"]}}}, "kafka.client.sasl.username"),
    ({"spark": {"master": "spark://m:7077"}}, "spark.python: required field is missing"),
    ({"flink": {"rest": "https://f:8081/ui", "python": "p"}}, "flink.rest"),
])
def test_a_bad_file_names_the_field_and_exits_2(tmp_path: Path, change: dict[str, Any], named: str) -> None:
    with pytest.raises(WorkloadError) as e:
        cluster_file.load(write(tmp_path, {**MINIMAL, **change}))
    assert named in str(e.value) and str(tmp_path) in str(e.value)
    assert e.value.exit_code == 2


@pytest.mark.parametrize("text, named", [("[1, 2]", "a YAML mapping"), ("a: &x 1\nb: *x\n", "anchors"),
                                         ("name: a\nname: b\n", "given twice"), ("{", "not valid YAML")])
def test_what_is_not_a_cluster_file_is_refused_with_its_reason(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(WorkloadError, match=named):
        cluster_file.load(write(tmp_path, text))


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="cannot read cluster file"):
        cluster_file.load(tmp_path / "nope.yaml")


def test_the_harness_expands_its_own_secrets_and_leaves_the_engines_theirs(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("SHOWDOWN_KAFKA_PW", "hunter2")
    monkeypatch.setenv("ENGINE_PW", "engine-secret")
    f, _ = cluster_file.load(write(tmp_path, FULL))
    mine = cluster_file.harness_client(f.kafka)
    assert mine["sasl.password"] == "hunter2" and mine["bootstrap.servers"] == "kafka.example:9094"
    # librdkafka takes text: YAML's booleans and numbers are written as it spells them.
    assert (mine["enable.ssl.certificate.verification"], mine["socket.timeout.ms"]) == ("false", "30000")
    assert cluster_file.engine_client(f.kafka) == {"security.protocol": "SASL_SSL", "sasl.password": "${ENGINE_PW}"}


def test_the_engines_take_the_harness_settings_when_the_file_gives_none_of_their_own(tmp_path: Path) -> None:
    f, _ = cluster_file.load(write(tmp_path, {**MINIMAL, "kafka": {"bootstrap": "k:1",
                                                                   "client": {"sasl.password": "${PW}"}}}))
    assert cluster_file.engine_client(f.kafka) == {"sasl.password": "${PW}"}


def test_a_variable_the_environment_lacks_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SHOWDOWN_KAFKA_PW", raising=False)
    with pytest.raises(WorkloadError, match=r"kafka.client.sasl.password: \$\{SHOWDOWN_KAFKA_PW\} is not set"):
        ClusterBackend(write(tmp_path, FULL))


def test_the_recorded_file_holds_names_of_secrets_never_their_values(tmp_path: Path) -> None:
    data = json.loads(json.dumps(FULL))
    data["kafka"]["client"]["sasl.password"] = "literal-pw"
    data["kafka"]["client"]["sasl.jaas.config"] = 'ScramLoginModule required password="jaas-pw";'
    data["spark"]["conf"]["spark.hadoop.fs.s3a.secret.key"] = "s3-secret"
    data["spark"]["conf"]["spark.ssl.keyPassword"] = "${KEY_PW}"
    _, recorded = cluster_file.load(write(tmp_path, data))
    text = json.dumps(recorded)
    assert not any(s in text for s in ("literal-pw", "jaas-pw", "s3-secret"))
    assert recorded["kafka"]["client"]["sasl.password"] == cluster_file.REDACTED
    assert recorded["spark"]["conf"]["spark.ssl.keyPassword"] == "${KEY_PW}"  # a name, not a secret
    assert recorded["kafka"]["engine_client"]["sasl.password"] == "${ENGINE_PW}"
    assert recorded["kafka"]["client"]["sasl.username"] == "showdown"


# The file against a workload, before anything is reached.

def test_every_row_needs_its_section_and_a_command_for_each_fault_not_hit_here(tmp_path: Path) -> None:
    f, _ = cluster_file.load(write(tmp_path, MINIMAL))
    worker = make(faults=[{"at_s": 5, "target": "worker"}])
    # A processor runs beside the harness: its kill needs no command.
    assert cluster_file.problem(f, worker, ["kafka", "passthrough"]) is None
    broker = make(faults=[{"at_s": 5, "target": "worker"}, {"at_s": 9, "target": "broker"}])
    assert "faults.1 (kill:broker) for engines.kafka" in str(cluster_file.problem(f, broker, ["kafka"]))
    assert "add kafka.faults.broker.kill" in str(cluster_file.problem(f, broker, ["kafka"]))
    assert "no `flink:` section" in str(cluster_file.problem(f, make(), ["flink"]))
    full, _ = cluster_file.load(write(tmp_path, FULL, "full.yaml"))
    assert cluster_file.problem(full, broker, ["kafka"]) is None
    assert "not run on a cluster file yet" in str(cluster_file.problem(full, make(), ["spark"]))
    assert cluster_file.problem(full, make(faults=[{"at_s": 5, "target": "worker"}]), ["flink"]) is None
    job = make(engines={"flink": {}}, faults=[{"at_s": 5, "action": "cancel-resubmit", "target": "job"}])
    assert cluster_file.problem(full, job, ["flink"]) is None  # by its REST API


def test_the_backend_refuses_before_the_run_starts(tmp_path: Path) -> None:
    backend = ClusterBackend(write(tmp_path, MINIMAL))
    with pytest.raises(WorkloadError, match="kill:broker"):
        backend.check(make(faults=[{"at_s": 5, "target": "broker"}]), ["kafka"])
    assert (backend.name, backend.cluster) == ("cluster", MINIMAL)


def test_a_cluster_file_and_a_backend_are_two_answers_to_one_question(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    assert choice.choose(None, path).name == "cluster" and choice.choose("auto", path).name == "cluster"
    with pytest.raises(WorkloadError, match="give one"):
        choice.choose("local", path)


# What the run creates is named under its own names, and only that is removed.

def test_the_runs_topics_groups_and_ids_carry_its_names(tmp_path: Path) -> None:
    f, _ = cluster_file.load(write(tmp_path, {**MINIMAL, "prefix": "poc"}))
    a = ExistingKafka(f, tmp_path / "c.yaml", KafkaSettings(), tmp_path)
    b = ExistingKafka(f, tmp_path / "c.yaml", KafkaSettings(), tmp_path)
    assert a.names != b.names and a.names.startswith("poc-")
    topics = a.topics(KafkaSettings(transactions_topic="tx"))
    assert (topics.transactions_topic, topics.decisions_topic) == (f"{a.names}-tx", f"{a.names}-decisions")
    assert topics.changelog_topic == f"{a.names}-tx-state-changelog"
    with pytest.raises(ClusterError, match="not named under"):
        a.create_topics(1, ["transactions"])


def test_fault_commands_fill_in_the_instance_and_get_only_the_variables_they_name(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHOWDOWN_CTX", "staging-ctx")
    monkeypatch.setenv("UNRELATED_TOKEN", "must-not-reach")
    out = existing.run_command('echo "kill {instance} in ${SHOWDOWN_CTX} [$UNRELATED_TOKEN]"', 2,
                               "kill:broker", tmp_path / "cmd.log")
    assert out.strip() == "kill 2 in staging-ctx []"
    assert "kill 2" in (tmp_path / "cmd.log").read_text()
    with pytest.raises(ClusterError, match="exit code 3"):
        existing.run_command("echo boom; exit 3", 0, "kill:broker", tmp_path / "cmd.log")


def test_the_brokers_cpu_is_the_commands_difference_or_not_measured(tmp_path: Path) -> None:
    counter = tmp_path / "cpu"
    counter.write_text("10.5")
    f, _ = cluster_file.load(write(tmp_path, {**MINIMAL, "kafka": {"bootstrap": "k:1",
                                                                   "cpu": f"cat {counter}"}}))
    kafka = ExistingKafka(f, tmp_path / "c.yaml", KafkaSettings(), tmp_path)
    kafka._cpu = kafka._cpu_now()  # as start() reads it once the brokers answer
    counter.write_text("14.0\n")
    assert kafka.cpu_seconds() == pytest.approx(3.5)
    plain, _ = cluster_file.load(write(tmp_path, MINIMAL, "plain.yaml"))
    assert ExistingKafka(plain, tmp_path / "p.yaml", KafkaSettings(), tmp_path).cpu_seconds() is None
    counter.write_text("lots")
    with pytest.raises(ClusterError, match="must print the brokers' CPU seconds"):
        kafka.cpu_seconds()


def test_a_processor_expands_its_client_secrets_from_its_own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PIPELINES))
    spec = importlib.util.spec_from_file_location("showdown_processor", PIPELINES / "kafka" / "processor.py")
    assert spec is not None and spec.loader is not None
    processor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(processor)
    cfg = {"bootstrap": "k:9092", "client": {"security.protocol": "SASL_SSL", "sasl.password": "${ENGINE_PW}"}}
    monkeypatch.setenv("ENGINE_PW", "engine-secret")
    assert processor.client_settings(cfg) == {"bootstrap.servers": "k:9092", "security.protocol": "SASL_SSL",
                                              "sasl.password": "engine-secret"}
    monkeypatch.delenv("ENGINE_PW")
    with pytest.raises(SystemExit, match="ENGINE_PW"):
        processor.client_settings(cfg)


def test_the_kubernetes_pages_cluster_file_validates_against_a_workload_with_its_faults() -> None:
    page = (ROOT / "docs" / "kubernetes.md").read_text()
    block = page.split("## 4. The cluster file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    f = cluster_file.parse(yaml.safe_load(block), "docs/kubernetes.md")
    wl = make(engines={"kafka": {}, "passthrough": {}, "flink": {}}, kafka={"brokers": 3},
              faults=[{"at_s": 5, "target": "worker"}, {"at_s": 9, "target": "broker", "instance": 2}])
    assert cluster_file.problem(f, wl, ["kafka", "passthrough", "flink"]) is None
    assert cluster_file.engine_client(f.kafka)["sasl.password"] == "${KAFKA_PASSWORD}"
