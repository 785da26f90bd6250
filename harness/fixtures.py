"""Stream Showdown's clusters and runs as pytest fixtures, for a team's own tests: a pytest
plugin (the `pytest11` entry point `showdown`), loaded wherever the package is installed.

    def test_our_slo(showdown_run):
        result = showdown_run("workloads/node-crash.yaml", engines=["flink"], duration_s=90)
        assert result["flink"].latency_ms.p99 < 500 and result["flink"].correctness.exactly_once

The backend is chosen once per session as for a run (`--showdown-backend`, default auto);
clusters live for their fixture's scope (a module) and are torn down at its end, pass or
fail. Nothing here is used unless a test asks for it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import yaml

from harness.backends.base import Backend, KafkaCluster
from harness.backends.choice import CHOICES, choose
from harness.engines import flink, spark
from harness.engines.clusters import FlinkCluster, SparkCluster
from harness.provision import venvs
from harness.provision.versions import runtime
from harness.results.read import load_summary
from harness.results.schema import EngineResult, Summary
from harness.run import runner
from harness.support import guard, procs
from harness.support.errors import WorkloadError
from harness.workload import files as workload_files
from harness.workload.engine_options import FlinkOptions, SparkOptions
from harness.workload.schema import KafkaSettings


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("showdown", "Stream Showdown's clusters and runs")
    group.addoption("--showdown-backend", choices=CHOICES, default=None,
                    help="where the showdown fixtures' clusters run (default: auto, as for `showdown run`)")
    group.addoption("--showdown-cluster", metavar="FILE", default=None,
                    help="run showdown_run and kafka_cluster on the existing services of this cluster file")
    group.addoption("--showdown-results", metavar="DIR", default=None,
                    help="where showdown_run writes its run folders (default: a pytest temporary folder)")


@dataclass(frozen=True)
class RunResult:
    """A finished run: its folder and its summary, read back from the file as every reader
    sees it. `result[engine]` is that engine's row, if it finished."""

    path: Path
    summary: Summary

    def __getitem__(self, engine: str) -> EngineResult:
        rows = {e.engine: e for e in self.summary.engines}
        if engine not in rows:
            raise KeyError(f"{engine} did not run in {self.path} (rows: {', '.join(rows) or 'none'})")
        row = rows[engine]
        if not row.ok:
            raise AssertionError(f"{engine} {row.status} in {self.path}: {row.error}")
        return row

    @property
    def complete(self) -> bool:
        return self.summary.status == "complete"


@pytest.fixture(scope="session")
def showdown_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The backend of this session's clusters. While it lives, what the fixtures start is
    recorded, and a guardian process stops it if pytest itself is killed."""
    for line in guard.clean_leftovers():
        print(line)
    guard.guard()
    try:
        backend = choose(request.config.getoption("showdown_backend"), request.config.getoption("showdown_cluster"))
        for line in backend.begin():
            print(line)
        yield backend
    finally:
        procs.stop_all()
        guard.release()


class _Cluster(Protocol):
    def start(self, timeout_s: float = ...) -> object: ...

    def stop(self) -> None: ...


C = TypeVar("C", bound=_Cluster)


def _started(cluster: C) -> Iterator[C]:
    """`cluster` started for the fixture's scope, and stopped at its end, pass or fail (also
    when it failed to start: stop undoes what a start left)."""
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def kafka_cluster(showdown_backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A Kafka cluster (KRaft, the pinned version, one broker) on the session's backend:
    `.bootstrap` from this host, `.create_topics(...)`, `.admin()`."""
    yield from _started(showdown_backend.kafka(KafkaSettings(), tmp_path_factory.mktemp("kafka-logs")))


@pytest.fixture(scope="module")
def flink_cluster(kafka_cluster: KafkaCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlinkCluster]:
    """A Flink session cluster beside `kafka_cluster`, as the `flink` engine runs it with
    default options: `.rest` is its REST API from this host."""
    yield from _started(flink.cluster(FlinkOptions(), kafka_cluster, tmp_path_factory.mktemp("flink-logs"),
                                      venvs.ensure("flink", runtime("flink"))))


@pytest.fixture(scope="module")
def spark_cluster(kafka_cluster: KafkaCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    """A Spark standalone cluster beside `kafka_cluster`, as the `spark` engine runs it with
    default options: `.url` is its master, `.state()` the master's JSON."""
    python = venvs.ensure("spark", runtime("spark"))
    yield from _started(spark.cluster(SparkOptions(), kafka_cluster, tmp_path_factory.mktemp("spark-logs"), python,
                                      spark.connector_jars(python)))


ShowdownRun = Callable[..., RunResult]


@pytest.fixture
def showdown_run(showdown_backend: Backend, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> ShowdownRun:
    """`showdown_run(workload, engines=None, **fields)`: a whole run, as `showdown run` does
    it, of `workload` (a YAML file's path, or its fields as a dict) with `fields` replaced
    (e.g. duration_s=60); returns its RunResult. A bad workload raises WorkloadError."""
    chosen = request.config.getoption("showdown_results")
    results = Path(chosen) if chosen else tmp_path_factory.mktemp("showdown-results")

    def run(workload: str | Path | Mapping[str, Any], engines: Sequence[str] | None = None,
            **fields: Any) -> RunResult:
        if isinstance(workload, Mapping):
            data, source = dict(workload), str(workload.get("name", "workload"))
        else:
            _, text = workload_files.load(workload)  # the file's own problems, by line
            data, source = yaml.safe_load(text), str(workload)
        data = {**data, **fields}
        wl = workload_files.parse(data, source)
        unknown = [e for e in engines or [] if e not in wl.engines]
        if unknown:
            raise WorkloadError(f"engines: {', '.join(unknown)} not in the workload's engines "
                                f"({', '.join(wl.engines)})")
        run_dir = runner.run(wl, source, yaml.safe_dump(data, sort_keys=False), results, showdown_backend,
                             list(engines) if engines else None)
        return RunResult(run_dir.path, load_summary(run_dir.path))

    return run
