from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from harness.backends.choice import choose
from harness.backends.daemon import DAEMON_PID
from harness.results.read import load_summary
from harness.results.schema import EngineResult, FaultResult, Summary
from harness.run import runner
from harness.support import procs
from harness.support.paths import CACHE, WORKLOADS
from harness.workload import files as workload


def _ours() -> set[int]:
    """Processes running something from this repo's cache (venvs, jars, scratch), wherever
    they hang in the process tree: an orphan is re-parented to init."""
    found = set()
    for p in psutil.process_iter(["cmdline"]):
        if str(CACHE) in " ".join(p.info["cmdline"] or []):
            found.add(p.pid)
    return found


def _docker_engine_tree() -> set[int]:
    try:
        daemon = psutil.Process(int(DAEMON_PID.read_text()))
        return {daemon.pid, *(c.pid for c in daemon.children(recursive=True))}
    except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
        return set()


# A token in the user's shell, which no file of a run folder may contain (issue 12: Flink
# logs its Python workers' whole environment). Every run of these tests carries it.
SECRET = "SHOWDOWN_TEST_SECRET"
SECRET_VALUE = "tok-5f3c9a1e-never-in-results"


@pytest.fixture(autouse=True, scope="session")
def a_secret_in_the_environment() -> Iterator[None]:
    os.environ[SECRET] = SECRET_VALUE
    try:
        yield
    finally:
        os.environ.pop(SECRET, None)


def no_secret_in(folder: Path) -> None:
    leaked = [str(f.relative_to(folder)) for f in folder.rglob("*") if f.is_file() and
              SECRET_VALUE.encode() in f.read_bytes()]
    assert not leaked, f"the environment's {SECRET} leaked into {leaked}"


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Every test that starts a cluster leaves nothing running, pass or fail."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    before_ours = _ours()
    try:
        yield
    finally:
        started = [p.pid for p in procs.live()]
        procs.stop_all()
    assert not started, f"processes still registered after the test: {started}"
    # multiprocessing's resource tracker lives as long as this test process, by design; so
    # does a Docker engine the containers backend started (a service, stopped by `down`).
    service = _docker_engine_tree()
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and p.pid not in service and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline())]
    assert not left, f"processes left running: {[(p.pid, p.cmdline()[:3]) for p in left]}"
    orphans = _ours() - before_ours
    assert not orphans, f"orphaned processes of this run: {[(p, psutil.Process(p).cmdline()[:3]) for p in orphans]}"


def run_workload(data: dict[str, Any], results: Path, backend: str = "local",
                 keep_records: bool = False) -> tuple[Path, Summary]:
    """`data` (a workload's fields) run as `showdown run` runs it; the run folder and its
    summary as every reader sees it (read back from the file, not the writer's object)."""
    wl = workload.parse(data, data["name"])
    run_dir = runner.run(wl, data["name"], yaml.safe_dump(data, sort_keys=False), results, choose(backend),
                         keep_records=keep_records)
    no_secret_in(run_dir.path)
    return run_dir.path, load_summary(run_dir.path)


def workload_file(file: str, /, **changes: Any) -> dict[str, Any]:
    """A shipped workload file's fields (workloads/`file`.yaml) with `changes` applied."""
    return {**yaml.safe_load((WORKLOADS / f"{file}.yaml").read_text()), **changes}


def windows_run(name: str, engine: str, duration_s: float, faults: list[dict[str, Any]], results: Path,
                drain_timeout_s: float) -> EngineResult:
    """One engine row of workloads/windows.yaml (decisions and event-time windows), its value
    schema switching to v2 a third of the way in, with `faults`; the row must finish."""
    data = workload_file("windows")
    data.update(name=name, duration_s=duration_s, warmup_s=5, schema_v2_from_s=duration_s / 3, faults=faults,
                engines={engine: data["engines"][engine]}, drain_timeout_s=drain_timeout_s)
    # Windows short enough, at 30x event time, for state to be evicted within the run (10
    # and 30 s of the schedule), with the velocity window the longer: what an engine evicts
    # at max_et - L - W instead of max(W, V) decides wrong (docs/spec.md, section 2).
    data["rules"] = {**data["rules"], "window_s": 300, "velocity_window_s": 900}
    _, summary = run_workload(data, results)
    return finished(summary, engine)


def finished(summary: Summary, name: str) -> EngineResult:
    """The engine's row, which must have finished."""
    e = summary.engine(name)
    assert e.ok, e.error
    return e


def exactly_once(e: EngineResult) -> None:
    """Nothing missing, duplicated or unexpected; nothing wrong where the row applies the rules."""
    c = e.measured().correctness
    assert (c.missing, c.duplicates, c.unexpected) == (0, 0, 0), (e.engine, c.examples)
    if c.wrong is not None:  # None: passthrough, which applies no rules
        assert c.wrong == 0 and c.decisions == c.expected_decisions, (e.engine, c.examples)


def came_back(rec: FaultResult) -> None:
    """The fault stopped the output, and by the end the engine was back under the recovery
    threshold. Whether it also held 10 stable seconds before the next fault (`recovered`)
    is a timing figure: on a shared 2-core runner the same fault's gap ranged from 12 to
    43 s, so it is reported, not asserted; the rule itself is unit-tested (test_judge.py)."""
    assert rec.error is None, rec
    assert rec.output_gap_s > 0 and rec.threshold_ms is not None, rec
    assert rec.final_p99_ms is not None and rec.final_p99_ms <= rec.threshold_ms, rec
    if rec.recovered:
        assert rec.recovery_time_s is not None and rec.recovery_time_s >= 0, rec


def windows_exactly_once(e: EngineResult) -> None:
    w = e.windows
    assert w is not None, "the run has windows"
    assert (w.missing, w.duplicates, w.wrong, w.unexpected) == (0, 0, 0, 0), (e.engine, w.examples)
    assert w.required > 100 and w.emission_delay_ms.get("p50") is not None, w
