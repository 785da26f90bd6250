"""The `local` backend: Kafka (KRaft) and the engines' clusters as local processes on 127.0.0.1."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from harness import artifacts
from harness.console import console
from harness.errors import ClusterError
from harness.paths import CACHE, PIPELINES, ROOT
from harness.procs import ManagedProcess, free_port, tail
from harness.versions import pinned
from harness.workload import KafkaSettings

# The brokers' logging, shared with the Kafka container image.
KAFKA_LOG4J2 = ROOT / "docker" / "kafka" / "log4j2.yaml"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def broker_properties(node: int, replication: int, voters: str, listeners: str, advertised: str,
                      inter_broker: str, log_dir: str) -> str:
    """server.properties of a combined broker+controller node, for either backend."""
    min_isr = 2 if replication >= 3 else 1
    names = {entry.split("://")[0] for entry in listeners.split(",")}
    props = {
        "process.roles": "broker,controller",
        "node.id": node,
        "controller.quorum.voters": voters,
        "listeners": listeners,
        "advertised.listeners": advertised,
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": ",".join(f"{n}:PLAINTEXT" for n in sorted(names)),
        "inter.broker.listener.name": inter_broker,
        "log.dirs": log_dir,
        "auto.create.topics.enable": "false",
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        # Fewer internal partitions than the defaults (50): faster start on 2 cores.
        "offsets.topic.num.partitions": 8,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 8,
        "group.initial.rebalance.delay.ms": 0,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


class Brokers:
    """What the Kafka clusters of both backends share: settings, the admin client, topics."""

    def __init__(self, settings: KafkaSettings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.bootstrap = ""
        self._admin: AdminClient | None = None

    @property
    def version(self) -> str:
        return str(pinned()["kafka"]["version"])

    @property
    def replication(self) -> int:
        return self.settings.brokers

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def create_topics(self, partitions: int, names: list[str], config: dict[str, str] | None = None) -> None:
        # Records carry event-time timestamps (Flink's sink writes the element's), which lie
        # in the workload's virtual past: time-based retention would delete them mid-run.
        settings = {"retention.ms": "-1", "retention.bytes": "-1", **(config or {})}
        topics = [NewTopic(n, num_partitions=partitions, replication_factor=self.replication, config=settings)
                  for n in names]
        for name, fut in self.admin().create_topics(topics, operation_timeout=30).items():
            try:
                fut.result(timeout=60)
            except Exception as e:
                raise ClusterError(f"could not create topic {name}: {e}") from None


class LocalKafka(Brokers):
    """One broker (or three, for replication) in combined broker+controller mode."""

    backend = "local"

    def __init__(self, settings: KafkaSettings, log_dir: Path) -> None:
        super().__init__(settings, log_dir)
        self.nodes: dict[int, ManagedProcess] = {}
        self._started: list[ManagedProcess] = []  # also the killed ones, for CPU totals
        self._ports: dict[int, tuple[int, int]] = {}
        self._data: Path | None = None

    @property
    def data_dir(self) -> Path | None:
        return self._data

    def start(self, timeout_s: float = 120.0) -> str:
        java = artifacts.require_java()
        lib = artifacts.jars("kafka")
        (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
        self._data = Path(tempfile.mkdtemp(prefix="kafka-", dir=CACHE / "tmp"))
        n = self.settings.brokers
        self._ports = {i: (free_port(), free_port()) for i in range(1, n + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in self._ports.items())
        cluster_id = uuid.uuid4().hex[:22]
        log4j = self._data / "log4j2.yaml"
        shutil.copy(KAFKA_LOG4J2, log4j)
        classpath = f"{lib}/*"
        t0 = time.monotonic()
        with console.status(f"Starting Kafka {self.version} ({n} broker{'s' if n > 1 else ''}, KRaft)"):
            for node in self._ports:
                props = self._write_properties(node, voters)
                fmt = ManagedProcess(
                    f"kafka-format-{node}",
                    [java, "-cp", classpath, f"-Dlog4j2.configurationFile={log4j}", "kafka.tools.StorageTool",
                     "format", "-t", cluster_id, "-c", str(props),
                     "--feature", f"transaction.version={self.settings.transaction_version}"],
                    self.log_dir / f"kafka-{node}-format.log",
                )
                if fmt.popen.wait(timeout=120) != 0:
                    raise ClusterError(f"formatting Kafka storage failed:\n{tail(fmt.log)}")
                fmt.stop()
            for node in self._ports:
                self.start_node(node)
            self.bootstrap = ",".join(f"127.0.0.1:{p}" for p, _ in self._ports.values())
            self._await_ready(timeout_s)
        console.print(f"[green]✓[/] Kafka {self.version} ready at {self.bootstrap} in {time.monotonic() - t0:.1f} s")
        return self.bootstrap

    def start_node(self, node: int) -> None:
        assert self._data is not None
        java = artifacts.require_java()
        heap = self.settings.heap_mb
        self.nodes[node] = proc = ManagedProcess(
            f"kafka-{node}",
            [java, f"-Xms{heap}m", f"-Xmx{heap}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
             "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={self._data / 'log4j2.yaml'}",
             "-cp", f"{artifacts.jars('kafka')}/*", "kafka.Kafka", str(self._data / f"server-{node}.properties")],
            self.log_dir / f"kafka-{node}.log",
        )
        self._started.append(proc)

    def _write_properties(self, node: int, voters: str) -> Path:
        assert self._data is not None
        port, controller = self._ports[node]
        path = self._data / f"server-{node}.properties"
        path.write_text(broker_properties(
            node, self.replication, voters,
            listeners=f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            advertised=f"PLAINTEXT://127.0.0.1:{port}", inter_broker="PLAINTEXT",
            log_dir=str(self._data / f"node-{node}")))
        return path

    def _await_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        admin: AdminClient | None = None
        while True:
            dead = [p for p in self.nodes.values() if not p.alive()]
            if dead:
                raise ClusterError(f"Kafka broker {dead[0].name} exited while starting; last lines of {dead[0].log}:\n"
                                   f"{tail(dead[0].log)}")
            # A client made before the port listens would log every refused connection.
            if admin is None and all(_listening(p) for p, _ in self._ports.values()):
                admin = self.admin()
            if admin is not None:
                try:
                    md = admin.list_topics(timeout=2)
                    if len(md.brokers) == len(self.nodes):
                        return
                except Exception:  # listening, but not answering metadata requests yet
                    pass
            if time.monotonic() > deadline:
                p = next(iter(self.nodes.values()))
                raise ClusterError(f"Kafka did not answer a metadata request within {timeout_s:.0f} s; "
                                   f"last lines of {p.log}:\n{tail(p.log)}")
            time.sleep(0.3)

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self._started)

    def describe(self) -> dict[str, object]:
        return {"backend": self.backend, "heap_mb": self.settings.heap_mb}

    @property
    def engine_bootstrap(self) -> str:
        return self.bootstrap

    def launch_python(self, name: str, script: Path, args: Sequence[str], log: Path, env: Mapping[str, str],
                      cpus: float, memory_mb: int) -> ManagedProcess:
        # Limits apply to containers; a local process shares the machine like everything else.
        return ManagedProcess(name, [sys.executable, "-u", str(script), *args], log,
                              env={**os.environ, **env, "PYTHONPATH": str(PIPELINES)})

    def stop(self) -> None:
        self._admin = None
        for p in self.nodes.values():
            p.stop(grace_s=10)
        if self._data is not None:
            shutil.rmtree(self._data, ignore_errors=True)
            self._data = None


FLINK_LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = ConsoleAppender
appender.console.name = ConsoleAppender
appender.console.type = CONSOLE
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %-50c{1.} - %m%n
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
"""


def package_home(python: Path, package: str) -> Path:
    """Where `package` is installed for `python`: the Flink and Spark distributions live
    inside their wheels."""
    return Path(subprocess.run([str(python), "-c", f"import os, {package}; print(os.path.dirname({package}.__file__))"],
                               capture_output=True, text=True, check=True).stdout.strip())


class WheelCluster:
    """A standalone cluster run from the distribution inside an engine's wheel: a leader
    (Flink's JobManager, Spark's Master) and workers (TaskManagers, Workers), each a local
    process in its own group, in a scratch folder of their own under .cache/tmp."""

    package = ""  # the wheel's Python package: pyflink, pyspark

    def __init__(self, python: Path, log_dir: Path) -> None:
        self.python = python
        self.log_dir = log_dir
        self.home = package_home(python, self.package)
        self.leader: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []  # every one started, also the killed ones
        self._dir: Path | None = None

    def _make_scratch(self) -> Path:
        artifacts.require_java()
        (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix=f"{self.package.removeprefix('py')}-", dir=CACHE / "tmp"))
        return self._dir

    def live_workers(self) -> list[ManagedProcess]:
        return [p for p in self.workers if p.alive()]

    def _processes(self) -> list[ManagedProcess]:
        return [*self.workers, *([self.leader] if self.leader else [])]

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self._processes())

    def stop(self) -> None:
        for p in self._processes():
            p.stop(grace_s=10)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


@dataclass(frozen=True)
class FlinkSettings:
    taskmanagers: int
    slots: int
    jobmanager_memory: str
    taskmanager_memory: str
    heartbeat_timeout_ms: int


class LocalFlink(WheelCluster):
    """A Flink standalone session cluster: the JobManager leads, TaskManagers are the workers."""

    package = "pyflink"

    def __init__(self, settings: FlinkSettings, python: Path, log_dir: Path) -> None:
        super().__init__(python, log_dir)
        self.settings = settings
        self.rest_port = 0

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def checkpoints(self) -> Path:
        assert self._dir is not None
        return self._dir / "checkpoints"

    def env(self) -> dict[str, str]:
        assert self._dir is not None
        # pemja (thread mode) embeds whichever python is first on PATH, not python.executable.
        path = f"{self.python.parent}:{os.environ.get('PATH', '')}"
        return {**os.environ, "PATH": path, "FLINK_CONF_DIR": str(self._dir / "conf"), "FLINK_LOG_DIR": str(self.log_dir),
                "FLINK_PID_DIR": str(self._dir / "pid"), "FLINK_LIB_DIR": str(self._dir / "lib"),
                "FLINK_HOME": str(self.home)}

    def _write_conf(self) -> None:
        assert self._dir is not None
        conf = self._dir / "conf"
        conf.mkdir(parents=True)
        # Flink's own JVM flags for Java 17 (--add-opens ...) come with the wheel's config.
        wheel_conf = yaml.safe_load((self.home / "conf" / "config.yaml").read_text())
        java_opts = wheel_conf["env"]["java"]["opts"]["all"]
        s = self.settings
        python = str(self.python)
        config = {
            "env": {"java": {"opts": {"all": java_opts}}},
            "io": {"tmp": {"dirs": str(self._dir / "tmp")}},
            "jobmanager": {"bind-host": "127.0.0.1", "rpc": {"address": "127.0.0.1", "port": free_port()},
                           "memory": {"process": {"size": s.jobmanager_memory}},
                           "execution": {"failover-strategy": "region"}},
            "taskmanager": {"bind-host": "127.0.0.1", "host": "127.0.0.1", "numberOfTaskSlots": s.slots,
                            "memory": {"process": {"size": s.taskmanager_memory}}},
            "rest": {"address": "127.0.0.1", "bind-address": "127.0.0.1", "port": self.rest_port},
            "blob": {"server": {"port": free_port()}},
            "execution": {"checkpointing": {
                "dir": f"file://{self.checkpoints}", "savepoint-dir": f"file://{self._dir / 'savepoints'}",
                "externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION", "num-retained": 3}},
            # Keeps restarting while a TaskManager is gone, backing off up to 10 s between attempts.
            "restart-strategy": {"type": "exponential-delay", "exponential-delay": {
                "initial-backoff": "1 s", "max-backoff": "10 s", "backoff-multiplier": 2.0,
                "reset-backoff-threshold": "1 min", "jitter-factor": 0.1, "attempts-before-reset-backoff": 1000}},
            "heartbeat": {"interval": "2 s", "timeout": f"{s.heartbeat_timeout_ms} ms"},
            "python": {"executable": python, "client": {"executable": python}},
            # pemja (thread mode) must load from the parent classloader, or a second job on the
            # same TaskManager fails with NoSuchFieldException: loadedLibraryNames.
            "classloader": {"parent-first-patterns": {"additional": "pemja."}},
        }
        (conf / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (conf / "log4j-console.properties").write_text(FLINK_LOG4J)
        shutil.copy(self.home / "conf" / "log4j-cli.properties", conf / "log4j-cli.properties")
        # flink-python lives in opt/; thread mode needs it on the cluster's own classpath.
        lib = self._dir / "lib"
        lib.mkdir()
        for jar in [*(self.home / "lib").glob("*.jar"), *(self.home / "opt").glob("flink-python-*.jar")]:
            (lib / jar.name).symlink_to(jar)

    def start(self, timeout_s: float = 120.0) -> None:
        self._make_scratch()
        self.rest_port = free_port()
        self._write_conf()
        t0 = time.monotonic()
        with console.status(f"Starting Flink (JobManager + {self.settings.taskmanagers} TaskManager)"):
            self.leader = ManagedProcess("flink-jobmanager", [str(self.home / "bin" / "jobmanager.sh"),
                                                              "start-foreground"],
                                         self.log_dir / "flink-jobmanager.log", env=self.env())
            for _ in range(self.settings.taskmanagers):
                self.start_worker()
            self.await_taskmanagers(self.settings.taskmanagers, timeout_s)
        console.print(f"[green]✓[/] Flink ready at {self.rest} in {time.monotonic() - t0:.1f} s")

    def start_worker(self) -> ManagedProcess:
        n = len(self.workers)
        proc = ManagedProcess(f"flink-taskmanager-{n}", [str(self.home / "bin" / "taskmanager.sh"), "start-foreground"],
                              self.log_dir / f"flink-taskmanager-{n}.log", env=self.env())
        self.workers.append(proc)
        return proc

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def request(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.rest + path, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def await_taskmanagers(self, n: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            for p in self._processes():
                if not p.alive():
                    raise ClusterError(f"{p.name} exited while starting; last lines of {p.log}:\n{tail(p.log)}")
            try:
                if self.get("/overview")["taskmanagers"] >= n:
                    return
            except (OSError, ValueError):  # REST not up yet
                pass
            if time.monotonic() > deadline:
                p = self.leader
                assert p is not None
                raise ClusterError(f"Flink had no {n} TaskManager(s) registered within {timeout_s:.0f} s; "
                                   f"last lines of {p.log}:\n{tail(p.log)}")
            time.sleep(0.5)



@dataclass(frozen=True)
class SparkSettings:
    worker_cores: int
    worker_memory: str
    daemon_memory: str  # heap of the Master and Worker JVMs themselves


class LocalSpark(WheelCluster):
    """A Spark standalone cluster: the Master leads, Workers host the executors.
    `bin/spark-class` execs the JVM, so each recorded PID is the JVM's."""

    package = "pyspark"

    def __init__(self, settings: SparkSettings, python: Path, log_dir: Path) -> None:
        super().__init__(python, log_dir)
        self.settings = settings
        self.port = 0
        self.ui_port = 0

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    @property
    def scratch(self) -> Path:
        assert self._dir is not None
        return self._dir

    def env(self) -> dict[str, str]:
        assert self._dir is not None
        return {**os.environ, "SPARK_HOME": str(self.home), "SPARK_LOCAL_IP": "127.0.0.1",
                "SPARK_LOG_DIR": str(self.log_dir), "SPARK_PID_DIR": str(self._dir),
                # Shuffle and block-manager scratch; Spark's default is /tmp.
                "SPARK_LOCAL_DIRS": str(self._dir / "local"),
                "SPARK_DAEMON_MEMORY": self.settings.daemon_memory,
                # The standalone REST submission server would open port 6066.
                "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
                "PYSPARK_PYTHON": str(self.python), "PYSPARK_DRIVER_PYTHON": str(self.python)}

    def start(self, timeout_s: float = 120.0) -> None:
        self._make_scratch()
        self.port, self.ui_port = free_port(), free_port()
        t0 = time.monotonic()
        with console.status("Starting Spark (Master + 1 Worker)"):
            self.leader = ManagedProcess(
                "spark-master", [str(self.home / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master",
                                 "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui_port)],
                self.log_dir / "spark-master.log", env=self.env())
            self.start_worker()
            self.await_workers(1, timeout_s)
        console.print(f"[green]✓[/] Spark ready at {self.url} in {time.monotonic() - t0:.1f} s")

    def start_worker(self) -> ManagedProcess:
        n = len(self.workers)
        s = self.settings
        work = self.scratch / f"worker-{n}"
        proc = ManagedProcess(
            f"spark-worker-{n}",
            [str(self.home / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker", self.url,
             "--host", "127.0.0.1", "--port", str(free_port()), "--webui-port", str(free_port()),
             "--cores", str(s.worker_cores), "--memory", s.worker_memory, "--work-dir", str(work)],
            self.log_dir / f"spark-worker-{n}.log", env=self.env())
        self.workers.append(proc)
        return proc

    def state(self) -> dict[str, Any]:
        # /json redirects to /json/.
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def await_workers(self, n: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            # Workers killed earlier by a fault are expected to be dead; the newest is not.
            for p in (self.leader, self.workers[-1] if self.workers else None):
                if p is not None and not p.alive():
                    raise ClusterError(f"{p.name} exited while starting; last lines of {p.log}:\n{tail(p.log)}")
            try:
                alive = [w for w in self.state()["workers"] if w["state"] == "ALIVE"]
                if len(alive) >= n:
                    return
            except (OSError, ValueError):  # the master's UI is not up yet
                pass
            if time.monotonic() > deadline:
                p = self.workers[-1] if self.workers else self.leader
                assert p is not None
                raise ClusterError(f"Spark had no {n} ALIVE worker(s) within {timeout_s:.0f} s; "
                                   f"last lines of {p.log}:\n{tail(p.log)}")
            time.sleep(0.5)
