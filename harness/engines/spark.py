"""The Spark architecture: the PySpark Structured Streaming query in pipelines/spark/ on a
standalone cluster, its driver run by the harness in client mode."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends import images
from harness.backends.base import KafkaCluster, Runtime
from harness.engines.base import EngineContext
from harness.engines.clusters import SparkCluster, SparkSettings
from harness.provision import artifacts, venvs
from harness.provision.venvs import package_home
from harness.provision.versions import pinned, runtime
from harness.support import procs
from harness.support.errors import ClusterError
from harness.support.names import safe_name
from harness.support.paths import PIPELINES
from harness.support.procs import Worker, free_ports
from harness.support.wait import wait_until
from harness.workload.engine_options import KINDS, SparkOptions
from harness.workload.schema import Fault

JOB = PIPELINES / "spark" / "job.py"
RULES = PIPELINES / "rules.py"
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
STATE_STORES = {
    "rocksdb": "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
    "hdfs": "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider",
}


def image() -> str:
    """The Spark image of the pinned runtime: its wheel and the connector jars it lacks."""
    return images.spark_image(connector_jars(venvs.ensure("spark", runtime("spark"))))


def _jar_artifact(path: Path) -> str:
    return re.sub(r"-\d[^-]*(-[A-Za-z0-9.]+)?\.jar$", "", path.name)


def connector_jars(python: Path) -> list[Path]:
    """The Kafka connector's jars that the distribution in the wheel of `python` lacks.

    The connector's dependencies also list Hadoop, Scala and slf4j jars the distribution
    already has (some in other versions): only the others go to --jars (and the image)."""
    bundled = {_jar_artifact(j) for j in (package_home(python, "pyspark") / "jars").glob("*.jar")}
    jars = sorted(j for j in artifacts.jars("spark").glob("*.jar") if _jar_artifact(j) not in bundled)
    if not any(j.name.startswith("spark-sql-kafka") for j in jars):
        raise ClusterError(f"the Spark Kafka connector jar is missing from {artifacts.jars('spark')}")
    return jars


def cluster(options: SparkOptions, kafka: KafkaCluster, log_dir: Path, python: Path, jars: list[Path]
            ) -> SparkCluster:
    """A Spark standalone cluster of `options` beside `kafka` (not started yet); `python`:
    the local runtime (venvs.ensure), `jars`: its connector_jars."""
    o = options
    return SparkCluster(SparkSettings(o.worker_cores, o.worker_memory, o.daemon_memory, o.driver_memory, o.workers),
                        kafka.launcher(Runtime(python, "pyspark", lambda: images.spark_image(jars))), log_dir,
                        o.container_cpus)


class SparkEngine:
    applies_rules = True
    fault_actions = KINDS["spark"].faults

    def __init__(self, name: str, options: SparkOptions) -> None:
        self.name = name
        self.options = options
        self.cluster: SparkCluster | None = None
        self.drivers: list[Worker] = []  # one per submission, also the killed ones
        self.timings: dict[str, Any] = {}
        self._killed: set[str] = set()
        self._python: Path | None = None
        self._jars: list[Path] = []
        self._ctx: EngineContext | None = None
        self._config: dict[str, Any] = {}
        self._progress: Path | None = None

    def prepare(self) -> None:
        self._python = venvs.ensure("spark", runtime("spark"))
        self._jars = connector_jars(self._python)

    def start(self, ctx: EngineContext) -> None:
        assert self._python is not None
        o = self.options
        self._ctx = ctx
        self.cluster = cluster(o, ctx.kafka, ctx.log_dir, self._python, self._jars)
        t0 = time.monotonic()
        self.cluster.start()
        self.timings["cluster_start_s"] = round(time.monotonic() - t0, 2)
        wl = ctx.workload
        commit_topic = f"{wl.kafka.decisions_topic}-{safe_name(self.name)}-batches"
        windows_commit_topic = f"{wl.kafka.windows_topic}-{safe_name(self.name)}-batches"
        if o.sink == "transactional":
            ctx.kafka.create_topics(1, [commit_topic, *([windows_commit_topic] if wl.windows else [])])
        self._progress = ctx.log_dir / f"{self.name}-progress.jsonl"
        self._config = {
            "engine": self.name, "app_name": f"{ctx.names}-{self.name}", "bootstrap": ctx.kafka.engine_bootstrap,
            "input_topic": wl.kafka.transactions_topic, "output_topic": wl.kafka.decisions_topic,
            "commit_topic": commit_topic, "transactional_id": f"{ctx.names}-{self.name}",
            "transaction_timeout_ms": o.transaction_timeout_ms, "rules": wl.pipeline_rules(),
            "sink": o.sink, "trigger_interval_ms": o.trigger_interval_ms,
            "checkpoint": str(self.cluster.scratch / "checkpoint"), "progress_file": str(self._progress),
            "windows": wl.pipeline_windows(), "windows_commit_topic": windows_commit_topic,
            "windows_checkpoint": str(self.cluster.scratch / "checkpoint-windows"),
        }
        self.timings["submit_to_first_batch_s"] = self._submit()

    def _submit(self, timeout_s: float = 240) -> float:
        """Start a driver (resuming from the checkpoint if there is one) and wait for its
        first completed micro-batch; returns the seconds that took."""
        t0 = time.monotonic()
        started = time.time()
        driver = self._launch_driver()
        wait_until(lambda: any(e["event"] == "progress" and e["query"] == "decisions" and e["wall"] >= started
                               for e in self._events()),
                   timeout_s, "the Spark query's first micro-batch", watch=[driver])
        return round(time.monotonic() - t0, 2)

    def _launch_driver(self) -> Worker:
        assert self.cluster is not None and self._ctx is not None and self._progress is not None
        o = self.options
        launcher = self.cluster.launcher
        conf = {
            "spark.ui.port": str(free_ports(1)[0]), "spark.ui.showConsoleProgress": "false",
            "spark.executor.memory": o.executor_memory, "spark.executor.cores": str(o.worker_cores),
            # One executor on every Worker.
            "spark.cores.max": str(o.worker_cores * o.workers), "spark.pyspark.python": str(launcher.python),
            "spark.sql.shuffle.partitions": str(o.shuffle_partitions),
            "spark.sql.streaming.stateStore.providerClass": STATE_STORES[o.state_store],
            # Stateful queries cannot use it, and say so on every batch.
            "spark.sql.adaptive.enabled": "false",
        }
        n = len(self.drivers)
        driver = self.cluster.submit(
            f"{self.name}-driver-{n}",
            ["--jars", ",".join(str(launcher.jar(j)) for j in self._jars), "--py-files", str(RULES),
             str(JOB), json.dumps(self._config)],
            conf, self._ctx.log_dir / f"{self.name}-driver-{n}.log")
        self.drivers.append(driver)
        return driver

    def _events(self) -> list[dict[str, Any]]:
        assert self._progress is not None
        try:
            lines = self._progress.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.endswith("}")]

    def inject(self, fault: Fault) -> str:
        assert self.cluster is not None
        if fault.target == "driver":
            driver = self.drivers[-1]
            self._killed.add(driver.ident)
            driver.kill()  # spark-submit's JVM and the job's Python process
            return f"{driver.name} ({driver.ident}, with its Python process)"
        live = self.cluster.live_workers()
        if not live:
            raise ClusterError("no Spark Worker is alive to kill")
        victim = live[fault.instance % len(live)]
        if fault.target == "executor":
            if not victim.kill_matching(EXECUTOR_CLASS):
                raise ClusterError(f"no Spark executor is running in {victim.name} to kill")
            return (f"the executor in {victim.name} ({victim.ident}), with its Python workers; "
                    "the Worker starts a new one")
        self._killed.add(victim.ident)
        victim.kill()  # the Worker JVM, its executors and their Python workers
        return f"{victim.name} ({victim.ident}, with its executor and Python workers)"

    def recover(self, fault: Fault) -> None:
        assert self.cluster is not None
        if fault.target == "driver":
            self.timings.setdefault("restart_to_first_batch_s", []).append(self._submit())
        elif fault.target == "worker":
            self.cluster.start_worker()
            self.cluster.await_workers(self.options.workers, timeout_s=120)
        # An executor is relaunched by its Worker; nothing to do.

    def check_health(self) -> list[str]:
        assert self.cluster is not None
        cluster = self.cluster
        procs.require_alive(cluster.leader, "the Spark Master")
        return [*procs.revive(cluster.workers, self._killed, lambda _: cluster.start_worker(), "started a new one"),
                # The new driver is not waited for: the run goes on observing meanwhile.
                *procs.revive(self.drivers[-1:], self._killed, lambda _: self._launch_driver(),
                              "restarted it from the checkpoint", log_lines=10)]

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()  # its drivers too

    def cpu_seconds(self) -> float:
        return self.cluster.cpu_seconds() if self.cluster else 0.0

    def _batches(self, query: str) -> dict[str, Any]:
        """Micro-batch figures of one query from the listener: how long a batch takes end to
        end (triggerExecution) and how many input rows it carries."""
        batches = [e for e in self._events() if e["event"] == "progress" and e["query"] == query and e["rows"] > 0]
        if not batches:
            return {"with_rows": 0}
        ms = np.array([e["duration_ms"].get("triggerExecution", 0) for e in batches], dtype=float)
        rows = np.array([e["rows"] for e in batches], dtype=float)
        return {"with_rows": len(batches), "duration_ms_p50": float(np.percentile(ms, 50)),
                "duration_ms_p90": float(np.percentile(ms, 90)), "duration_ms_max": float(ms.max()),
                "rows_p50": float(np.percentile(rows, 50)), "rows_max": int(rows.max())}

    def describe(self) -> dict[str, Any]:
        delivery = ("exactly-once (one Kafka transaction per micro-batch, committed batches skipped on replay)"
                    if self.options.sink == "transactional"
                    else "at-least-once (Spark's Kafka sink: a replayed micro-batch writes its decisions again)")
        return {
            "engine": self.name,
            "architecture": "PySpark Structured Streaming, transformWithState per user, micro-batches, "
                            "on a standalone cluster with a client-mode driver",
            "versions": {"pyspark": pinned()["spark"]["version"],
                         "spark-sql-kafka-0-10": pinned()["spark"]["version"],
                         "jars": [j.name for j in self._jars]},
            "options": self.options.model_dump(),
            "cluster": self.cluster.describe() if self.cluster else {},
            "delivery": delivery,
            "timings": {**self.timings, "batches": self._batches("decisions") if self._progress else {},
                        **({"windows_batches": self._batches("windows")}
                           if self._progress and self._config.get("windows") else {})},
        }
