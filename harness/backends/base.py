"""The one seam between a run and where it runs: a Backend makes the Kafka cluster, and the
Kafka cluster makes the launchers that start the engines' processes beside it. Engines and
the Flink and Spark cluster logic see only these protocols, never which backend it is."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka.admin import AdminClient

from harness.backends.cluster_file import ClusterFile
from harness.support.procs import Worker
from harness.workload.schema import KafkaSettings, Workload


@dataclass(frozen=True)
class Runtime:
    """An engine's Python runtime: its local venv's `python`, the `package` whose bundled
    distribution the cluster runs (pyflink, pyspark) and the `image` that holds the same
    runtime for containers (built, or found, when first asked for)."""

    python: Path
    package: str
    image: Callable[[], str]


class Launcher(Protocol):
    """Starts the processes of an engine's cluster (wheel.py) on one backend. Paths are
    the same on both sides of it: containers mount what they share at the host's paths."""

    where: str  # for people: "as local processes", "in containers"
    bind: str  # the address servers bind to
    host: str | None  # the address every process advertises, when they share one
    limits: bool  # whether `cpus` and `memory_mb` bound each process
    home: Path  # the distribution inside the engine's wheel, as the processes see it
    wheel_home: Path  # the same distribution on this host, to read its default config from
    python: Path  # the engine runtime's python, as the processes see it

    def address(self, alias: str) -> str: ...  # how the other processes reach the one named `alias`

    def jar(self, jar: Path) -> Path: ...  # where a jar the harness resolved is, as the processes see it

    def share(self, path: Path) -> None: ...  # make a host folder visible (read-write) to the processes

    def launch(self, name: str, argv: Sequence[str], log: Path, env: Mapping[str, str], cpus: float,
               memory_mb: int, alias: str | None = None, publish: Sequence[int] = ()) -> Worker:
        """Start one process. `alias`: the name others reach it by; `publish`: ports this
        host must reach on 127.0.0.1; `cpus`/`memory_mb`: a container's limits."""
        ...

    def describe(self) -> dict[str, object]: ...


class KafkaCluster(Protocol):
    bootstrap: str  # host:port list reachable from this host
    engine_bootstrap: str  # the same brokers as the engine's own processes reach them
    processor_bootstrap: str  # the same again, as what launch_python starts reaches them
    # Every consumer group, transactional id and job a run creates is named `<names>-...`:
    # unique per cluster, so that on a cluster the run did not start it can find what it made.
    names: str
    # The cluster file when the services exist already (the engines attach to its Flink and
    # Spark clusters instead of starting their own); None when the run starts them.
    existing: ClusterFile | None

    @property
    def client(self) -> dict[str, str]: ...  # the harness's clients' settings: bootstrap.servers, TLS, SASL

    @property
    def engine_client(self) -> dict[str, str]: ...  # the engines' own settings beside their bootstrap

    def topics(self, settings: KafkaSettings) -> KafkaSettings: ...  # the workload's topics as named here

    def launch_python(self, name: str, script: Path, args: Sequence[str], log: Path, env: Mapping[str, str],
                      cpus: float, memory_mb: int) -> Worker:
        """Run pipeline code (a script under pipelines/, which it may import from) beside the
        brokers: a local process, or a container on their network with those limits."""
        ...

    def launcher(self, runtime: Runtime) -> Launcher: ...  # starts an engine's cluster beside the brokers

    @property
    def version(self) -> str: ...

    def start(self, timeout_s: float = 120.0) -> str: ...

    def admin(self) -> AdminClient: ...

    def create_topics(self, partitions: int, names: list[str], config: dict[str, str] | None = None) -> None: ...

    def cpu_seconds(self) -> float | None: ...  # None: not measured (a cluster the run did not start)

    def kill_broker(self, instance: int) -> str: ...  # a fault; returns what was hit

    def restart_broker(self, instance: int) -> None: ...  # the same node again, on its data

    def check_health(self) -> None: ...  # raises ClusterError if a broker exited without a fault

    def describe(self) -> dict[str, object]: ...

    def stop(self) -> None: ...


class Backend(Protocol):
    """Where a run's clusters run, chosen once per command (`choose`), with the reason."""

    name: str  # "local", "containers": recorded with every result
    why: str  # how it was chosen: asked for, or what `auto` found
    # Processes outside the harness's tree that work for the run (the Docker daemons), so
    # their CPU is not counted as another program's disturbance.
    daemons: frozenset[str]

    def prepare(self, engine_images: Sequence[Callable[[], str]]) -> list[str]:
        """Make the backend ready for runs of engines with these images (built now rather
        than during a run); returns what was done, a line each."""
        ...

    def begin(self) -> list[str]:
        """Before each run: what a crashed run left behind is removed; returns a line each."""
        ...

    # The cluster file the run uses, as recorded with the results (redacted); None when
    # the backend starts its own clusters.
    cluster: dict[str, Any] | None

    def check(self, wl: Workload, rows: list[str]) -> None:
        """Refuse (WorkloadError) rows or faults this backend cannot run, before anything starts."""
        ...

    def kafka(self, settings: KafkaSettings, log_dir: Path) -> KafkaCluster: ...

    def protection(self, wl: Workload) -> dict[str, Any]:
        """How the driver and collector are kept from being starved by what they measure."""
        ...

    def describe(self) -> str: ...  # one line for people, with `why`
