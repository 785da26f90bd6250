"""The containers backend: the smoke workload with the Kafka brokers and processors in
containers built here (from a bootstrapped Debian base when no registry answers), and a
processor container killed mid-run."""
from __future__ import annotations

import json

import pytest
import yaml

from harness import docker, runner, workload
from harness.errors import SetupError
from harness.paths import WORKLOADS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def containers_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    try:
        print(f"Docker: {docker.ensure_engine()}")
    except SetupError as e:
        pytest.skip(f"Docker cannot run here: {e}")
    data = yaml.safe_load((WORKLOADS / "smoke.yaml").read_text())
    data.update(name="smoke-containers", engines={"kafka": {"parallelism": 2}})
    wl = workload.parse(data, "smoke-containers")
    try:
        run_dir = runner.run(wl, "smoke-containers", yaml.safe_dump(data), tmp_path_factory.mktemp("results"),
                             backend="containers")
    finally:
        left = docker.run("ps", "-aq", "--filter", f"label={docker.LABEL}", check=False).split()
    assert not left, f"containers left after the run: {left}"
    return json.loads((run_dir.path / "summary.json").read_text())


def test_kafka_pipeline_is_exactly_once_against_brokers_in_containers(containers_run: dict) -> None:
    assert containers_run["metadata"]["backend"].startswith("containers")
    e = containers_run["engines"][0]
    assert e["status"] == "ok", e.get("error")
    c = e["correctness"]
    assert (c["missing"], c["duplicates"], c["wrong"], c["unexpected"]) == (0, 0, 0, 0), c["examples"]
    assert e["kafka"]["backend"] == "containers" and e["kafka"]["image"].startswith("showdown/kafka:")
    assert e["cpu_seconds"]["kafka"] > 0 and e["cpu_seconds"]["engine_load"] > 0, "CPU comes from the cgroups"
    kill = e["recovery"][0]
    assert kill["error"] is None and "container" in kill["target"], "the processor killed is a container"
