"""Flink and Spark standalone clusters run from the distribution inside the engine's wheel,
on either backend: the cluster logic (config, ports, readiness, workers) lives here once,
and a Launcher (local processes, or containers) starts each process.

Every process sees the same paths: locally they are the host's, and in containers the
scratch folder, the run's log folder and pipelines/ are mounted at the host's paths, so
checkpoint locations, job files and progress files mean the same on every side.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.backends.base import Launcher
from harness.support import guard
from harness.support.console import console
from harness.support.errors import ClusterError
from harness.support.paths import CACHE
from harness.support.procs import Worker, free_ports
from harness.support.wait import wait_until

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


def megabytes(size: str) -> int:
    """'512m' or '2g' (the workload's memory sizes) in MiB."""
    return int(size[:-1]) * (1024 if size.endswith("g") else 1)


class WheelCluster:
    """A leader (Flink's JobManager, Spark's Master) and workers (TaskManagers, Workers),
    with a scratch folder of their own under .cache/tmp."""

    name = ""  # flink, spark

    def __init__(self, launcher: Launcher, log_dir: Path, cpus: float) -> None:
        self.launcher = launcher
        self.log_dir = log_dir
        self.cpus = cpus  # per process, where the launcher bounds them
        self.leader: Worker | None = None
        self.workers: list[Worker] = []  # every one started, also the killed ones
        self.clients: list[Worker] = []  # CLIs and drivers
        self.killed: set[str] = set()  # idents of the workers a fault killed
        self._dir: Path | None = None

    @property
    def scratch(self) -> Path:
        assert self._dir is not None
        return self._dir

    def _make_scratch(self) -> Path:
        (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=CACHE / "tmp"))
        guard.remember_path(self._dir)
        self.launcher.share(self._dir)
        self.launcher.share(self.log_dir)  # logs and the Spark driver's progress file
        return self._dir

    def live_workers(self) -> list[Worker]:
        return [p for p in self.workers if p.alive()]

    def _processes(self) -> list[Worker]:
        return [*self.clients, *self.workers, *([self.leader] if self.leader else [])]

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self._processes())

    def describe(self) -> dict[str, Any]:
        return {**self.launcher.describe(), **({"cpus_per_container": self.cpus} if self.launcher.limits else {})}

    def stop(self) -> None:
        for p in self._processes():
            p.stop(grace_s=10)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            guard.forget_path(self._dir)
            self._dir = None


@dataclass(frozen=True)
class FlinkSettings:
    taskmanagers: int
    slots: int
    jobmanager_memory: str
    taskmanager_memory: str
    heartbeat_timeout_ms: int

    # Container memory limits: the JVM's process size plus room for what runs beside it
    # (in thread mode the Python functions run inside the TaskManager's process).
    @property
    def jobmanager_container_mb(self) -> int:
        return megabytes(self.jobmanager_memory) + 256

    @property
    def taskmanager_container_mb(self) -> int:
        return megabytes(self.taskmanager_memory) + 512


class FlinkCluster(WheelCluster):
    """A Flink standalone session cluster: the JobManager leads, TaskManagers are the workers."""

    name = "flink"
    JOBMANAGER = "flink-jobmanager"

    def __init__(self, settings: FlinkSettings, launcher: Launcher, log_dir: Path, cpus: float) -> None:
        super().__init__(launcher, log_dir, cpus)
        self.settings = settings
        self.rest_port = 0

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def rest_address(self) -> str:
        """Where the Flink CLI reaches the REST API."""
        return f"{self.launcher.address(self.JOBMANAGER)}:{self.rest_port}"

    @property
    def checkpoints(self) -> Path:
        return self.scratch / "checkpoints"

    def env(self) -> dict[str, str]:
        d = self.scratch
        return {"FLINK_HOME": str(self.launcher.home), "FLINK_CONF_DIR": str(d / "conf"),
                "FLINK_LIB_DIR": str(d / "lib"), "FLINK_LOG_DIR": str(self.log_dir), "FLINK_PID_DIR": str(d / "pid")}

    def configure(self, folder: Path, rest_port: int, rpc_port: int, blob_port: int) -> None:
        """Write the cluster's config.yaml into `folder`/conf, for the REST API on
        `rest_port`; `folder` also holds its checkpoints (and is what the processes share)."""
        self._dir = folder
        self.rest_port = rest_port
        conf = self.scratch / "conf"
        conf.mkdir(parents=True)
        # Flink's own JVM flags for Java 17 (--add-opens ...) come with the wheel's config,
        # the same version in the local venv and in the image.
        home = self.launcher.wheel_home
        wheel_conf = yaml.safe_load((home / "conf" / "config.yaml").read_text())
        java_opts = wheel_conf["env"]["java"]["opts"]["all"]
        s = self.settings
        bind = self.launcher.bind
        python = str(self.launcher.python)
        # Locally everything is 127.0.0.1; in a container a TaskManager finds the address
        # the JobManager reaches it at by itself.
        taskmanager = {"host": self.launcher.host} if self.launcher.host else {}
        config = {
            "env": {"java": {"opts": {"all": java_opts}}},
            "io": {"tmp": {"dirs": str(self.scratch / "tmp")}},
            "jobmanager": {"bind-host": bind, "rpc": {"address": self.launcher.address(self.JOBMANAGER),
                                                      "port": rpc_port},
                           "memory": {"process": {"size": s.jobmanager_memory}},
                           "execution": {"failover-strategy": "region"}},
            "taskmanager": {"bind-host": bind, **taskmanager, "numberOfTaskSlots": s.slots,
                            "memory": {"process": {"size": s.taskmanager_memory}}},
            "rest": {"address": self.launcher.address(self.JOBMANAGER), "bind-address": bind, "port": self.rest_port},
            "blob": {"server": {"port": blob_port}},
            "execution": {"checkpointing": {
                "dir": f"file://{self.checkpoints}", "savepoint-dir": f"file://{self.scratch / 'savepoints'}",
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
        shutil.copy(home / "conf" / "log4j-cli.properties", conf / "log4j-cli.properties")
        # flink-python lives in opt/; thread mode needs it on the cluster's own classpath. The
        # links point into the distribution as the processes see it (the same version, so
        # the same names, in the image).
        lib = self.scratch / "lib"
        lib.mkdir()
        for jar in [*(home / "lib").glob("*.jar"), *(home / "opt").glob("flink-python-*.jar")]:
            (lib / jar.name).symlink_to(self.launcher.home / jar.parent.name / jar.name)

    def start(self, timeout_s: float = 120.0) -> None:
        self.configure(self._make_scratch(), *free_ports(3))
        t0 = time.monotonic()
        where = self.launcher.where
        with console.status(f"Starting Flink (JobManager + {self.settings.taskmanagers} TaskManager) {where}"):
            self.leader = self.launcher.launch(
                self.JOBMANAGER, [str(self.launcher.home / "bin" / "jobmanager.sh"), "start-foreground"],
                self.log_dir / "flink-jobmanager.log", self.env(), cpus=self.cpus,
                memory_mb=self.settings.jobmanager_container_mb, alias=self.JOBMANAGER,
                publish=[self.rest_port])
            for _ in range(self.settings.taskmanagers):
                self.start_worker()
            self.await_taskmanagers(self.settings.taskmanagers, timeout_s)
        console.print(f"[green]✓[/] Flink ready {where} at {self.rest} in {time.monotonic() - t0:.1f} s")

    def submit_options(self) -> list[str]:
        """The CLI's options beside the job's own: none, as the cluster's config.yaml is ours."""
        return []

    def kill_worker(self, instance: int) -> str:
        """SIGKILL a live TaskManager (its process group or container, with its Python
        workers); returns what was hit."""
        live = self.live_workers()
        if not live:
            raise ClusterError("no TaskManager is alive to kill")
        victim = live[instance % len(live)]
        self.killed.add(victim.ident)
        victim.kill()
        return f"{victim.name} ({victim.ident}, with its Python workers)"

    def replace_worker(self, instance: int) -> None:
        """A new TaskManager for a killed one, as a supervisor would start."""
        self.start_worker()

    def start_worker(self) -> Worker:
        n = len(self.workers)
        name = f"flink-taskmanager-{n}"
        proc = self.launcher.launch(name, [str(self.launcher.home / "bin" / "taskmanager.sh"), "start-foreground"],
                                    self.log_dir / f"{name}.log", self.env(), cpus=self.cpus,
                                    memory_mb=self.settings.taskmanager_container_mb, alias=name)
        self.workers.append(proc)
        return proc

    def cli(self, name: str, args: list[str], log: Path) -> Worker:
        """The Flink CLI (`bin/flink ARGS`), run beside the cluster."""
        proc = self.launcher.launch(name, [str(self.launcher.home / "bin" / "flink"), *args], log, self.env(),
                                    cpus=self.cpus, memory_mb=1024)
        self.clients.append(proc)
        return proc

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def request(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.rest + path, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def await_taskmanagers(self, n: int, timeout_s: float) -> None:
        wait_until(lambda: self.get("/overview")["taskmanagers"] >= n, timeout_s,
                   f"{n} TaskManager(s) to register with Flink", watch=[self.leader, *self.workers],
                   log=self.leader.log if self.leader else None,
                   retry_on=(OSError, ValueError))  # the REST port is not up yet


@dataclass(frozen=True)
class SparkSettings:
    worker_cores: int
    worker_memory: str
    daemon_memory: str  # heap of the Master and Worker JVMs themselves
    driver_memory: str
    workers: int = 1

    # Container memory limits: each JVM's heap plus room for what runs beside it.
    @property
    def master_container_mb(self) -> int:
        return megabytes(self.daemon_memory) + 256

    @property
    def worker_container_mb(self) -> int:
        """The Worker's own heap, its executors' (worker_memory) and their Python workers'."""
        return megabytes(self.daemon_memory) + megabytes(self.worker_memory) + 1024

    @property
    def driver_container_mb(self) -> int:
        """The driver JVM, the job's Python process and its stateful-API Python worker."""
        return megabytes(self.driver_memory) + 1024


class SparkCluster(WheelCluster):
    """A Spark standalone cluster: the Master leads, Workers host the executors, and the
    harness runs client-mode drivers beside them. `bin/spark-class` execs the JVM, so each
    process (or container) is the JVM itself."""

    name = "spark"
    MASTER = "spark-master"

    def __init__(self, settings: SparkSettings, launcher: Launcher, log_dir: Path, cpus: float) -> None:
        super().__init__(launcher, log_dir, cpus)
        self.settings = settings
        self.port = 0
        self.ui_port = 0

    @property
    def url(self) -> str:
        return f"spark://{self.launcher.address(self.MASTER)}:{self.port}"

    def env(self) -> dict[str, str]:
        d = self.scratch
        env = {"SPARK_LOG_DIR": str(self.log_dir), "SPARK_PID_DIR": str(d),
               # Shuffle and block-manager scratch; Spark's default is /tmp.
               "SPARK_LOCAL_DIRS": str(d / "local"),
               "SPARK_DAEMON_MEMORY": self.settings.daemon_memory,
               # The standalone REST submission server would open port 6066.
               "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
               "PYSPARK_PYTHON": str(self.launcher.python), "PYSPARK_DRIVER_PYTHON": str(self.launcher.python),
               "SPARK_HOME": str(self.launcher.home)}
        if self.launcher.host:
            env["SPARK_LOCAL_IP"] = self.launcher.host
        return env

    def _spark_class(self, main: str) -> list[str]:
        return [str(self.launcher.home / "bin" / "spark-class"), f"org.apache.spark.deploy.{main}"]

    def start(self, timeout_s: float = 120.0) -> None:
        self._make_scratch()
        self.port, self.ui_port = free_ports(2)
        t0 = time.monotonic()
        where = self.launcher.where
        n = self.settings.workers
        with console.status(f"Starting Spark (Master + {n} Worker{'s' * (n > 1)}) {where}"):
            self.leader = self.launcher.launch(
                self.MASTER, [*self._spark_class("master.Master"), "--host", self.launcher.address(self.MASTER),
                              "--port", str(self.port), "--webui-port", str(self.ui_port)],
                self.log_dir / "spark-master.log", self.env(), cpus=self.cpus,
                memory_mb=self.settings.master_container_mb, alias=self.MASTER, publish=[self.ui_port])
            for _ in range(n):
                self.start_worker()
            self.await_workers(n, timeout_s)
        console.print(f"[green]✓[/] Spark ready {where} at {self.url} in {time.monotonic() - t0:.1f} s")

    def start_worker(self) -> Worker:
        n = len(self.workers)
        s = self.settings
        name = f"spark-worker-{n}"
        port, ui_port = free_ports(2)
        proc = self.launcher.launch(
            name, [*self._spark_class("worker.Worker"), self.url, "--host", self.launcher.address(name),
                   "--port", str(port), "--webui-port", str(ui_port), "--cores", str(s.worker_cores),
                   "--memory", s.worker_memory, "--work-dir", str(self.scratch / name)],
            self.log_dir / f"{name}.log", self.env(), cpus=self.cpus, memory_mb=s.worker_container_mb, alias=name)
        self.workers.append(proc)
        return proc

    def submit(self, name: str, args: list[str], conf: dict[str, str], log: Path) -> Worker:
        """A client-mode driver: `spark-submit` of ARGS against this cluster."""
        host = self.launcher.address(name)
        conf = {**conf, "spark.driver.host": host, "spark.driver.bindAddress": self.launcher.bind}
        proc = self.launcher.launch(
            name, [str(self.launcher.home / "bin" / "spark-submit"), "--master", self.url, "--deploy-mode", "client",
                   "--driver-memory", self.settings.driver_memory,
                   *(a for k, v in conf.items() for a in ("--conf", f"{k}={v}")), *args],
            log, self.env(), cpus=self.cpus, memory_mb=self.settings.driver_container_mb, alias=host)
        self.clients.append(proc)
        return proc

    def state(self) -> dict[str, Any]:
        # /json redirects to /json/.
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def await_workers(self, n: int, timeout_s: float) -> None:
        newest = self.workers[-1] if self.workers else None
        shown = newest or self.leader
        wait_until(lambda: len([w for w in self.state()["workers"] if w["state"] == "ALIVE"]) >= n, timeout_s,
                   f"{n} ALIVE Spark worker(s)",
                   # Workers killed earlier by a fault are expected to be dead; the newest is not.
                   watch=[self.leader, newest], log=shown.log if shown else None,
                   retry_on=(OSError, ValueError))  # the master's UI is not up yet
