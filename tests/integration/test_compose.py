"""docker-compose.yml: the stack starts from the harness's images and configuration, and
each service answers (Kafka metadata, Flink's TaskManager registered, the Spark Worker ALIVE)."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from harness.backends import daemon
from harness.run import compose
from harness.support.errors import SetupError
from harness.support.procs import free_ports

pytestmark = pytest.mark.integration


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return dict(json.loads(resp.read()))


@pytest.fixture
def stack() -> Iterator[tuple[list[str], compose.Ports]]:
    try:
        daemon.ensure_engine()
    except SetupError as e:
        pytest.skip(f"Docker cannot run here: {e}")
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("no docker-compose on PATH (apt-get install docker-compose)")
    ports = compose.Ports(*free_ports(3))
    env = compose.write(ports)
    cmd = [tool, "--env-file", str(env), "-f", str(compose.COMPOSE_FILE), "-p", "showdown-test"]
    try:
        yield cmd, ports
    finally:
        subprocess.run([*cmd, "down", "--timeout", "5"], capture_output=True, timeout=180)


def test_compose_file_is_valid_and_the_stack_comes_up(stack: tuple[list[str], compose.Ports]) -> None:
    cmd, ports = stack
    config = subprocess.run([*cmd, "config"], capture_output=True, text=True, timeout=60)
    assert config.returncode == 0, config.stderr
    assert f"127.0.0.1:{ports.flink}:{ports.flink}" in config.stdout and "showdown/spark:" in config.stdout
    up = subprocess.run([*cmd, "up", "-d"], capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    deadline = time.monotonic() + 120
    state: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            state = {"taskmanagers": _get(f"http://127.0.0.1:{ports.flink}/overview")["taskmanagers"],
                     "spark": [w["state"] for w in _get(f"http://127.0.0.1:{ports.spark}/json/")["workers"]]}
            if state == {"taskmanagers": 1, "spark": ["ALIVE"]}:
                break
        except OSError:  # not listening yet
            pass
        time.sleep(1)
    assert state == {"taskmanagers": 1, "spark": ["ALIVE"]}, subprocess.run(
        [*cmd, "logs", "--tail", "20"], capture_output=True, text=True).stdout
    brokers = AdminClient({"bootstrap.servers": f"127.0.0.1:{ports.kafka}"}).list_topics(timeout=30).brokers
    assert [f"{b.host}:{b.port}" for b in brokers.values()] == [f"127.0.0.1:{ports.kafka}"]
