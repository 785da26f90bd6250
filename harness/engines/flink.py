"""The Flink architecture: the PyFlink job in pipelines/flink/ on a standalone session
cluster, exactly-once into Kafka through checkpoints and Kafka transactions."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from harness.backends import images
from harness.backends.base import KafkaCluster, Runtime
from harness.engines.attached import AttachedFlink
from harness.engines.base import EngineContext
from harness.engines.clusters import FlinkCluster, FlinkSettings
from harness.provision import artifacts, venvs
from harness.provision.versions import pinned, runtime
from harness.support import procs
from harness.support.errors import ClusterError
from harness.support.paths import PIPELINES
from harness.support.procs import tail
from harness.support.wait import wait_until
from harness.workload.engine_options import KINDS, FlinkOptions
from harness.workload.schema import Fault

JOB = PIPELINES / "flink" / "job.py"
RULES = PIPELINES / "rules.py"


def cluster(options: FlinkOptions, kafka: KafkaCluster, log_dir: Path, python: Path) -> FlinkCluster:
    """A Flink session cluster of `options` beside `kafka` (not started yet), or the cluster
    file's when the services exist (attached to, not started); `python`: the local runtime
    (venvs.ensure), whose wheel holds the distribution and the CLI."""
    if kafka.existing is not None and kafka.existing.flink is not None:
        return AttachedFlink(kafka.existing.flink, kafka.names, python, log_dir)
    o = options
    return FlinkCluster(FlinkSettings(o.taskmanagers, o.slots, o.jobmanager_memory, o.taskmanager_memory,
                                      o.heartbeat_timeout_ms),
                        kafka.launcher(Runtime(python, "pyflink", images.flink_image)), log_dir, o.container_cpus)


class FlinkEngine:
    applies_rules = True
    fault_actions = KINDS["flink"].faults

    def __init__(self, name: str, options: FlinkOptions) -> None:
        self.name = name
        self.options = options
        self.cluster: FlinkCluster | None = None
        self.job_id: str | None = None
        self.timings: dict[str, Any] = {}
        self._python: Path | None = None
        self._jar: Path | None = None
        self._config: dict[str, Any] = {}
        self._ctx: EngineContext | None = None
        self._resume_from: str | None = None
        self.submissions: list[Path] = []  # one CLI log per submission

    def prepare(self) -> None:
        # Also on a cluster the run did not start, whose own slots are checked once reached.
        if self.options.parallelism > self.options.taskmanagers * self.options.slots:
            raise ClusterError(f"engines.{self.name}.parallelism ({self.options.parallelism}) exceeds "
                               f"taskmanagers x slots ({self.options.taskmanagers * self.options.slots})")
        self._python = venvs.ensure("flink", runtime("flink"))
        self._jar = next(artifacts.jars("flink").glob("flink-sql-connector-kafka-*.jar"))

    def start(self, ctx: EngineContext) -> None:
        assert self._python is not None
        o = self.options
        self.cluster = cluster(o, ctx.kafka, ctx.log_dir, self._python)
        t0 = time.monotonic()
        self.cluster.start()
        if isinstance(self.cluster, AttachedFlink):
            slots = self.cluster.get("/overview")["slots-total"]
            if o.parallelism > slots:
                raise ClusterError(f"engines.{self.name}.parallelism ({o.parallelism}) exceeds the {slots} slot(s) "
                                   f"of the Flink cluster at {self.cluster.rest}")
        self.timings["cluster_start_s"] = round(time.monotonic() - t0, 2)
        wl = ctx.workload
        self._ctx = ctx
        self._config = {
            "engine": self.name, "bootstrap": ctx.kafka.engine_bootstrap,
            "input_topic": wl.kafka.transactions_topic, "output_topic": wl.kafka.decisions_topic,
            "group_id": f"{ctx.names}-{self.name}", "job_name": f"{ctx.names}-{self.name}",
            "transactional_id_prefix": f"{ctx.names}-{self.name}",
            "rules": wl.pipeline_rules(), "windows": wl.pipeline_windows(),
            "parallelism": o.parallelism, "execution_mode": o.execution_mode,
            "delivery": o.delivery, "checkpoint_interval_ms": o.checkpoint_interval_ms,
            "transaction_timeout_ms": o.transaction_timeout_ms,
        }
        self.timings["submit_to_running_s"] = self._deploy(savepoint=None)

    def _deploy(self, savepoint: str | None) -> float:
        """Submit the job (from `savepoint`, if given) and wait until it runs; returns seconds."""
        t0 = time.monotonic()
        self.job_id = self._submit(savepoint)
        self._await_running(timeout_s=180)
        return round(time.monotonic() - t0, 2)

    def _submit(self, savepoint: str | None) -> str:
        assert self.cluster is not None and self._jar is not None and self._ctx is not None
        restore = ["-s", savepoint] if savepoint else []
        jar = self.cluster.launcher.jar(self._jar)
        cli = self.cluster.cli(
            f"{self.name}-submit", ["run", "-m", self.cluster.rest_address, "-d", *restore,
                                    *self.cluster.submit_options(), "-py", str(JOB),
                                    "-pyfs", str(RULES), "-j", str(jar), json.dumps(self._config)],
            self._ctx.log_dir / f"{self.name}-submit-{len(self.submissions)}.log")
        self.submissions.append(cli.log)
        try:
            code = cli.wait(timeout_s=300)
        finally:
            cli.stop()
        match = re.search(r"JobID ([0-9a-f]{32})", cli.log.read_text(errors="replace"))
        if code != 0 or match is None:
            raise ClusterError(f"flink run failed (exit {code}); last lines of {cli.log}:\n{tail(cli.log)}")
        return match.group(1)

    def _await_running(self, timeout_s: float) -> None:
        """Running means every task of the job is RUNNING, not just the job's status."""
        cluster = self.cluster
        assert cluster is not None

        def running() -> bool:
            job = cluster.get(f"/jobs/{self.job_id}")
            if job["state"] in ("FAILED", "CANCELED", "FINISHED"):
                raise ClusterError(f"the Flink job is {job['state']}; see {cluster.log_dir}")
            return job["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in job["vertices"])

        wait_until(running, timeout_s, "every task of the Flink job to run", watch=[cluster.leader])

    def inject(self, fault: Fault) -> str:
        assert self.cluster is not None
        if fault.action == "cancel-resubmit":
            return self._cancel()
        return self.cluster.kill_worker(fault.instance)

    def recover(self, fault: Fault) -> None:
        assert self.cluster is not None
        if fault.action == "cancel-resubmit":
            assert self._resume_from is not None
            self.timings.setdefault("resubmit_to_running_s", []).append(self._deploy(savepoint=self._resume_from))
            return
        self.cluster.replace_worker(fault.instance)

    def _cancel(self) -> str:
        """Cancel the job; its checkpoints are retained on cancellation (config.yaml)."""
        assert self.cluster is not None
        job = self.job_id
        checkpoint = self.cluster.get(f"/jobs/{job}/checkpoints")["latest"]["completed"]
        if not checkpoint:
            raise ClusterError("the job has no completed checkpoint to resume from yet")
        self.cluster.request("PATCH", f"/jobs/{job}?mode=cancel")
        cluster = self.cluster
        wait_until(lambda: cluster.get(f"/jobs/{job}")["state"] == "CANCELED", 60, f"job {job} to be cancelled",
                   watch=[cluster.leader], interval_s=0.2)
        # The newest checkpoint once the job is gone: one may have completed meanwhile.
        self._resume_from = self.cluster.get(f"/jobs/{job}/checkpoints")["latest"]["completed"]["external_path"]
        return f"job {job} (cancelled; resubmitted from {self._resume_from})"

    def check_health(self) -> list[str]:
        assert self.cluster is not None
        cluster = self.cluster
        procs.require_alive(cluster.leader, "the Flink JobManager")
        return procs.revive(cluster.workers, cluster.killed, lambda _: cluster.start_worker(), "started a new one")

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()

    def cpu_seconds(self) -> float | None:
        return self.cluster.cpu_seconds() if self.cluster else 0.0

    def describe(self) -> dict[str, Any]:
        delivery = "exactly-once (checkpoints + Kafka transactions)" if self.options.delivery == "exactly_once" \
            else "at-least-once (no transactions: replays after a failure show as duplicates)"
        return {
            "engine": self.name,
            "architecture": f"PyFlink DataStream job, KeyedProcessFunction in {self.options.execution_mode} mode, "
                            "on a standalone session cluster",
            "versions": {"apache-flink": pinned()["flink"]["version"],
                         "flink-sql-connector-kafka": pinned()["flink"]["connector"]},
            "options": self.options.model_dump(),
            "cluster": self.cluster.describe() if self.cluster else {},
            "delivery": delivery,
            "timings": self.timings,
        }
