"""The `containers` backend: Kafka brokers as containers on a network of their own, built
from docker/kafka/ with the same jars and the same server.properties as the local backend.

Each node listens twice: INTERNAL on kafka-<n>:9092 for other containers on the network,
EXTERNAL on 127.0.0.1:<port> for the driver, collector and engines on this host (the port
is published under the same number, so what the broker advertises is what answers).
"""
from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.backends import docker, images
from harness.backends.local import Brokers, broker_properties
from harness.support import guard
from harness.support.console import console
from harness.support.errors import ClusterError
from harness.support.names import safe_name
from harness.support.paths import CACHE, PIPELINES
from harness.support.procs import ManagedProcess, free_ports
from harness.support.wait import wait_until
from harness.workload.schema import KafkaSettings

INTERNAL_PORT = 9092
CONTROLLER_PORT = 9093
IMAGE_PYTHON = Path("/opt/venv/bin/python")  # the engine images' runtime (docker/flink, docker/spark)
IMAGE_JARS = Path("/opt/showdown/jars")

# Run with the image's python inside a container: SIGKILL the processes whose command line
# contains argv[1], and their descendants; prints how many matched.
KILL_MATCHING = """
import os, signal, sys
procs = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode(errors="replace")
        ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except OSError:
        continue
    procs[int(pid)] = (ppid, cmd)
hit = {p for p, (_, cmd) in procs.items() if sys.argv[1] in cmd and p != os.getpid()}
victims, grew = set(hit), True
while grew:
    more = {p for p, (pp, _) in procs.items() if pp in victims} - victims
    victims |= more
    grew = bool(more)
for p in victims:
    try:
        os.kill(p, signal.SIGKILL)
    except ProcessLookupError:
        pass
print(len(hit))
"""


@dataclass(frozen=True)
class Mount:
    """A host folder bind-mounted into a container (--mount, not -v: paths may hold colons,
    as a run's log folder named after `spark:idempotent` does)."""

    source: Path
    target: Path
    readonly: bool = False

    @property
    def spec(self) -> str:
        if "," in f"{self.source}{self.target}":
            raise ClusterError(f"cannot mount a path with a comma into a container: {self.source}")
        return f"type=bind,source={self.source},target={self.target}" + (",readonly" if self.readonly else "")


class ContainerProcess:
    """A container run as an engine's process: killed with `docker kill -s KILL`, its CPU
    from its cgroup, its output followed into the run's log folder."""

    def __init__(self, name: str, image: str, argv: Sequence[str], log: Path, network: str,
                 env: Mapping[str, str], mounts: Sequence[Mount], cpus: float, memory_mb: int,
                 alias: str | None = None, publish: Sequence[int] = ()) -> None:
        """`alias`: its name on the network; `publish`: ports also reachable on 127.0.0.1
        under the same number."""
        self.name = name
        self.log = log
        self._cpu = 0.0
        self.id = docker.run(
            "run", "-d", "--label", docker.LABEL, "--name", f"{network}-{safe_name(name)}-{uuid.uuid4().hex[:4]}",
            "--network", network, *(["--network-alias", safe_name(alias)] if alias else []),
            *(a for port in publish for a in ("-p", f"127.0.0.1:{port}:{port}")),
            f"--cpus={cpus}", f"--memory={memory_mb}m",
            *(a for k, v in env.items() for a in ("-e", f"{k}={v}")),
            *(a for m in mounts for a in ("--mount", m.spec)),
            image, *argv)
        guard.remember_container(self.id)
        self._follow = ManagedProcess(f"{name}-logs", [docker.cli(), "logs", "-f", self.id], log)
        self._gone = False

    @property
    def ident(self) -> str:
        return f"container {self.id[:12]}"

    def alive(self) -> bool:
        return not self._gone and bool(docker.state(self.id).get("Running"))

    def exit_code(self) -> int | None:
        state = docker.state(self.id)
        return None if not state or state.get("Running") else int(state.get("ExitCode", -1))  # type: ignore[arg-type]

    def wait(self, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.exit_code()
            if code is not None:
                return code
            time.sleep(0.3)
        return None

    def kill_matching(self, pattern: str) -> int:
        out = docker.run("exec", self.id, "python3", "-c", KILL_MATCHING, pattern, check=False)
        return int(out) if out.strip().isdigit() else 0

    def _sample(self) -> None:
        used = docker.cpu_seconds(self.id)
        if used is not None:
            self._cpu = used

    @property
    def cpu_seconds(self) -> float:
        """From the cgroup while the container exists; its last sample once it is gone."""
        if not self._gone:
            self._sample()
        return self._cpu

    def kill(self) -> None:
        self._sample()
        docker.run("kill", "-s", "KILL", self.id, check=False)
        self._follow.stop(grace_s=2)

    def stop(self, grace_s: float = 10.0) -> None:
        if self._gone:
            return
        self._sample()
        docker.run("stop", "-t", str(int(grace_s)), self.id, check=False, timeout_s=grace_s + 30)
        self._follow.wait(timeout_s=2)  # `docker logs -f` ends with the container, once it has copied all
        docker.run("rm", "-f", self.id, check=False)
        guard.forget_container(self.id)
        self._follow.stop(grace_s=2)
        self._gone = True


class ContainerLauncher:
    """Engine cluster processes as containers of an engine image on the brokers' network.
    Shared folders are mounted at the host's paths, pipelines/ read-only."""

    backend = "containers"
    bind = "0.0.0.0"
    python = IMAGE_PYTHON

    def __init__(self, image: str, home: Path, wheel_home: Path, network: str) -> None:
        self.image = image
        self.home = home
        self.wheel_home = wheel_home
        self.network = network
        self.mounts = [Mount(PIPELINES, PIPELINES, readonly=True)]

    def address(self, alias: str) -> str:
        return safe_name(alias)

    def jar(self, jar: Path) -> Path:
        return IMAGE_JARS / jar.name

    def share(self, path: Path) -> None:
        self.mounts.append(Mount(path, path))

    def launch(self, name: str, argv: Sequence[str], log: Path, env: Mapping[str, str], cpus: float,
               memory_mb: int, alias: str | None = None, publish: Sequence[int] = ()) -> ContainerProcess:
        return ContainerProcess(name, self.image, argv, log, self.network, env, self.mounts, cpus, memory_mb,
                                alias=alias, publish=publish)

    def describe(self) -> dict[str, object]:
        return {"image": self.image, "network": self.network}


class ContainerKafka(Brokers):
    backend = "containers"

    def __init__(self, settings: KafkaSettings, log_dir: Path) -> None:
        super().__init__(settings, log_dir)
        self.run = uuid.uuid4().hex[:8]
        self.network = f"showdown-{self.run}"
        self._started: list[ContainerProcess] = []  # also the killed ones, for CPU totals
        self._ports: dict[int, int] = {}
        self._dir: Path | None = None
        self._image = ""
        self._python_image = ""
        self._processes: list[ContainerProcess] = []  # engines' containers, removed with the network
        self._cluster_id = uuid.uuid4().hex[:22]
        self.timings: dict[str, float] = {}

    def start(self, timeout_s: float = 120.0) -> str:
        docker.ensure_engine()
        t0 = time.monotonic()
        self._image = images.kafka_image()
        self.timings["image_s"] = round(time.monotonic() - t0, 2)
        (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
        self._dir = Path(tempfile.mkdtemp(prefix="kafka-containers-", dir=CACHE / "tmp"))
        guard.remember_path(self._dir)
        n = self.settings.brokers
        self._ports = dict(zip(range(1, n + 1), free_ports(n)))
        voters = ",".join(f"{i}@kafka-{i}:{CONTROLLER_PORT}" for i in self._ports)
        for node, port in self._ports.items():
            home = self._dir / f"node-{node}"
            (home / "data").mkdir(parents=True)
            (home / "server.properties").write_text(broker_properties(
                node, self.replication, voters,
                listeners=f"INTERNAL://0.0.0.0:{INTERNAL_PORT},EXTERNAL://0.0.0.0:{port},"
                          f"CONTROLLER://0.0.0.0:{CONTROLLER_PORT}",
                advertised=f"INTERNAL://kafka-{node}:{INTERNAL_PORT},EXTERNAL://127.0.0.1:{port}",
                inter_broker="INTERNAL", log_dir="/var/lib/kafka/data"))
        t0 = time.monotonic()
        with console.status(f"Starting Kafka {self.version} in {n} container(s)"):
            docker.run("network", "create", "--label", docker.LABEL, self.network)
            for node in self._ports:
                self.start_node(node)
            self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in self._ports.values())
            self._await_ready(timeout_s)
        self.timings["start_s"] = round(time.monotonic() - t0, 2)
        console.print(f"[green]✓[/] Kafka {self.version} ready in containers at {self.bootstrap} "
                      f"in {self.timings['start_s']:.1f} s")
        return self.bootstrap

    def start_node(self, node: int) -> None:
        """A fresh container for `node` on its data folder (what survives a killed one)."""
        assert self._dir is not None
        s = self.settings
        self.nodes[node] = proc = ContainerProcess(
            f"kafka-{node}", self._image, [], self.log_dir / f"kafka-{node}.log", self.network,
            {"KAFKA_CLUSTER_ID": self._cluster_id, "KAFKA_HEAP_MB": str(s.heap_mb),
             "KAFKA_TRANSACTION_VERSION": str(s.transaction_version)},
            [Mount(self._dir / f"node-{node}", Path("/var/lib/kafka"))], s.cpus, s.container_mb,
            alias=f"kafka-{node}", publish=[self._ports[node]])
        self._started.append(proc)

    @property
    def engine_bootstrap(self) -> str:
        return ",".join(f"kafka-{n}:{INTERNAL_PORT}" for n in self._ports)

    def launch_python(self, name: str, script: Path, args: Sequence[str], log: Path, env: Mapping[str, str],
                      cpus: float, memory_mb: int) -> ContainerProcess:
        if not self._python_image:
            self._python_image = images.python_image()
        inside = f"/app/pipelines/{script.relative_to(PIPELINES)}"
        proc = ContainerProcess(name, self._python_image, ["python", "-u", inside, *args], log, self.network,
                                env, [Mount(PIPELINES, Path("/app/pipelines"), readonly=True)], cpus, memory_mb)
        self._processes.append(proc)
        return proc

    def _await_ready(self, timeout_s: float) -> None:
        def answers() -> bool:
            # docker-proxy accepts connections on a published port before the broker listens,
            # and a client would log every reset: ask only once each broker says it started.
            return all("Kafka Server started" in proc.log.read_text(errors="replace") for proc in self.nodes.values()) \
                and len(self.admin().list_topics(timeout=2).brokers) == len(self.nodes)

        wait_until(answers, timeout_s, "Kafka in containers to answer a metadata request from every broker",
                   watch=self.nodes.values(), log=self.nodes[1].log,
                   retry_on=(Exception,), interval_s=0.3)  # started, but not answering metadata requests yet

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self._started)

    def describe(self) -> dict[str, object]:
        return {"backend": self.backend, "image": self._image, "cpus": self.settings.cpus,
                "memory_mb": self.settings.container_mb, "network": self.network, "timings": self.timings}

    def stop(self) -> None:
        self.close_admin()
        for proc in self._processes:
            proc.stop(grace_s=5)
        for proc in self._started:
            proc.stop(grace_s=0)  # the run is over: no clean broker shutdown needed
        docker.run("network", "rm", self.network, check=False)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            guard.forget_path(self._dir)
            self._dir = None
