"""The Docker engine the containers backend uses: found, or started when installed but idle,
and spoken to through the Docker SDK (containers go through testcontainers, containers.py).

Everything the harness creates carries the label `showdown=1`, so a crashed run's
leftovers can be found and removed without touching anything else. Where testcontainers'
reaper (Ryuk) can run, it also removes them when the harness dies, even by SIGKILL.
"""
from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path

import docker
import psutil
from docker import DockerClient
from docker.errors import APIError, DockerException, ImageNotFound
from testcontainers.core.config import testcontainers_config

from harness.support import procs
from harness.support.errors import SetupError
from harness.support.paths import CACHE
from harness.support.procs import ManagedProcess
from harness.support.wait import wait_until

LABELS = {"showdown": "1"}
LABEL = "showdown=1"  # as a filter
# The Docker engine's own processes: they work for a run on this backend, and every
# container's processes are their descendants.
DAEMONS = frozenset({"dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy"})
DAEMON_PID = CACHE / "dockerd.pid"
DAEMON_LOG = CACHE / "dockerd.log"
# Long enough for an image pull or an image build's slowest step to answer.
API_TIMEOUT_S = 600


@cache
def client() -> DockerClient:
    """The Docker SDK's client, as the environment configures it (DOCKER_HOST, else the
    local socket); one per process."""
    try:
        return docker.from_env(timeout=API_TIMEOUT_S)
    except DockerException as e:
        raise SetupError(f"cannot reach a Docker engine: {e}") from None


def answers(timeout_s: float = 10.0) -> bool:
    """True when a Docker engine answers."""
    try:
        probe = docker.from_env(timeout=timeout_s)
    except DockerException:
        return False
    try:
        return bool(probe.ping())
    except (DockerException, OSError):
        return False
    finally:
        probe.close()


def why_not() -> str:
    """Why the containers backend cannot run here, in a sentence; empty if it can."""
    if answers():
        return ""
    if shutil.which("dockerd") is None:
        return "no Docker engine answers and dockerd is not installed (apt-get install docker.io)"
    if os.geteuid() != 0:
        return "no Docker engine answers, and starting dockerd needs root"
    return ""


def ensure_engine() -> str:
    """Make sure an engine answers; start dockerd if it is installed but not running.

    A dockerd started here is left running like the system service it stands in for
    (images and containers outlive one run); its PID is kept in .cache/dockerd.pid, and
    `showdown down` stops it. Returns what was done."""
    if answers():
        return "a running Docker engine"
    reason = why_not()
    if reason:
        raise SetupError(f"the containers backend needs Docker: {reason}")
    daemon = ManagedProcess("dockerd", [shutil.which("dockerd") or "dockerd"], DAEMON_LOG)
    procs.detach(daemon)
    DAEMON_PID.write_text(str(daemon.pid))
    wait_until(lambda: answers(timeout_s=5), 60, "dockerd to answer", watch=[daemon], error=SetupError)
    return f"started dockerd (pid {daemon.pid}, log {DAEMON_LOG})"


def stop_started_engine() -> str | None:
    """Stop the dockerd that ensure_engine started, by its recorded PID; None if none."""
    try:
        pid = int(DAEMON_PID.read_text())
    except (FileNotFoundError, ValueError):
        return None
    DAEMON_PID.unlink()
    try:
        proc = psutil.Process(pid)
        if proc.name() != "dockerd":
            return None  # the PID was reused: not ours
        proc.terminate()
        proc.wait(timeout=30)
    except psutil.NoSuchProcess:
        return None
    except psutil.TimeoutExpired:
        proc.kill()
    return f"stopped dockerd (pid {pid})"


@cache
def reaper() -> str:
    """Whether testcontainers' reaper (Ryuk) guards this process's containers, and why:
    on where its image is present or can be pulled; off where it cannot (no registry), or
    when TESTCONTAINERS_RYUK_DISABLED says so. Decided once per process."""
    if os.environ.get("TESTCONTAINERS_RYUK_DISABLED") is not None:
        state = "off" if testcontainers_config.ryuk_disabled else "on"
        return f"{state} (TESTCONTAINERS_RYUK_DISABLED)"
    image = testcontainers_config.ryuk_image
    try:
        client().images.get(image)
        return f"on ({image})"
    except ImageNotFound:
        pass
    try:
        client().images.pull(image)
        return f"on ({image}, pulled)"
    except DockerException as e:
        testcontainers_config.ryuk_disabled = True
        reason = (e.explanation if isinstance(e, APIError) and e.explanation else str(e)).splitlines()[0][:200]
        return (f"off: {image} is not here and cannot be pulled ({reason}); what a killed run leaves is "
                f"removed by label when the next run starts")


def image_exists(tag: str) -> bool:
    try:
        client().images.get(tag)
        return True
    except ImageNotFound:
        return False


def leftovers() -> list[str]:
    """Ids of the containers carrying our label, running or not."""
    return [c.id for c in client().containers.list(all=True, filters={"label": LABEL}) if c.id]


def remove_leftovers() -> list[str]:
    """Remove containers and networks of earlier, crashed runs (by our label only)."""
    removed = []
    for container in client().containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True, v=True)
        removed.append(container.id or "")
    for network in client().networks.list(filters={"label": LABEL}):
        try:
            network.remove()
        except DockerException:
            pass  # still in use by a container that is not ours: leave it
    return removed


def cpu_seconds(container_id: str) -> float | None:
    """CPU time of a container from its cgroup (v1 cpuacct or v2 cpu.stat); None once gone.
    Read from the file, not the stats API, which takes a second or two per call."""
    for path, scale in ((f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage", 1e-9),
                        (f"/sys/fs/cgroup/cpu,cpuacct/docker/{container_id}/cpuacct.usage", 1e-9)):
        try:
            return int(Path(path).read_text()) * scale
        except (FileNotFoundError, ValueError):
            continue
    for path in (f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/cpu.stat",
                 f"/sys/fs/cgroup/docker/{container_id}/cpu.stat"):
        try:
            for line in Path(path).read_text().splitlines():
                key, value = line.split()
                if key == "usage_usec":
                    return int(value) * 1e-6
        except FileNotFoundError:
            continue
    return None
