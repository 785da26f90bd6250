"""The Docker engine the containers backend uses: found, or started when installed but idle.

Only the docker CLI is used (no SDK): what the harness does is what a user could type.
Everything the harness creates carries the label `showdown=1`, so a crashed run's
leftovers can be found and removed without touching anything else.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psutil

from harness.support import procs
from harness.support.env import child_env
from harness.support.errors import SetupError
from harness.support.paths import CACHE
from harness.support.procs import ManagedProcess
from harness.support.wait import wait_until

LABEL = "showdown=1"
# The legacy builder: BuildKit needs the buildx plugin, which Debian bookworm does not ship.
BUILD_ENV = child_env({"DOCKER_BUILDKIT": "0"})
DAEMON_PID = CACHE / "dockerd.pid"
DAEMON_LOG = CACHE / "dockerd.log"


def cli() -> str:
    path = shutil.which("docker")
    if path is None:
        raise SetupError("`docker` was not found on PATH. Install a Docker engine, e.g. `apt-get install docker.io`.")
    return path


def answers(timeout_s: float = 10.0) -> bool:
    """True when a Docker engine answers the CLI."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run([cli(), "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              timeout=timeout_s, env=child_env()).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def why_not() -> str:
    """Why the containers backend cannot run here, in a sentence; empty if it can."""
    if answers():
        return ""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH (apt-get install docker.io)"
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


def run(*args: str, timeout_s: float = 120, check: bool = True) -> str:
    proc = subprocess.run([cli(), *args], capture_output=True, text=True, timeout=timeout_s, env=child_env())
    if check and proc.returncode != 0:
        raise SetupError(f"docker {' '.join(args[:3])} … failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc.stdout.strip()


def state(container_id: str) -> dict[str, Any]:
    """The container's State (Running, ExitCode, ...); empty once it is removed."""
    out = run("inspect", "-f", "{{json .State}}", container_id, check=False)
    return dict(json.loads(out)) if out else {}


def image_exists(tag: str) -> bool:
    return subprocess.run([cli(), "image", "inspect", tag], capture_output=True, env=child_env()).returncode == 0


def remove_leftovers() -> list[str]:
    """Remove containers and networks of earlier, crashed runs (by our label only)."""
    containers = run("ps", "-aq", "--filter", f"label={LABEL}").split()
    if containers:
        run("rm", "-f", *containers)
    networks = run("network", "ls", "-q", "--filter", f"label={LABEL}").split()
    for net in networks:
        run("network", "rm", net, check=False)
    return containers


def cpu_seconds(container_id: str) -> float | None:
    """CPU time of a container from its cgroup (v1 cpuacct or v2 cpu.stat); None once gone."""
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
