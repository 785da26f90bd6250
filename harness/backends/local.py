"""The `local` backend: Kafka (KRaft) and the engines' clusters as local processes on 127.0.0.1."""
from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from harness.backends.base import Runtime
from harness.provision import artifacts
from harness.provision.venvs import package_home
from harness.provision.versions import pinned
from harness.support import guard
from harness.support.clients import release
from harness.support.console import console
from harness.support.env import child_env
from harness.support.errors import ClusterError
from harness.support.paths import CACHE, PIPELINES, ROOT
from harness.support.procs import ManagedProcess, Worker, engine_nice, free_ports, niced_brokers, port_taken, tail
from harness.support.wait import wait_until
from harness.workload.schema import KafkaSettings, Workload

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
        # A killed broker restarted in place registers again only once its previous
        # incarnation's session expired (default 9 s: a restart took 15 s instead of 7).
        "broker.session.timeout.ms": 4000,
        "broker.heartbeat.interval.ms": 1000,
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
        self.nodes: dict[int, Worker] = {}  # node id -> its current process or container
        self._admin: AdminClient | None = None
        self._killed: set[str] = set()  # idents of the brokers a fault killed
        self.names = f"showdown-{uuid.uuid4().hex[:8]}"
        self.existing = None

    @property
    def client(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap}

    @property
    def engine_client(self) -> dict[str, str]:
        return {}

    @property
    def processor_bootstrap(self) -> str:
        return self.engine_bootstrap  # the processors run where the engines' processes run

    def topics(self, settings: KafkaSettings) -> KafkaSettings:
        return settings  # the cluster is the run's own

    def start_node(self, node: int) -> None:
        """Start `node` (again) on its data folder."""
        raise NotImplementedError

    def _node(self, instance: int) -> int:
        return sorted(self.nodes)[instance % len(self.nodes)]

    def kill_broker(self, instance: int) -> str:
        node = self._node(instance)
        proc = self.nodes[node]
        self._killed.add(proc.ident)  # before the kill: the health check runs meanwhile
        proc.kill()
        return f"Kafka broker {node} ({proc.ident})"

    def check_health(self) -> None:
        """A broker that exited without a fault killing it ends the row, with its log."""
        for node, proc in self.nodes.items():
            if proc.ident not in self._killed and not proc.alive():
                raise ClusterError(f"Kafka broker {node} ({proc.ident}) exited by itself (code {proc.exit_code()}); "
                                   f"last lines of {proc.log}:\n{tail(proc.log, 15)}")

    def close_admin(self) -> None:
        """Drop the admin client without ever blocking: librdkafka's destroy can wait
        forever on a broker that died (Admin_dealloc -> rd_kafka_destroy_app)."""
        if self._admin is not None:
            release(self, "_admin", "the Kafka admin client")

    def restart_broker(self, instance: int) -> None:
        self.start_node(self._node(instance))

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
        n = self.settings.brokers
        t0 = time.monotonic()
        with console.status(f"Starting Kafka {self.version} ({n} broker{'s' if n > 1 else ''}, KRaft)"):
            for attempt in range(1, 4):
                try:
                    self._start_once(timeout_s)
                    break
                except ClusterError:
                    # Another program took a chosen port between the choice and the bind: new ports.
                    if attempt == 3 or not any(port_taken(p.log) for p in self.nodes.values()):
                        raise
                    console.print("[yellow]a Kafka port was taken meanwhile; starting again on new ports[/]")
                    self.stop()
        console.print(f"[green]✓[/] Kafka {self.version} ready at {self.bootstrap} in {time.monotonic() - t0:.1f} s")
        return self.bootstrap

    def _start_once(self, timeout_s: float) -> None:
        java = artifacts.require_java()
        lib = artifacts.jars("kafka")
        (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
        self._data = Path(tempfile.mkdtemp(prefix="kafka-", dir=CACHE / "tmp"))
        guard.remember_path(self._data)
        n = self.settings.brokers
        ports = free_ports(2 * n)
        self._ports = {i: (ports[2 * i - 2], ports[2 * i - 1]) for i in range(1, n + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in self._ports.items())
        cluster_id = uuid.uuid4().hex[:22]
        log4j = self._data / "log4j2.yaml"
        shutil.copy(KAFKA_LOG4J2, log4j)
        classpath = f"{lib}/*"
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

    def start_node(self, node: int) -> None:
        assert self._data is not None
        java = artifacts.require_java()
        heap = self.settings.heap_mb
        self.nodes[node] = proc = ManagedProcess(
            f"kafka-{node}",
            [java, f"-Xms{heap}m", f"-Xmx{heap}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
             "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={self._data / 'log4j2.yaml'}",
             "-cp", f"{artifacts.jars('kafka')}/*", "kafka.Kafka", str(self._data / f"server-{node}.properties")],
            self.log_dir / f"kafka-{node}.log", under_test=niced_brokers(self.replication),
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
        admin: list[AdminClient] = []

        def answers() -> bool:
            # A client made before the port listens would log every refused connection.
            if not admin and all(_listening(p) for p, _ in self._ports.values()):
                admin.append(self.admin())
            return bool(admin) and len(admin[0].list_topics(timeout=2).brokers) == len(self.nodes)

        wait_until(answers, timeout_s, "Kafka to answer a metadata request from every broker",
                   watch=self.nodes.values(), log=next(iter(self.nodes.values())).log,
                   retry_on=(Exception,), interval_s=0.3)  # listening, but not answering metadata requests yet

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self._started)

    def describe(self) -> dict[str, object]:
        return {"backend": LocalBackend.name, "heap_mb": self.settings.heap_mb}

    @property
    def engine_bootstrap(self) -> str:
        return self.bootstrap

    def launcher(self, runtime: Runtime) -> LocalLauncher:
        return LocalLauncher(runtime.python, runtime.package)

    def launch_python(self, name: str, script: Path, args: Sequence[str], log: Path, env: Mapping[str, str],
                      cpus: float, memory_mb: int) -> ManagedProcess:
        # Limits apply to containers; a local process shares the machine like everything else.
        return ManagedProcess(name, [sys.executable, "-u", str(script), *args], log,
                              env={**env, "PYTHONPATH": str(PIPELINES)}, under_test=True)

    def stop(self) -> None:
        self.close_admin()
        for p in self.nodes.values():
            p.stop(grace_s=10)
        self.nodes = {}
        if self._data is not None:
            shutil.rmtree(self._data, ignore_errors=True)
            guard.forget_path(self._data)
            self._data = None


class LocalLauncher:
    """Engine cluster processes as local processes on 127.0.0.1, each in its own group."""

    where = "as local processes"
    bind = host = "127.0.0.1"
    limits = False

    def __init__(self, python: Path, package: str) -> None:
        artifacts.require_java()
        self.python = python
        self.home = self.wheel_home = package_home(python, package)

    def address(self, alias: str) -> str:
        return "127.0.0.1"

    def jar(self, jar: Path) -> Path:
        return jar

    def share(self, path: Path) -> None:
        pass  # one filesystem

    def launch(self, name: str, argv: Sequence[str], log: Path, env: Mapping[str, str], cpus: float,
               memory_mb: int, alias: str | None = None, publish: Sequence[int] = ()) -> ManagedProcess:
        # Limits apply to containers; a local process shares the machine like everything else.
        # The runtime's venv comes first on PATH: pemja (Flink's thread mode) embeds whichever
        # python is found there, not python.executable.
        path = f"{self.python.parent}:{child_env().get('PATH', '')}"
        return ManagedProcess(name, argv, log, env={**env, "PATH": path}, under_test=True)

    def describe(self) -> dict[str, object]:
        return {"backend": LocalBackend.name, "python": str(self.python)}


class LocalBackend:
    """Every cluster as local processes: needs only Java (and the jars and venvs each
    engine installs)."""

    name = "local"
    daemons: frozenset[str] = frozenset()
    cluster = None

    def __init__(self, why: str = "asked for") -> None:
        self.why = why

    def prepare(self, engine_images: Sequence[Callable[[], str]]) -> list[str]:
        return []

    def begin(self) -> list[str]:
        return []

    def check(self, wl: Workload, rows: list[str]) -> None:
        pass  # every row and fault runs here

    def kafka(self, settings: KafkaSettings, log_dir: Path) -> LocalKafka:
        return LocalKafka(settings, log_dir)

    def protection(self, wl: Workload) -> dict[str, Any]:
        nice = engine_nice()
        if not nice:
            return {"engine_nice": 0,
                    "how": "none: the brokers and engines run at the instrument's priority (--engine-nice 0)"}
        niced = "the brokers and engines" if niced_brokers(wl.kafka.brokers) else \
            "the engines (not the replicated brokers: docs/probes/replicated-produce.md)"
        return {"engine_nice": nice,
                "how": f"{niced} run at niceness {nice}, and so do their sessions' autogroups where the "
                       f"kernel groups by session; the load driver, collector and harness at 0"}

    def describe(self) -> str:
        return f"local processes on 127.0.0.1 ({self.why})"
