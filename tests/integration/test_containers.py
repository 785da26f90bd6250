"""The containers backend: the smoke workload through all three architectures with Kafka,
the processors and the Flink and Spark clusters in containers built here (from a
bootstrapped Debian base when no registry answers), and each engine's worker container
(processor, TaskManager, Spark Worker) killed with `docker kill -s KILL` mid-run."""
from __future__ import annotations

import json

import pytest
import yaml

from harness.backends import docker
from harness.run import runner
from harness.support.errors import SetupError
from harness.support.paths import WORKLOADS
from harness.workload import files as workload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def containers_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    try:
        print(f"Docker: {docker.ensure_engine()}")
    except SetupError as e:
        pytest.skip(f"Docker cannot run here: {e}")
    data = yaml.safe_load((WORKLOADS / "smoke.yaml").read_text())
    # Spark in containers stays silent ~30-35 s after its Worker is killed (a new Worker
    # container, a new executor, a catch-up batch), then needs 10 stable seconds to recover.
    data.update(name="smoke-containers", duration_s=100,
                faults=[{"at_s": 25, "action": "kill", "target": "worker", "restart_after_s": 3}],
                engines={"kafka": {"parallelism": 2}, "flink": {}, "spark:idempotent": {"sink": "transactional"}})
    wl = workload.parse(data, "smoke-containers")
    try:
        run_dir = runner.run(wl, "smoke-containers", yaml.safe_dump(data), tmp_path_factory.mktemp("results"),
                             backend="containers")
    finally:
        left = docker.run("ps", "-aq", "--filter", f"label={docker.LABEL}", check=False).split()
    assert not left, f"containers left after the run: {left}"
    return json.loads((run_dir.path / "summary.json").read_text())


@pytest.mark.parametrize("engine,image", [("kafka", "python"), ("flink", "flink"), ("spark:idempotent", "spark")])
def test_exactly_once_across_a_container_kill(containers_run: dict, engine: str, image: str) -> None:
    assert containers_run["metadata"]["backend"].startswith("containers")
    e = next(e for e in containers_run["engines"] if e["engine"] == engine)
    assert e["status"] == "ok", e.get("error")
    c = e["correctness"]
    assert (c["missing"], c["duplicates"], c["wrong"], c["unexpected"]) == (0, 0, 0, 0), c["examples"]
    assert c["decisions"] == c["expected_decisions"]
    assert e["kafka"]["backend"] == "containers" and e["kafka"]["image"].startswith("showdown/kafka:")
    if engine != "kafka":
        cluster = e["describe"]["cluster"]
        assert cluster["backend"] == "containers" and cluster["image"].startswith(f"showdown/{image}:")
    assert e["cpu_seconds"]["kafka"] > 0 and e["cpu_seconds"]["engine_load"] > 0, "CPU comes from the cgroups"
    kill = e["recovery"][0]
    assert kill["error"] is None and "container" in kill["target"], "the worker killed is a container"
    assert kill["output_gap_s"] > 0 and kill["recovered"], kill
