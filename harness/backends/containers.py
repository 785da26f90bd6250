"""The `containers` backend: Kafka brokers as containers on a network of their own, built
from docker/kafka/ with the same jars and the same server.properties as the local backend.

Each node listens twice: INTERNAL on kafka-<n>:9092 for other containers on the network,
EXTERNAL on 127.0.0.1:<port> for the driver, collector and engines on this host (the port
is published under the same number, so what the broker advertises is what answers).
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.errors import DockerException, NotFound
from docker.models.containers import Container
from docker.types import Mount as DockerMount
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from harness.backends import daemon, images
from harness.backends.base import Runtime
from harness.backends.local import Brokers, broker_properties
from harness.provision.venvs import package_home
from harness.support import guard
from harness.support.console import console
from harness.support.names import safe_name
from harness.support.paths import CACHE, PIPELINES
from harness.support.procs import free_ports
from harness.support.wait import wait_until
from harness.workload.schema import KafkaSettings, Workload

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
    """A host folder bind-mounted into a container: a mount, not a volume spec, as paths may
    hold colons (a run's log folder named after `spark:idempotent` does)."""

    source: Path
    target: Path
    readonly: bool = False

    @property
    def spec(self) -> DockerMount:
        return DockerMount(str(self.target), str(self.source), type="bind", read_only=self.readonly)


def _follow(container: Container, log: Path) -> None:
    """Copy the container's output into `log` until the container is gone (appended: a
    restarted broker's new container writes on in its node's log)."""
    try:
        with open(log, "ab") as out:
            for chunk in container.logs(stream=True, follow=True):
                out.write(chunk)
                out.flush()
    except (DockerException, OSError, ValueError):
        pass  # removed while being read: the log has what it wrote


class ContainerProcess:
    """A container run as an engine's process (testcontainers' DockerContainer): killed with
    SIGKILL through the engine, its CPU from its cgroup, its output followed into the run's
    log folder."""

    def __init__(self, name: str, image: str, argv: Sequence[str], log: Path, network: Network,
                 env: Mapping[str, str], mounts: Sequence[Mount], cpus: float, memory_mb: int,
                 alias: str | None = None, publish: Sequence[int] = ()) -> None:
        """`alias`: its name on the network; `publish`: ports also reachable on 127.0.0.1
        under the same number (what a broker advertises must be what answers)."""
        self.name = name
        self.log = log
        self._cpu = 0.0
        log.parent.mkdir(parents=True, exist_ok=True)
        self._tc = DockerContainer(image, command=list(argv) or None, env=dict(env))
        self._tc.with_name(f"{network.name}-{safe_name(name)}-{uuid.uuid4().hex[:4]}").with_network(network)
        if alias:
            self._tc.with_network_aliases(safe_name(alias))
        for port in publish:
            self._tc.ports[f"{port}/tcp"] = ("127.0.0.1", port)  # type: ignore[assignment]
        # One call: with_kwargs replaces what an earlier call set.
        self._tc.with_kwargs(labels=daemon.LABELS, nano_cpus=int(cpus * 1e9), mem_limit=f"{memory_mb}m",
                             mounts=[m.spec for m in mounts])
        daemon.reaper()  # decided before the first start: testcontainers reads it there
        self._tc.start()
        self.container = self._tc.get_wrapped_container()
        self.id = self._tc.get_container_id()
        guard.remember_container(self.id)
        self._follower = threading.Thread(target=_follow, args=(self.container, log), name=f"{name}-logs",
                                          daemon=True)
        self._follower.start()
        self._gone = False

    @property
    def ident(self) -> str:
        return f"container {self.id[:12]}"

    def _state(self) -> dict[str, Any]:
        """The container's State (Running, ExitCode, ...); empty once it is removed."""
        if self._gone:
            return {}
        try:
            self.container.reload()
        except NotFound:
            return {}
        return dict(self.container.attrs.get("State") or {})

    def alive(self) -> bool:
        return not self._gone and bool(self._state().get("Running"))

    def exit_code(self) -> int | None:
        state = self._state()
        return None if not state or state.get("Running") else int(state.get("ExitCode", -1))

    def wait(self, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.exit_code()
            if code is not None:
                return code
            time.sleep(0.3)
        return None

    def kill_matching(self, pattern: str) -> int:
        try:
            code, out = self.container.exec_run(["python3", "-c", KILL_MATCHING, pattern])
        except DockerException:
            return 0
        text = out.decode(errors="replace").strip() if code == 0 else ""
        return int(text) if text.isdigit() else 0

    def _sample(self) -> None:
        used = daemon.cpu_seconds(self.id)
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
        try:
            self.container.kill(signal="SIGKILL")
        except DockerException:
            pass  # exited already
        self._follower.join(timeout=2)

    def stop(self, grace_s: float = 10.0) -> None:
        if self._gone:
            return
        self._sample()
        try:
            self.container.stop(timeout=int(grace_s))
        except DockerException:
            pass  # exited or removed already
        self._follower.join(timeout=2)  # the stream ends with the container, once it has copied all
        try:
            self._tc.stop()  # removed, with its anonymous volumes
        except NotFound:
            pass
        guard.forget_container(self.id)
        self._gone = True


class ContainerLauncher:
    """Engine cluster processes as containers of an engine image on the brokers' network.
    Shared folders are mounted at the host's paths, pipelines/ read-only."""

    where = "in containers"
    bind = "0.0.0.0"
    host = None  # each container advertises its own address on the network
    limits = True
    python = IMAGE_PYTHON

    def __init__(self, image: str, home: Path, wheel_home: Path, network: Network | None) -> None:
        """`network`: None for a launcher that only writes configuration (docker-compose's)."""
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
        assert self.network is not None, "a configuration-only launcher starts nothing"
        return ContainerProcess(name, self.image, argv, log, self.network, env, self.mounts, cpus, memory_mb,
                                alias=alias, publish=publish)

    def describe(self) -> dict[str, object]:
        return {"backend": ContainersBackend.name, "image": self.image,
                "network": self.network.name if self.network else None}


class ContainerKafka(Brokers):
    def __init__(self, settings: KafkaSettings, log_dir: Path) -> None:
        super().__init__(settings, log_dir)
        self.network = Network(docker_network_kw={"labels": daemon.LABELS})
        self.network.name = f"showdown-{uuid.uuid4().hex[:8]}"  # readable in `docker ps` (a uuid4 by default)
        self._network_up = False
        self._started: list[ContainerProcess] = []  # also the killed ones, for CPU totals
        self._ports: dict[int, int] = {}
        self._dir: Path | None = None
        self._image = ""
        self._python_image = ""
        self._processes: list[ContainerProcess] = []  # engines' containers, removed with the network
        self._cluster_id = uuid.uuid4().hex[:22]
        self.timings: dict[str, float] = {}

    def start(self, timeout_s: float = 120.0) -> str:
        daemon.ensure_engine()
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
            self.network.create()
            self._network_up = True
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

    def launcher(self, runtime: Runtime) -> ContainerLauncher:
        # docker/flink and docker/spark link the wheel's distribution to /opt/flink, /opt/spark.
        return ContainerLauncher(runtime.image(), Path("/opt") / runtime.package.removeprefix("py"),
                                 package_home(runtime.python, runtime.package), self.network)

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
        return {"backend": ContainersBackend.name, "image": self._image, "cpus": self.settings.cpus,
                "memory_mb": self.settings.container_mb, "network": self.network.name,
                "reaper": daemon.reaper(), "timings": self.timings}

    def stop(self) -> None:
        self.close_admin()
        for proc in self._processes:
            proc.stop(grace_s=5)
        for proc in self._started:
            proc.stop(grace_s=0)  # the run is over: no clean broker shutdown needed
        if self._network_up:
            try:
                self.network.remove()
            except DockerException:
                pass  # a container we did not start joined it: the next run's sweep removes it
            self._network_up = False
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            guard.forget_path(self._dir)
            self._dir = None


class ContainersBackend:
    """Every cluster in containers of images built here, on a network of their own per run."""

    name = "containers"
    daemons = daemon.DAEMONS
    cluster = None

    def __init__(self, why: str = "asked for") -> None:
        self.why = why

    def prepare(self, engine_images: Sequence[Callable[[], str]]) -> list[str]:
        done = f"Docker: {daemon.ensure_engine()}"
        tags = list(dict.fromkeys([images.kafka_image(), *(image() for image in engine_images)]))
        return [done, f"images: {', '.join(tags)}", f"testcontainers' reaper (Ryuk): {daemon.reaper()}"]

    def begin(self) -> list[str]:
        lines = [f"Docker: {daemon.ensure_engine()}", f"testcontainers' reaper (Ryuk): {daemon.reaper()}"]
        left = daemon.remove_leftovers()
        if left:
            lines.append(f"[yellow]removed {len(left)} container(s) an earlier run left behind[/]")
        return lines

    def check(self, wl: Workload, rows: list[str]) -> None:
        pass  # every row and fault runs here

    def kafka(self, settings: KafkaSettings, log_dir: Path) -> ContainerKafka:
        return ContainerKafka(settings, log_dir)

    def protection(self, wl: Workload) -> dict[str, Any]:
        return {"engine_nice": 0,
                "how": "none: the brokers and engines run in containers, each in its own cgroup, which the kernel "
                       "weighs against the instrument's processes as a group"}

    def describe(self) -> str:
        return ("Kafka brokers, Kafka processors and the Flink and Spark clusters in containers built locally, "
                f"on a network of their own ({self.why})")
