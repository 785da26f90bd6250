"""The containers backend's stack kept up for people to poke at: docker-compose.yml runs
the very images the harness builds (docker/<service>/, versions.toml) with the very
configuration it writes for a run, generated here into .cache/compose/.

docker-compose reads what this writes from `compose.env`: image tags, ports, limits and
the folders it mounts (at the host's paths, as the containers backend does)."""
from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.backends import images
from harness.backends.containers import (
    CONTROLLER_PORT,
    INTERNAL_PORT,
    ContainerLauncher,
)
from harness.backends.local import broker_properties
from harness.engines.clusters import FlinkCluster, FlinkSettings, SparkSettings
from harness.engines.spark import image as spark_image
from harness.provision import venvs
from harness.provision.venvs import package_home
from harness.provision.versions import runtime
from harness.support.paths import CACHE, PIPELINES, ROOT
from harness.workload.engine_options import FlinkOptions, SparkOptions
from harness.workload.schema import KafkaSettings

COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_DIR = CACHE / "compose"
ENV_FILE = COMPOSE_DIR / "compose.env"


@dataclass(frozen=True)
class Ports:
    """Host ports, on 127.0.0.1: Kafka's external listener, Flink's REST API and web UI,
    the Spark Master's web UI."""

    kafka: int = 9094
    flink: int = 8081
    spark: int = 8080


def write(ports: Ports) -> Path:
    """Build (or find) the images, write the configuration and the env file; returns it."""
    kafka, flink, spark = KafkaSettings(), FlinkOptions(), SparkOptions()
    flink_python = venvs.ensure("flink", runtime("flink"))
    tags = {"KAFKA_IMAGE": images.kafka_image(), "FLINK_IMAGE": images.flink_image(), "SPARK_IMAGE": spark_image()}
    shutil.rmtree(COMPOSE_DIR, ignore_errors=True)
    broker = COMPOSE_DIR / "kafka-1"
    (broker / "data").mkdir(parents=True)
    (broker / "server.properties").write_text(broker_properties(
        1, 1, f"1@kafka-1:{CONTROLLER_PORT}",
        listeners=f"INTERNAL://0.0.0.0:{INTERNAL_PORT},EXTERNAL://0.0.0.0:{ports.kafka},"
                  f"CONTROLLER://0.0.0.0:{CONTROLLER_PORT}",
        advertised=f"INTERNAL://kafka-1:{INTERNAL_PORT},EXTERNAL://127.0.0.1:{ports.kafka}",
        inter_broker="INTERNAL", log_dir="/var/lib/kafka/data"))
    launcher = ContainerLauncher(tags["FLINK_IMAGE"], Path("/opt/flink"), package_home(flink_python, "pyflink"),
                                 network=None)
    flink_settings = FlinkSettings(1, flink.slots, flink.jobmanager_memory, flink.taskmanager_memory,
                                   flink.heartbeat_timeout_ms)
    FlinkCluster(flink_settings, launcher, COMPOSE_DIR / "flink" / "log", flink.container_cpus).configure(
        # RPC and blob ports are the container's own: Flink's defaults.
        COMPOSE_DIR / "flink", ports.flink, rpc_port=6123, blob_port=6124)
    spark_settings = SparkSettings(spark.worker_cores, spark.worker_memory, spark.daemon_memory, spark.driver_memory)
    env = {
        "COMPOSE_PROJECT_NAME": "showdown", **tags, "SHOWDOWN_COMPOSE_DIR": str(COMPOSE_DIR),
        "PIPELINES_DIR": str(PIPELINES),
        "KAFKA_PORT": ports.kafka, "FLINK_PORT": ports.flink, "SPARK_UI_PORT": ports.spark,
        "KAFKA_CLUSTER_ID": uuid.uuid4().hex[:22], "KAFKA_HEAP_MB": kafka.heap_mb,
        "KAFKA_TRANSACTION_VERSION": kafka.transaction_version, "KAFKA_CPUS": kafka.cpus,
        "KAFKA_MEMORY": f"{kafka.container_mb}m",
        "FLINK_CPUS": flink.container_cpus,
        "FLINK_JOBMANAGER_MEMORY": f"{flink_settings.jobmanager_container_mb}m",
        "FLINK_TASKMANAGER_MEMORY": f"{flink_settings.taskmanager_container_mb}m",
        "SPARK_CPUS": spark.container_cpus, "SPARK_DAEMON_MEMORY": spark.daemon_memory,
        "SPARK_MASTER_MEMORY": f"{spark_settings.master_container_mb}m",
        "SPARK_WORKER_CORES": spark.worker_cores, "SPARK_WORKER_EXECUTORS_MEMORY": spark.worker_memory,
        "SPARK_WORKER_MEMORY": f"{spark_settings.worker_container_mb}m",
    }
    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return ENV_FILE
