"""The `cluster` backend: services that already exist, described by a cluster file
(`--cluster FILE`, backends/cluster_file.py). Nothing is started on them but the run's own
topics, groups and jobs, all named `<prefix>-<run id>-...`; those are removed at the end,
on Ctrl-C, and by the next command against the same cluster when a run was killed.
docs/design/existing-clusters.md says why each piece is as it is."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from harness.backends import cluster_file
from harness.backends.base import Launcher, Runtime
from harness.backends.cluster_file import ClusterFile
from harness.support.clients import release
from harness.support.console import console
from harness.support.env import child_env
from harness.support.errors import ClusterError, WorkloadError
from harness.support.paths import CACHE, PIPELINES
from harness.support.procs import ManagedProcess, engine_nice, tail
from harness.support.wait import wait_until
from harness.workload.schema import KafkaSettings, Workload

# What each run created, until it removed it: a killed run's names are removed by the
# next command against the same cluster (ClusterBackend.begin).
CREATED = CACHE / "cluster-runs"
COMMAND_TIMEOUT_S = 120.0
ADMIN_TIMEOUT_S = 30.0
# Longest a group stays non-empty after its members died: the processors' session timeout
# (engines.<kafka row>.session_timeout_ms, 10 s by default) and the collector's (45 s).
EMPTY_WAIT_S = 90.0
CANCEL_WAIT_S = 60.0
FLINK_ENDED = ("FAILED", "CANCELED", "FINISHED")


def run_command(template: str, instance: int, what: str, log: Path) -> str:
    """Run a fault or CPU command of the cluster file in a shell, `{instance}` filled in,
    with only the ${VAR}s it names from the harness's environment; returns its output."""
    command = template.replace("{instance}", str(instance))
    named = {v: os.environ[v] for v in cluster_file.variables(command) if v in os.environ}
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                              env=child_env(named), stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{what}: `{command}` did not finish in {COMMAND_TIMEOUT_S:.0f} s") from None
    with open(log, "a") as f:
        f.write(f"$ {command}\n{done.stdout}{done.stderr}(exit code {done.returncode})\n")
    if done.returncode != 0:
        raise ClusterError(f"{what}: `{command}` failed with exit code {done.returncode}; last lines of its "
                           f"output (also in {log}):\n{tail(log, 10)}")
    return done.stdout


def cpu_reading(command: str | None, what: str, whose: str, log: Path) -> float | None:
    """The CPU seconds so far of `whose` that a file's `cpu` command prints; None without one."""
    if command is None:
        return None
    out = run_command(command, 0, what, log)
    try:
        return float(out.strip().split()[-1])
    except (ValueError, IndexError):
        raise ClusterError(f"{what} must print {whose} CPU seconds so far (a number), printed "
                           f"{out.strip()[:80]!r}") from None


def remove_names(admin: AdminClient, names: str, wait_s: float = EMPTY_WAIT_S) -> list[str]:
    """Delete every consumer group and topic named `<names>-...`; returns what was deleted.
    A group keeps the members of a process that died without leaving until their session
    times out (a processor a fault killed): such a group is deleted once it is empty."""
    start = f"{names}-"
    listed = admin.list_consumer_groups(request_timeout=ADMIN_TIMEOUT_S).result(timeout=ADMIN_TIMEOUT_S)
    groups = sorted(g.group_id for g in listed.valid if g.group_id.startswith(start))
    pending = list(groups)
    deadline = time.monotonic() + wait_s
    while pending:
        futures = admin.delete_consumer_groups(pending, request_timeout=ADMIN_TIMEOUT_S)
        pending = []
        for group, fut in futures.items():
            try:
                fut.result(timeout=ADMIN_TIMEOUT_S)
            except KafkaException as e:
                if e.args[0].code() != KafkaError.NON_EMPTY_GROUP or time.monotonic() > deadline:
                    raise
                pending.append(group)
        if pending:
            time.sleep(1.0)
    topics = sorted(t for t in admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics if t.startswith(start))
    for topic, fut in (admin.delete_topics(topics, operation_timeout=ADMIN_TIMEOUT_S).items() if topics else []):
        fut.result(timeout=ADMIN_TIMEOUT_S * 2)
    return [*(f"group {g}" for g in groups), *(f"topic {t}" for t in topics)]


def _flink_jobs(rest: str, names: str) -> dict[str, str]:
    """Job id -> state of the jobs named `<names>-...` on the Flink cluster at `rest`."""
    with urllib.request.urlopen(f"{rest}/jobs/overview", timeout=10) as resp:
        jobs = json.loads(resp.read())["jobs"]
    return {str(j["jid"]): str(j["state"]) for j in jobs if str(j["name"]).startswith(f"{names}-")}


def cancel_jobs(rest: str, names: str, wait_s: float = CANCEL_WAIT_S) -> list[str]:
    """Cancel the jobs named `<names>-...` still running on the Flink cluster at `rest`, and
    wait until they are cancelled; returns their ids."""
    cancelled = [jid for jid, state in _flink_jobs(rest, names).items() if state not in FLINK_ENDED]
    for jid in cancelled:
        urllib.request.urlopen(urllib.request.Request(f"{rest}/jobs/{jid}?mode=cancel", method="PATCH"),
                               timeout=10).close()
    wait_until(lambda: all(_flink_jobs(rest, names).get(jid) in FLINK_ENDED for jid in cancelled), wait_s,
               f"the run's Flink jobs on {rest} to be cancelled", retry_on=(OSError, ValueError))
    return cancelled


def _said(e: Exception) -> str:
    if isinstance(e, KafkaException):
        return str(e.args[0].str())
    return f"no answer in {ADMIN_TIMEOUT_S:.0f} s" if isinstance(e, TimeoutError) else str(e)


def _owner_alive(owner: dict[str, Any]) -> bool:
    try:
        return bool(psutil.Process(int(owner["pid"])).create_time() == owner["create_time"])
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


class ExistingKafka:
    """Brokers that exist: reached, never started or stopped; the run's topics and groups
    are created under its names and removed at the end."""

    def __init__(self, cluster: ClusterFile, source: Path, settings: KafkaSettings, log_dir: Path) -> None:
        self.cluster = self.existing = cluster
        self.section = cluster.kafka
        self.source = source
        self.settings = settings
        self.log_dir = log_dir
        self.names = f"{cluster.prefix}-{uuid.uuid4().hex[:8]}"
        self._client = cluster_file.harness_client(self.section)
        self.bootstrap = self._client["bootstrap.servers"]
        self.engine_bootstrap = cluster_file.expand(self.section.engine_bootstrap or self.section.bootstrap,
                                                    "kafka.engine_bootstrap")
        self._admin: AdminClient | None = None
        self._brokers: dict[int, str] = {}
        self._cluster_id: str | None = None
        self._record: Path | None = None
        self._cpu: float | None = None  # the brokers' CPU seconds when the run reached them

    @property
    def client(self) -> dict[str, str]:
        return dict(self._client)

    @property
    def engine_client(self) -> dict[str, str]:
        return cluster_file.engine_client(self.section)

    @property
    def processor_bootstrap(self) -> str:
        return self.bootstrap  # the processors run here, beside the harness

    @property
    def version(self) -> str:
        return "(as found)"

    def topics(self, settings: KafkaSettings) -> KafkaSettings:
        return settings.model_copy(update={
            "transactions_topic": f"{self.names}-{settings.transactions_topic}",
            "decisions_topic": f"{self.names}-{settings.decisions_topic}",
            "windows_topic": f"{self.names}-{settings.windows_topic}"})

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(self._client)
        return self._admin

    def start(self, timeout_s: float = 120.0) -> str:
        with console.status(f"Reaching Kafka at {self.bootstrap} ({self.cluster.name})"):
            try:
                md = self.admin().list_topics(timeout=min(timeout_s, ADMIN_TIMEOUT_S))
                described = self.admin().describe_cluster(request_timeout=ADMIN_TIMEOUT_S).result(
                    timeout=ADMIN_TIMEOUT_S)
                groups = self.admin().list_consumer_groups(request_timeout=ADMIN_TIMEOUT_S).result(
                    timeout=ADMIN_TIMEOUT_S)
            except (KafkaException, TimeoutError) as e:
                raise ClusterError(f"cannot reach Kafka at {self.bootstrap} (kafka.bootstrap of {self.source}) "
                                   f"from this host: {_said(e)}") from None
        start = f"{self.names}-"
        taken = [t for t in md.topics if t.startswith(start)] + \
            [g.group_id for g in groups.valid if g.group_id.startswith(start)]
        if taken:
            raise ClusterError(f"{self.cluster.name}: topics or groups named {start}* exist already "
                               f"({', '.join(taken[:3])}): another run uses these names; nothing was touched")
        self._brokers = {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()}
        self._cluster_id = described.cluster_id
        if self.section.replication > len(self._brokers):
            raise WorkloadError(f"{self.source}: kafka.replication is {self.section.replication}, but the cluster "
                                f"has {len(self._brokers)} broker(s)")
        self._remember()
        self._cpu = self._cpu_now()
        console.print(f"[green]✓[/] Kafka of {self.cluster.name} answers at {self.bootstrap}: "
                      f"{len(self._brokers)} broker(s); this run's names start with {start}")
        return self.bootstrap

    def _remember(self) -> None:
        CREATED.mkdir(parents=True, exist_ok=True)
        self._record = CREATED / f"{self.names}.json"
        me = psutil.Process()
        self._record.write_text(json.dumps({
            "cluster": self.cluster.name, "bootstrap": self.bootstrap, "names": self.names,
            "owner": {"pid": me.pid, "create_time": me.create_time()}}))

    def create_topics(self, partitions: int, names: list[str], config: dict[str, str] | None = None) -> None:
        outside = [n for n in names if not n.startswith(f"{self.names}-")]
        if outside:  # a topic the run could not find to remove
            raise ClusterError(f"topic {outside[0]} is not named under this run's {self.names}-")
        settings = {"retention.ms": "-1", "retention.bytes": "-1", **(config or {})}
        topics = [NewTopic(n, num_partitions=partitions, replication_factor=self.section.replication,
                           config=settings) for n in names]
        for name, fut in self.admin().create_topics(topics, operation_timeout=30).items():
            try:
                fut.result(timeout=60)
            except Exception as e:
                raise ClusterError(f"could not create topic {name} on {self.cluster.name}: {e}") from None

    def _cpu_now(self) -> float | None:
        return cpu_reading(self.section.cpu, f"kafka.cpu of {self.source}", "the brokers'", self.log_dir / "cluster-commands.log")

    def cpu_seconds(self) -> float | None:
        """CPU seconds the brokers used since the run reached them (by the file's command)."""
        now = self._cpu_now()
        return None if now is None or self._cpu is None else now - self._cpu

    def kill_broker(self, instance: int) -> str:
        fault = self.section.faults["broker"]  # checked with the workload before the run
        run_command(fault.kill, instance, "kill:broker", self.log_dir / "cluster-commands.log")
        return f"Kafka broker {instance} of {self.cluster.name} (`{fault.kill.replace('{instance}', str(instance))}`)"

    def restart_broker(self, instance: int) -> None:
        restart = self.section.faults["broker"].restart
        if restart is not None:  # else the platform brings it back by itself
            run_command(restart, instance, "restart of the broker", self.log_dir / "cluster-commands.log")

    def check_health(self) -> None:
        pass  # the brokers are the platform's to watch; a lost one shows in the figures

    def launch_python(self, name: str, script: Path, args: Sequence[str], log: Path, env: Mapping[str, str],
                      cpus: float, memory_mb: int) -> ManagedProcess:
        """A Kafka processor beside the harness, given the variables its settings name."""
        named: dict[str, str] = {}
        for key, value in self.engine_client.items():
            for var in cluster_file.variables(value):
                if var not in os.environ:
                    raise WorkloadError(f"{self.source}: kafka.engine_client.{key} names ${{{var}}}, which is not "
                                        f"set in the environment of the harness, where the processors run")
                named[var] = os.environ[var]
        return ManagedProcess(name, [sys.executable, "-u", str(script), *args], log,
                              env={**env, **named, "PYTHONPATH": str(PIPELINES)}, under_test=True)

    def launcher(self, runtime: Runtime) -> Launcher:
        raise ClusterError("on a cluster file, Flink and Spark are attached to, not started")  # check() refused it

    def describe(self) -> dict[str, object]:
        return {"backend": ClusterBackend.name, "cluster": self.cluster.name, "bootstrap": self.bootstrap,
                "engine_bootstrap": self.engine_bootstrap, "cluster_id": self._cluster_id,
                "brokers": self._brokers, "replication": self.section.replication, "names": self.names,
                "cpu": "by kafka.cpu" if self.section.cpu else "not measured",
                "version": "not read: the Kafka protocol has no version string (ApiVersions only)",
                "not_applied": "the workload's kafka.brokers, heap_mb, cpus and transaction_version: the cluster "
                               "is as it is"}

    def stop(self) -> None:
        if self._record is None:
            self._close_admin()
            return
        try:
            self._close_admin()
            with console.status(f"Removing this run's topics and groups from {self.cluster.name}"):
                # A client of its own: the run's may still hold connections to a broker a fault restarted.
                removed = remove_names(AdminClient(self._client), self.names)
            self._record.unlink(missing_ok=True)
            console.print(f"[green]✓[/] removed from {self.cluster.name}: {len(removed)} topic(s) and group(s) "
                          f"named {self.names}-*")
        except (KafkaException, TimeoutError) as e:
            console.print(f"[yellow]could not remove {self.names}-* from {self.cluster.name} ({_said(e)}); "
                          f"the next command against it will try again[/]")
        finally:
            self._record = None
            self._close_admin()

    def _close_admin(self) -> None:
        if self._admin is not None:
            release(self, "_admin", "the Kafka admin client")


class ClusterBackend:
    """Existing services, as a cluster file describes them."""

    name = "cluster"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.file, self.cluster = cluster_file.load(self.path)
        self.daemons = frozenset(self.file.local_processes)
        self.client = cluster_file.harness_client(self.file.kafka)  # a ${VAR} that is not set: exit 2 now
        self.why = f"--cluster {self.path}"

    def check(self, wl: Workload, rows: list[str]) -> None:
        problem = cluster_file.problem(self.file, wl, rows)
        if problem:
            raise WorkloadError(f"{self.path} with {wl.name}: {problem}")

    def prepare(self, engine_images: Sequence[Callable[[], str]]) -> list[str]:
        return [f"nothing to build: the services of {self.file.name} exist"]

    def begin(self) -> list[str]:
        """Remove what runs against this cluster left when they were killed."""
        lines = []
        for record in sorted(CREATED.glob("*.json")) if CREATED.is_dir() else []:
            try:
                data = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            same = (data.get("cluster"), data.get("bootstrap")) == (self.file.name, self.client["bootstrap.servers"])
            if not same or _owner_alive(data.get("owner") or {}):
                continue
            admin = AdminClient(self.client)
            try:
                jobs = cancel_jobs(self.file.flink.rest.rstrip("/"), str(data["names"])) if self.file.flink else []
                removed = remove_names(admin, str(data["names"]))
            except (KafkaException, TimeoutError, OSError, ValueError, ClusterError) as e:
                lines.append(f"[yellow]could not remove what a killed run left ({data['names']}-*): {_said(e)}[/]")
                continue
            if jobs:
                lines.append(f"[yellow]cancelled {len(jobs)} Flink job(s) a killed run left ({data['names']}-*)[/]")
            record.unlink(missing_ok=True)
            lines.append(f"[yellow]removed {len(removed)} topic(s) and group(s) a killed run left on "
                         f"{self.file.name} ({data['names']}-*)[/]")
        return lines

    def kafka(self, settings: KafkaSettings, log_dir: Path) -> ExistingKafka:
        return ExistingKafka(self.file, self.path, settings, log_dir)

    def protection(self, wl: Workload) -> dict[str, Any]:
        nice = engine_nice()
        return {"engine_nice": nice,
                "how": f"the Kafka processors run beside the instrument at niceness {nice}; the brokers run "
                       f"elsewhere, on the cluster of {self.file.name}"}

    def describe(self) -> str:
        return f"existing services of {self.file.name} ({self.why}); this host runs the driver and collector"
