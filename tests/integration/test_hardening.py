"""What must not happen to a run on real processes: a broker that dies under it, or a
harness killed with SIGKILL, leaving a hang or orphans behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from harness.results.read import load_summary
from harness.support import guard, procs
from harness.support.paths import ROOT
from tests.integration.conftest import SECRET, SECRET_VALUE, no_secret_in, run_workload, workload_file

pytestmark = pytest.mark.integration


def _passthrough(name: str, duration_s: float) -> dict[str, object]:
    return workload_file("smoke", name=name, duration_s=duration_s, engines={"passthrough": {"parallelism": 1}},
                         faults=[], drain_timeout_s=30)


def _wait_for(what: str, found: object, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not found():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.timeout(300)
def test_a_broker_that_dies_unasked_fails_the_row_at_once_without_a_hang(tmp_path: Path) -> None:
    killed: dict[str, float] = {}

    def kill_the_broker_once_the_load_runs() -> None:
        def named(name: str) -> procs.ManagedProcess | None:
            return next((p for p in procs.live() if p.name == name), None)

        _wait_for("the processor", lambda: named("passthrough-processor-0"))
        time.sleep(8)  # the driver and collector start, the load runs
        broker = named("kafka-1")
        assert broker is not None
        os.kill(broker.pid, signal.SIGKILL)  # not a fault of the workload's: nothing expects it
        killed["at"] = time.monotonic()

    killer = threading.Thread(target=kill_the_broker_once_the_load_runs, daemon=True)
    killer.start()
    _, summary = run_workload(_passthrough("broker-dies", 60), tmp_path)
    took = time.monotonic() - killed["at"]
    row = summary.engine("passthrough")
    assert row.status == "failed"
    assert "Kafka broker 1" in (row.error or "") and "exited by itself" in (row.error or ""), row.error
    # Noticed within the health check's second, then torn down (processors get 10 s to stop).
    assert took < 40, f"the run went on {took:.0f} s after the broker died"
    assert summary.status == "partial"


@pytest.mark.timeout(300)
def test_a_harness_killed_with_sigkill_leaves_nothing_running_and_its_run_marked(tmp_path: Path) -> None:
    workload = tmp_path / "killed.yaml"
    workload.write_text(yaml.safe_dump(_passthrough("killed", 60), sort_keys=False))
    results = tmp_path / "results"
    log = open(tmp_path / "showdown.log", "w")
    cmd = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "-w", str(workload), "--results",
                            str(results), "--backend", "local"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                           start_new_session=True, env={**os.environ, SECRET: SECRET_VALUE})
    record = guard.RECORDS / f"{cmd.pid}.json"
    victims: list[psutil.Process] = []
    try:
        _wait_for("the load driver to start", lambda: record.exists() and any(
            e["name"] == "driver" for e in json.loads(record.read_text())["processes"].values()))
        time.sleep(3)
        for pid in json.loads(record.read_text())["processes"]:
            try:
                p = psutil.Process(int(pid))
                victims += [p, *p.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        names = {" ".join(v.cmdline()[:3]) for v in victims}
        assert any("kafka.Kafka" in " ".join(v.cmdline()) for v in victims), names
        os.kill(cmd.pid, signal.SIGKILL)
        cmd.wait(10)
        _wait_for("the guardian to stop what the killed run started", lambda: not any(
            v.is_running() and v.status() != psutil.STATUS_ZOMBIE for v in victims), timeout_s=20)
        assert not record.exists()
        (run,) = results.iterdir()
        summary = load_summary(run)
        assert summary.status == "killed" and "SIGKILL" in (summary.error or "")
        report = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(run)], capture_output=True,
                                text=True, cwd=ROOT)
        assert "killed" in report.stdout, report.stdout
        no_secret_in(run)
    finally:
        cmd.kill()
        log.close()
        for v in victims:
            try:
                v.kill()
            except psutil.NoSuchProcess:
                pass
