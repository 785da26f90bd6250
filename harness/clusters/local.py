"""Kafka in KRaft mode as local JVM processes on 127.0.0.1 (the `local` backend)."""
from __future__ import annotations

import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from harness import artifacts
from harness.errors import ClusterError
from harness.paths import CACHE
from harness.procs import ManagedProcess, free_port, tail
from harness.versions import pinned
from harness.workload import KafkaSettings

from harness.console import console

LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      # Per-request chatter from the log and transaction layers drowns what matters.
      - name: kafka.log
        level: WARN
      - name: org.apache.kafka.storage
        level: WARN
"""


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class LocalKafka:
    """One broker (or three, for replication) in combined broker+controller mode."""

    backend = "local"

    def __init__(self, settings: KafkaSettings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.nodes: dict[int, ManagedProcess] = {}
        self._started: list[ManagedProcess] = []  # also the killed ones, for CPU totals
        self._ports: dict[int, tuple[int, int]] = {}
        self._data: Path | None = None
        self.bootstrap = ""
        self._admin: AdminClient | None = None

    @property
    def version(self) -> str:
        return str(pinned()["kafka"]["version"])

    @property
    def data_dir(self) -> Path | None:
        return self._data

    @property
    def replication(self) -> int:
        return self.settings.brokers

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
        log4j.write_text(LOG4J2)
        classpath = f"{lib}/*"
        t0 = time.monotonic()
        with console.status(f"Starting Kafka {self.version} ({n} broker{'s' if n > 1 else ''}, KRaft)"):
            for node in self._ports:
                props = self._write_properties(node, voters)
                fmt = ManagedProcess(
                    f"kafka-format-{node}",
                    [java, "-cp", classpath, f"-Dlog4j2.configurationFile={log4j}", "kafka.tools.StorageTool",
                     "format", "-t", cluster_id, "-c", str(props)],
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

    def kill_node(self, node: int) -> None:
        self.nodes[node].kill()

    def _write_properties(self, node: int, voters: str) -> Path:
        assert self._data is not None
        port, controller = self._ports[node]
        rf = self.replication
        min_isr = 2 if rf >= 3 else 1
        props = {
            "process.roles": "broker,controller",
            "node.id": node,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self._data / f"node-{node}"),
            "auto.create.topics.enable": "false",
            "default.replication.factor": rf,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": rf,
            # Fewer internal partitions than the defaults (50): faster start on 2 cores.
            "offsets.topic.num.partitions": 8,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": 8,
            "group.initial.rebalance.delay.ms": 0,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": min_isr,
        }
        path = self._data / f"server-{node}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

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

    def create_topics(self, partitions: int, names: list[str], config: dict[str, str] | None = None) -> None:
        topics = [NewTopic(n, num_partitions=partitions, replication_factor=self.replication, config=config or {})
                  for n in names]
        for name, fut in self.admin().create_topics(topics, operation_timeout=30).items():
            try:
                fut.result(timeout=60)
            except Exception as e:
                raise ClusterError(f"could not create topic {name}: {e}") from None

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self._started)

    def stop(self) -> None:
        self._admin = None
        for p in self.nodes.values():
            p.stop(grace_s=10)
        if self._data is not None:
            shutil.rmtree(self._data, ignore_errors=True)
            self._data = None
