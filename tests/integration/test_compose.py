"""docker-compose.yml: the stack starts from the harness's images and configuration, and
each service answers (Kafka metadata, Flink's TaskManager registered, the Spark Worker
ALIVE). Then the same stack as a cluster the harness did not start (--cluster, issue 17):
the smoke workload's kafka and flink rows against its broker and its Flink
session cluster, a worker (a processor here; the TaskManager by the file's command)
killed; nothing of the run left on it afterwards."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic

from harness.backends import daemon, existing
from harness.backends.choice import choose
from harness.backends.containers import IMAGE_PYTHON
from harness.results.read import load_summary
from harness.run import compose, runner
from harness.support.errors import SetupError
from harness.support.procs import free_ports
from harness.workload import files as workload
from tests.integration.conftest import SECRET, came_back, exactly_once, finished, no_secret_in, workload_file

pytestmark = pytest.mark.integration
PROJECT = "showdown-test"


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
    cmd = [tool, "--env-file", str(env), "-f", str(compose.COMPOSE_FILE), "-p", PROJECT]
    try:
        yield cmd, ports
    finally:
        subprocess.run([*cmd, "down", "--timeout", "5"], capture_output=True, timeout=180)


def _comes_up(cmd: list[str], ports: compose.Ports) -> None:
    """The file is valid, and each service answers."""
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


def _names(bootstrap: str) -> set[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    groups = admin.list_consumer_groups(request_timeout=30).result(timeout=30).valid
    return {*admin.list_topics(timeout=30).topics, *(g.group_id for g in groups)}


def test_the_stack_comes_up_and_runs_the_smoke_rows_as_an_existing_cluster_leaving_nothing(
        stack: tuple[list[str], compose.Ports], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One test, as the stack's processes are only torn down (`down`) by its fixture: each
    # test must leave no process of the repo's cache running.
    cmd, ports = stack
    _comes_up(cmd, ports)
    bootstrap = f"127.0.0.1:{ports.kafka}"
    before = _names(bootstrap)
    compose_cmd = " ".join(cmd)
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(yaml.safe_dump({
        "name": "compose-stack", "prefix": "citest",
        # The stack runs on this machine: its containers' CPU is the run's, not a neighbour's.
        "local_processes": sorted(daemon.DAEMONS),
        "kafka": {"bootstrap": bootstrap, "engine_bootstrap": "kafka-1:9092",
                  # A value named like a secret, from a variable: recorded as the name only.
                  "client": {"client.id": "showdown-${SHOWDOWN_TEST_CLIENT}",
                             "sasl.password": f"${{{SECRET}}}"},
                  # Not used by this workload: a broker fault by command is unit-tested, and a lone
                  # broker's kill left the transactional processors stuck after its restart in one
                  # of three runs here (not understood yet: the closing note of this change).
                  "faults": {"broker": {"kill": f"{compose_cmd} kill -s SIGKILL kafka-1",
                                        "restart": f"{compose_cmd} start kafka-1"}}},
        "flink": {"rest": f"http://127.0.0.1:{ports.flink}", "python": str(IMAGE_PYTHON),
                  "faults": {"worker": {"kill": f"{compose_cmd} kill -s SIGKILL flink-taskmanager",
                                        "restart": f"{compose_cmd} start flink-taskmanager"}}},
    }))
    monkeypatch.setenv("SHOWDOWN_TEST_CLIENT", "ci")
    # 40 s, not smoke's 30: a TaskManager kill's output gap is about 20 s here, and the row
    # must be back under its threshold before the end.
    data = workload_file("smoke", name="smoke-existing", duration_s=40, engines={"kafka": {}, "flink": {}}, faults=[
        {"at_s": 8, "action": "kill", "target": "worker", "instance": 0, "restart_after_s": 3}])
    wl = workload.parse(data, data["name"])
    # What a run killed with SIGKILL left: its topic, and its record naming a dead owner.
    left_by_killed = "citest-0badc0de"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # held: the future fails once the client is gone
    admin.create_topics([NewTopic(f"{left_by_killed}-transactions", 1, 1)])[f"{left_by_killed}-transactions"].result(
        timeout=30)
    dead = subprocess.Popen(["true"])
    dead.wait()
    existing.CREATED.mkdir(parents=True, exist_ok=True)
    (existing.CREATED / f"{left_by_killed}.json").write_text(json.dumps({
        "cluster": "compose-stack", "bootstrap": bootstrap, "names": left_by_killed,
        "owner": {"pid": dead.pid, "create_time": 0.0}}))
    run_dir = runner.run(wl, data["name"], yaml.safe_dump(data), tmp_path / "results", choose(None, cluster))
    assert not (existing.CREATED / f"{left_by_killed}.json").exists()
    no_secret_in(run_dir.path)
    summary = load_summary(run_dir.path)
    assert summary.metadata.backend == "cluster"
    assert summary.metadata.cluster is not None
    assert summary.metadata.cluster["kafka"]["client"]["sasl.password"] == f"${{{SECRET}}}"
    for name, victim in (("kafka", "kafka-processor-0"), ("flink", "TaskManager 0")):
        e = finished(summary, name)
        exactly_once(e)
        [worker] = e.recovery
        assert worker.target.startswith(victim), worker
        came_back(worker)
        assert e.kafka["backend"] == "cluster" and str(e.kafka["names"]).startswith("citest-")
        assert e.cpu_seconds.kafka is None  # the file gives no cpu command
    assert finished(summary, "flink").describe["cluster"]["attached"] == f"http://127.0.0.1:{ports.flink}"
    # Nothing of the run is left on the stack: no topic, no consumer group, no running job.
    left = {n for n in _names(bootstrap) - before if n.startswith("citest-")}
    assert not left, left
    jobs = _get(f"http://127.0.0.1:{ports.flink}/jobs/overview")["jobs"]
    assert jobs and {j["state"] for j in jobs} == {"CANCELED"}, jobs
