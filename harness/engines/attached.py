"""A Flink session cluster that exists already (the cluster file's `flink:` section): the
engine attaches to it instead of starting one. The Flink CLI of the engine's local wheel
submits the job (-m REST address), shipping the job's Python files and the connector; a
worker fault is the file's command; stopping cancels only the run's own jobs."""
from __future__ import annotations

import time
import urllib.parse
from pathlib import Path
from typing import Any

from harness.backends.cluster_file import FlinkSection
from harness.backends.existing import cancel_jobs, cpu_reading, run_command
from harness.backends.local import LocalLauncher
from harness.engines.clusters import FlinkCluster, FlinkSettings
from harness.provision.versions import pinned
from harness.support.console import console
from harness.support.errors import ClusterError
from harness.support.procs import free_ports
from harness.support.wait import wait_until

# Job-level settings the run needs whatever the cluster's config.yaml says: the same
# restart strategy as the clusters the harness starts, and checkpoints kept when the job is
# cancelled (the cancel-resubmit fault resumes from one).
JOB_SETTINGS = {
    "restart-strategy.type": "exponential-delay",
    "restart-strategy.exponential-delay.initial-backoff": "1 s",
    "restart-strategy.exponential-delay.max-backoff": "10 s",
    "restart-strategy.exponential-delay.backoff-multiplier": "2.0",
    "restart-strategy.exponential-delay.attempts-before-reset-backoff": "1000",
    "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
}


class AttachedFlink(FlinkCluster):
    """The run's view of an existing session cluster: the local CLI and its config, the
    cluster's REST API, and the file's commands for faults and CPU."""

    def __init__(self, section: FlinkSection, names: str, python: Path, log_dir: Path) -> None:
        # Only the CLI runs here, so only its settings matter (the cluster's are its own).
        super().__init__(FlinkSettings(0, 1, "1g", "1g", 10_000), LocalLauncher(python, "pyflink"), log_dir, 1.0)
        self.section = section
        self.names = names
        url = urllib.parse.urlparse(section.rest)
        self._host, self.rest_port = str(url.hostname), int(url.port or 0)
        self.version = ""
        self._cpu_start: float | None = None
        self._commands_log = log_dir / "cluster-commands.log"

    @property
    def rest(self) -> str:
        return f"http://{self._host}:{self.rest_port}"

    @property
    def rest_address(self) -> str:
        return f"{self._host}:{self.rest_port}"

    def start(self, timeout_s: float = 120.0) -> None:
        self.configure(self._make_scratch(), self.rest_port, *free_ports(2))
        t0 = time.monotonic()
        with console.status(f"Reaching the Flink cluster at {self.rest}"):
            config = wait_until(lambda: {e["key"]: e["value"] for e in self.get("/jobmanager/config")} or None,
                                min(timeout_s, 60), f"the Flink REST API at {self.rest}", retry_on=(OSError, ValueError))
            self.version = str(self.get("/config").get("flink-version", ""))
            ours = str(pinned()["flink"]["version"])
            if self.version.split(".")[:2] != ours.split(".")[:2]:
                raise ClusterError(f"the Flink cluster at {self.rest} runs Flink {self.version}; this harness "
                                   f"submits with Flink {ours}'s CLI and PyFlink: use a {'.'.join(ours.split('.')[:2])}"
                                   f".x cluster")
            wait_until(lambda: self.get("/overview")["taskmanagers"] >= 1, timeout_s,
                       f"a TaskManager registered with the Flink cluster at {self.rest}",
                       retry_on=(OSError, ValueError))
        if "execution.checkpointing.dir" not in config and self.section.checkpoints is None:
            raise ClusterError(f"the Flink cluster at {self.rest} has no execution.checkpointing.dir: give "
                               f"flink.checkpoints in the cluster file (a folder every TaskManager can write)")
        self._cpu_start = self._cpu_now()
        console.print(f"[green]✓[/] Flink {self.version} answers at {self.rest} in {time.monotonic() - t0:.1f} s "
                      f"(a cluster the run did not start)")

    def submit_options(self) -> list[str]:
        """The CLI's options for this cluster: its TaskManagers' Python, the job's settings."""
        settings = {**JOB_SETTINGS, **({"execution.checkpointing.dir": self.section.checkpoints}
                                       if self.section.checkpoints else {})}
        return ["-pyexec", self.section.python, "-pyclientexec", str(self.launcher.python),
                *(f"-D{k}={v}" for k, v in settings.items())]

    def kill_worker(self, instance: int) -> str:
        fault = self.section.faults["worker"]  # checked with the workload before the run
        run_command(fault.kill, instance, "kill:worker", self._commands_log)
        return f"TaskManager {instance} of {self.rest} (`{fault.kill.replace('{instance}', str(instance))}`)"

    def replace_worker(self, instance: int) -> None:
        restart = self.section.faults["worker"].restart
        if restart is not None:  # else the platform brings it back by itself
            run_command(restart, instance, "restart of the TaskManager", self._commands_log)

    def _cpu_now(self) -> float | None:
        return cpu_reading(self.section.cpu, "flink.cpu", "the cluster's", self._commands_log)

    def cpu_seconds(self) -> float | None:  # type: ignore[override]
        now = self._cpu_now()
        if now is None or self._cpu_start is None:
            return None
        return now - self._cpu_start + super().cpu_seconds()

    def describe(self) -> dict[str, Any]:
        return {"attached": self.rest, "flink_version": self.version, "python": self.section.python,
                "cpu": "by flink.cpu" if self.section.cpu else "not measured"}

    def stop(self) -> None:
        """Cancel every job of this run that still runs, then drop the CLI's scratch."""
        try:
            cancel_jobs(self.rest, self.names)
        except (OSError, ValueError, ClusterError) as e:
            console.print(f"[yellow]could not cancel this run's jobs on {self.rest} ({e}); cancel the jobs named "
                          f"{self.names}-* there[/]")
        super().stop()
