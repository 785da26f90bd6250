"""The configuration the harness writes for what it deploys: each broker's server.properties,
Flink's config.yaml, the Kafka processors' pipeline config, the Spark driver's --conf, and
the container limits that follow from the options (README "Engines" and "Workload fields")."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.local import LocalKafka, broker_properties
from harness.engines.base import EngineContext
from harness.engines.clusters import FLINK_LOG4J, FlinkCluster, FlinkSettings, SparkCluster, SparkSettings, megabytes
from harness.engines.flink import FlinkEngine
from harness.engines.kafka import KafkaTransactionsEngine
from harness.engines.spark import STATE_STORES, SparkEngine
from harness.support.errors import ClusterError
from harness.workload.engine_options import FlinkOptions, KafkaOptions, SparkOptions
from harness.workload.schema import Workload
from tests.conftest import make
from tests.unit.fakes import FakeKafka, FakeLauncher

# Brokers


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def local_properties(tmp_path: Path, brokers: int, node: int) -> dict[str, str]:
    """server-`node`.properties as the local backend writes it for a workload with `brokers` brokers."""
    kafka = LocalKafka(make(kafka={"brokers": brokers}).kafka, tmp_path / "logs")
    kafka._data = tmp_path
    kafka._ports = {n: (9000 + n, 9100 + n) for n in range(1, brokers + 1)}
    voters = ",".join(f"{n}@127.0.0.1:{c}" for n, (_, c) in kafka._ports.items())
    return properties(kafka._write_properties(node, voters).read_text())


@pytest.mark.parametrize(("brokers", "min_isr"), [(1, "1"), (3, "2")])
def test_every_topic_is_replicated_on_every_broker_and_acks_need_two_of_three(tmp_path: Path, brokers: int,
                                                                               min_isr: str) -> None:
    p = local_properties(tmp_path, brokers, node=1)
    replication = str(brokers)
    assert (p["default.replication.factor"], p["offsets.topic.replication.factor"],
            p["transaction.state.log.replication.factor"]) == (replication,) * 3
    assert (p["min.insync.replicas"], p["transaction.state.log.min.isr"]) == (min_isr, min_isr)


def test_each_local_broker_has_its_own_id_ports_and_data_and_all_share_the_voters(tmp_path: Path) -> None:
    nodes = {n: local_properties(tmp_path, 3, n) for n in (1, 2, 3)}
    assert [p["node.id"] for p in nodes.values()] == ["1", "2", "3"]
    assert nodes[2]["listeners"] == "PLAINTEXT://127.0.0.1:9002,CONTROLLER://127.0.0.1:9102"
    assert nodes[2]["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9002"
    assert len({p["log.dirs"] for p in nodes.values()}) == 3
    assert {p["controller.quorum.voters"] for p in nodes.values()} == \
        {"1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"}
    assert (tmp_path / "server-2.properties").exists()


def test_brokers_never_create_topics_on_their_own_and_are_both_broker_and_controller(tmp_path: Path) -> None:
    p = local_properties(tmp_path, 1, node=1)
    assert p["auto.create.topics.enable"] == "false"
    assert p["process.roles"] == "broker,controller"
    # A broker killed by a fault registers again only once its old session expires (9 s by default).
    assert int(p["broker.session.timeout.ms"]) < 9_000


def test_every_listener_name_is_mapped_to_plaintext_and_brokers_talk_on_the_named_one() -> None:
    p = properties(broker_properties(
        2, 3, "1@kafka-1:9093", listeners="INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:31000,CONTROLLER://0.0.0.0:9093",
        advertised="INTERNAL://kafka-2:9092,EXTERNAL://127.0.0.1:31000", inter_broker="INTERNAL",
        log_dir="/var/lib/kafka/data"))
    assert p["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,EXTERNAL:PLAINTEXT,INTERNAL:PLAINTEXT"
    assert (p["inter.broker.listener.name"], p["controller.listener.names"]) == ("INTERNAL", "CONTROLLER")


# The Kafka processors' pipeline config

WINDOWS: dict[str, Any] = {"windows": {"size_s": 600, "slide_s": 60}, "beyond_lateness": {"fraction": 0},
                           "out_of_order": {"max_delay_ms": 4_000}}


def processor_config(wl: Workload, name: str = "kafka", applies_rules: bool = True, run_id: str = "run1",
                     instance: int = 0, **options: Any) -> dict[str, Any]:
    engine = KafkaTransactionsEngine(name, KafkaOptions(**options), applies_rules=applies_rules)
    engine._ctx = EngineContext(wl, FakeKafka(), Path("/logs"), f"showdown-{run_id}")
    return engine._config(instance)


def test_the_kafka_pipeline_applies_the_workloads_rules_and_windows_on_its_topics() -> None:
    wl = make(model_cost_ms=2.5, **WINDOWS,
              kafka={"transactions_topic": "tx", "decisions_topic": "dec", "windows_topic": "win"})
    c = processor_config(wl)
    assert c["mode"] == "fraud"
    assert (c["input_topic"], c["output_topic"], c["changelog_topic"]) == ("tx", "dec", "tx-state-changelog")
    assert c["rules"] == {**wl.rules.model_dump(), "model_cost_ms": 2.5}
    assert c["windows"] == {"size_ms": 600_000, "slide_ms": 60_000, "lateness_ms": 10_000, "topic": "win"}
    assert c["bootstrap"] == FakeKafka.processor_bootstrap


def test_passthrough_copies_records_without_rules_or_windows() -> None:
    c = processor_config(make(**WINDOWS), name="passthrough", applies_rules=False)
    assert c["mode"] == "passthrough" and c["windows"] is None


def test_each_row_and_run_has_its_own_consumer_group_and_transactional_ids() -> None:
    wl = make()
    a, b = processor_config(wl, "kafka", run_id="r1"), processor_config(wl, "kafka:big", run_id="r1")
    again = processor_config(wl, "kafka", run_id="r2")
    assert len({c["group_id"] for c in (a, b, again)}) == 3
    assert len({c["transactional_id_prefix"] for c in (a, b, again)}) == 3
    # Every processor of a row joins the same group, under its own instance number.
    other = processor_config(wl, "kafka", run_id="r1", instance=1)
    assert (other["group_id"], other["instance"], a["instance"]) == (a["group_id"], 1, 0)


def test_the_kafka_options_reach_the_processors() -> None:
    c = processor_config(make(), max_batch=50, commit_interval_ms=0, fetch_wait_max_ms=1,
                         transaction_timeout_ms=30_000, session_timeout_ms=7_000)
    assert (c["max_batch"], c["commit_interval_ms"], c["fetch_wait_max_ms"], c["transaction_timeout_ms"],
            c["session_timeout_ms"]) == (50, 0, 1, 30_000, 7_000)
    json.dumps(c)  # it goes to the processor as one JSON argument


def test_more_kafka_processors_than_partitions_are_refused_before_anything_starts() -> None:
    kafka = FakeKafka()
    engine = KafkaTransactionsEngine("kafka", KafkaOptions(parallelism=5), applies_rules=True)
    with pytest.raises(ClusterError, match=r"parallelism \(5\) exceeds kafka.partitions \(4\)"):
        engine.start(EngineContext(make(kafka={"partitions": 4}), kafka, Path("/logs"), "run1"))
    assert kafka.launched == [] and kafka.calls == []


def test_flink_parallelism_beyond_the_task_slots_is_refused_before_anything_is_installed() -> None:
    engine = FlinkEngine("flink", FlinkOptions(parallelism=5, taskmanagers=2, slots=2))
    with pytest.raises(ClusterError, match=r"parallelism \(5\) exceeds taskmanagers x slots \(4\)"):
        engine.prepare()


# Flink's config.yaml

JAVA_OPTS = "--add-opens=java.base/java.lang=ALL-UNNAMED"


def flink_wheel(root: Path) -> Path:
    """The few files of the distribution in the apache-flink wheel that the config is made from."""
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "config.yaml").write_text(yaml.safe_dump({"env": {"java": {"opts": {"all": JAVA_OPTS}}}}))
    (root / "conf" / "log4j-cli.properties").write_text("rootLogger.level = WARN\n")
    for jar in ("lib/flink-dist-2.2.0.jar", "lib/log4j-api-2.24.jar", "opt/flink-python-2.2.0.jar",
                "opt/flink-azure-fs-hadoop-2.2.0.jar"):
        (root / jar).parent.mkdir(exist_ok=True)
        (root / jar).write_text("")
    return root


def flink_config(tmp_path: Path, networked: bool = False, settings: FlinkSettings | None = None,
                 ) -> tuple[FlinkCluster, dict[str, Any]]:
    launcher = FakeLauncher(wheel_home=flink_wheel(tmp_path / "wheel"), networked=networked)
    cluster = FlinkCluster(settings or FlinkSettings(1, 2, "1g", "2g", 10_000), launcher, tmp_path / "logs", 2.0)
    cluster.configure(tmp_path / "scratch", rest_port=18081, rpc_port=18082, blob_port=18083)
    return cluster, yaml.safe_load((tmp_path / "scratch" / "conf" / "config.yaml").read_text())


def test_flink_retains_checkpoints_on_cancel_so_a_cancelled_job_can_be_resubmitted(tmp_path: Path) -> None:
    cluster, conf = flink_config(tmp_path)
    checkpointing = conf["execution"]["checkpointing"]
    assert checkpointing["externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"
    assert checkpointing["num-retained"] >= 1
    assert checkpointing["dir"] == f"file://{cluster.checkpoints}"
    assert cluster.checkpoints == tmp_path / "scratch" / "checkpoints"


def test_flink_takes_slots_memory_and_heartbeat_timeout_from_the_options(tmp_path: Path) -> None:
    _, conf = flink_config(tmp_path, settings=FlinkSettings(1, 3, "768m", "3g", 4_000))
    assert conf["taskmanager"]["numberOfTaskSlots"] == 3
    assert conf["jobmanager"]["memory"]["process"]["size"] == "768m"
    assert conf["taskmanager"]["memory"]["process"]["size"] == "3g"
    assert conf["heartbeat"]["timeout"] == "4000 ms"


def test_flink_keeps_restarting_the_job_while_a_taskmanager_is_gone(tmp_path: Path) -> None:
    _, conf = flink_config(tmp_path)
    strategy = conf["restart-strategy"]
    assert strategy["type"] == "exponential-delay"
    assert strategy["exponential-delay"]["max-backoff"] == "10 s"
    assert strategy["exponential-delay"]["attempts-before-reset-backoff"] >= 100
    assert conf["jobmanager"]["execution"]["failover-strategy"] == "region"


def test_flink_keeps_the_wheels_java_flags_and_runs_python_from_the_engine_runtime(tmp_path: Path) -> None:
    cluster, conf = flink_config(tmp_path)
    assert conf["env"]["java"]["opts"]["all"] == JAVA_OPTS
    python = str(cluster.launcher.python)
    assert conf["python"]["executable"] == conf["python"]["client"]["executable"] == python
    conf_dir = tmp_path / "scratch" / "conf"
    assert (conf_dir / "log4j-console.properties").read_text() == FLINK_LOG4J
    assert (conf_dir / "log4j-cli.properties").read_text() == "rootLogger.level = WARN\n"


def test_a_local_flink_cluster_is_on_loopback_with_flink_python_on_its_classpath(tmp_path: Path) -> None:
    cluster, conf = flink_config(tmp_path)
    assert (conf["rest"]["port"], conf["rest"]["address"], conf["rest"]["bind-address"]) == \
        (18081, "127.0.0.1", "127.0.0.1")
    assert conf["taskmanager"]["host"] == "127.0.0.1"
    lib = tmp_path / "scratch" / "lib"
    assert sorted(p.name for p in lib.iterdir()) == ["flink-dist-2.2.0.jar", "flink-python-2.2.0.jar",
                                                     "log4j-api-2.24.jar"]
    assert (lib / "flink-python-2.2.0.jar").resolve() == (tmp_path / "wheel" / "opt" / "flink-python-2.2.0.jar")
    env = cluster.env()
    assert (env["FLINK_CONF_DIR"], env["FLINK_LIB_DIR"]) == (str(tmp_path / "scratch" / "conf"), str(lib))


def test_flink_in_containers_is_reached_by_its_alias_and_taskmanagers_find_their_own_address(tmp_path: Path) -> None:
    cluster, conf = flink_config(tmp_path, networked=True)
    assert conf["jobmanager"]["rpc"]["address"] == conf["rest"]["address"] == FlinkCluster.JOBMANAGER
    assert conf["jobmanager"]["bind-host"] == conf["taskmanager"]["bind-host"] == "0.0.0.0"
    assert "host" not in conf["taskmanager"]
    # The classpath links point into the distribution as the image holds it.
    lib = tmp_path / "scratch" / "lib"
    assert os.readlink(lib / "flink-python-2.2.0.jar") == "/opt/engine/opt/flink-python-2.2.0.jar"
    assert (cluster.env()["FLINK_LIB_DIR"], cluster.env()["FLINK_HOME"]) == (str(lib), "/opt/engine")


# The Spark driver


def spark_submit(tmp_path: Path, options: SparkOptions) -> tuple[list[str], dict[str, str], int]:
    """The spark-submit command line of the driver the engine would start: its argv, its --conf
    settings and its container memory limit."""
    launcher = FakeLauncher()
    engine = SparkEngine("spark", options)
    engine.cluster = SparkCluster(SparkSettings(options.worker_cores, options.worker_memory, options.daemon_memory,
                                                options.driver_memory), launcher, tmp_path, 2.0)
    engine.cluster._dir = tmp_path
    engine._ctx = EngineContext(make(), FakeKafka(), tmp_path, "run1")
    engine._progress = tmp_path / "progress.jsonl"
    engine._launch_driver()
    (launch,) = launcher.launched
    conf = dict(launch.argv[i + 1].split("=", 1) for i, a in enumerate(launch.argv) if a == "--conf")
    return launch.argv, conf, launch.memory_mb


@pytest.mark.parametrize("store", ["rocksdb", "hdfs"])
def test_the_spark_driver_runs_the_options_state_store_and_shuffle_partitions(tmp_path: Path, store: str) -> None:
    _, conf, _ = spark_submit(tmp_path, SparkOptions(state_store=store, shuffle_partitions=6))  # type: ignore[arg-type]
    assert conf["spark.sql.streaming.stateStore.providerClass"] == STATE_STORES[store]
    assert conf["spark.sql.shuffle.partitions"] == "6"
    assert conf["spark.sql.adaptive.enabled"] == "false"  # stateful queries cannot use it


def test_the_spark_driver_is_a_client_mode_driver_with_the_options_resources(tmp_path: Path) -> None:
    options = SparkOptions(worker_cores=3, executor_memory="768m", driver_memory="2g")
    argv, conf, memory_mb = spark_submit(tmp_path, options)
    assert argv[argv.index("--deploy-mode") + 1] == "client"
    assert argv[argv.index("--driver-memory") + 1] == "2g"
    assert (conf["spark.executor.memory"], conf["spark.executor.cores"], conf["spark.cores.max"]) == ("768m", "3", "3")
    assert conf["spark.pyspark.python"] == str(FakeLauncher().python)
    assert memory_mb == 2048 + 1024


# Container limits that follow from the options (README)


def test_memory_sizes_are_read_in_mebibytes() -> None:
    assert (megabytes("512m"), megabytes("2g")) == (512, 2048)


def test_container_memory_limits_leave_room_beside_each_jvm_heap() -> None:
    flink = FlinkSettings(1, 2, "1g", "2g", 10_000)
    assert (flink.jobmanager_container_mb, flink.taskmanager_container_mb) == (1024 + 256, 2048 + 512)
    spark = SparkSettings(worker_cores=2, worker_memory="2g", daemon_memory="512m", driver_memory="1g")
    assert (spark.master_container_mb, spark.worker_container_mb, spark.driver_container_mb) == \
        (512 + 256, 512 + 2048 + 1024, 1024 + 1024)
    assert make(kafka={"heap_mb": 768}).kafka.container_mb == 768 + 512
