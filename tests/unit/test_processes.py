"""What the harness does with the processes it starts: ports, environment, logs, a client
that will not close, a command killed with SIGKILL, a second Ctrl-C. Real processes
(`sleep`, small Python scripts), no cluster: seconds."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from harness.support import guard
from harness.support.clients import release
from harness.support.env import child_env
from harness.support.paths import ROOT
from harness.support.procs import ManagedProcess, free_ports, port_taken, tail


def test_ports_chosen_together_are_distinct() -> None:
    for _ in range(50):
        ports = free_ports(6)
        assert len(set(ports)) == 6


def test_a_start_that_lost_its_port_is_recognised_from_the_log(tmp_path: Path) -> None:
    log = tmp_path / "kafka-1.log"
    log.write_text("INFO KafkaConfig values:\n...\norg.apache.kafka.common.KafkaException: Socket server failed "
                   "to bind to 127.0.0.1:41234: Address already in use.\n")
    assert port_taken(log)
    log.write_text("ERROR something else\n")
    assert not port_taken(log)
    assert not port_taken(tmp_path / "absent.log")


def test_the_log_excerpt_shows_the_first_exception_above_a_long_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("\n".join(["starting", "java.net.BindException: Address already in use",
                              *[f"config.line.{i} = {i}" for i in range(100)]]))
    shown = tail(log, 40)
    assert "BindException: Address already in use" in shown and "config.line.99" in shown
    assert "config.line.10 " not in shown
    log.write_text("\n".join(f"line {i}" for i in range(100)))
    assert tail(log, 3) == "line 97\nline 98\nline 99"


def test_children_get_only_allow_listed_variables() -> None:
    parent = {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "JAVA_HOME": "/jdk", "AWS_SECRET_ACCESS_KEY": "x",
              "GITHUB_TOKEN": "y", "https_proxy": "http://user:pw@proxy:3128", "PIP_INDEX_URL": "https://idx",
              "SSL_CERT_FILE": "/ca.pem"}
    env = child_env({"FLINK_CONF_DIR": "/conf"}, parent=parent)
    assert env == {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "JAVA_HOME": "/jdk", "FLINK_CONF_DIR": "/conf"}
    downloads = child_env(network=True, parent=parent)
    assert {"https_proxy", "PIP_INDEX_URL", "SSL_CERT_FILE"} <= set(downloads)
    assert "GITHUB_TOKEN" not in downloads and "AWS_SECRET_ACCESS_KEY" not in downloads


def test_a_managed_process_does_not_see_the_users_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOWDOWN_TEST_SECRET", "hunter2")
    p = ManagedProcess("env", ["env"], tmp_path / "env.log", env={"MINE": "1"})
    p.wait(10)
    p.stop()
    text = (tmp_path / "env.log").read_text()
    assert "MINE=1" in text and "PATH=" in text and "hunter2" not in text


class _Stuck:
    """Stands in for a client whose destroy never returns (librdkafka waiting on a dead broker)."""

    def __del__(self) -> None:
        time.sleep(30)


class _Holder:
    def __init__(self, client: object) -> None:
        self.client: object | None = client


def test_a_client_that_will_not_close_does_not_block_the_harness() -> None:
    stuck = _Holder(_Stuck())
    t0 = time.monotonic()
    closed = release(stuck, "client", "a stuck client", wait_s=0.5)  # outside `assert`: pytest keeps its operands
    assert closed is False and time.monotonic() - t0 < 5
    holder = _Holder(object())
    assert release(holder, "client", "a client") is True and holder.client is None


def _script(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    """A small `showdown`-like command: guarded, starting real processes, then `body`."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from harness.support import guard, procs
        guard.RECORDS = Path({str(tmp_path / 'runs')!r})
        guard.guard()
        guard.running_in(Path({str(tmp_path / 'run' / 'killed.json')!r}))
        for i in range(2):
            procs.ManagedProcess(f"sleeper-{{i}}", ["sh", "-c", "sleep 300 & sleep 300"],
                                 Path({str(tmp_path)!r}) / f"sleeper-{{i}}.log")
        print("started", flush=True)
    """) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _record(tmp_path: Path, pid: int) -> dict[str, object]:
    return json.loads((tmp_path / "runs" / f"{pid}.json").read_text())


def _sleepers(tmp_path: Path, record: dict[str, object]) -> list[psutil.Process]:
    """The started processes of a record and their children, those still running."""
    found = []
    for pid in record["processes"]:  # type: ignore[union-attr]
        try:
            p = psutil.Process(int(pid))
            found += [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _all_started(tmp_path: Path, pid: int) -> list[psutil.Process]:
    """The command's six processes (two shells, each with two sleeps), once the shells have
    forked theirs."""
    deadline = time.monotonic() + 10
    while len(found := _sleepers(tmp_path, _record(tmp_path, pid))) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(found) == 6, found
    return found


def _marker(tmp_path: Path) -> Path:
    """The run folder's marker, written if the command dies."""
    (tmp_path / "run").mkdir()
    return tmp_path / "run" / "killed.json"


@contextmanager
def _command(tmp_path: Path, body: str = "time.sleep(300)\n"
             ) -> Iterator[tuple[subprocess.Popen[str], list[psutil.Process]]]:
    """The test command once it started its six processes; afterwards, whatever the test
    did, the command and those processes are killed."""
    cmd = _script(tmp_path, body)
    started: list[psutil.Process] = []
    try:
        assert cmd.stdout is not None and cmd.stdout.readline().strip() == "started"
        started = _all_started(tmp_path, cmd.pid)
        yield cmd, started
    finally:
        cmd.kill()
        cmd.wait(5)
        for p in started:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def _gone(procs: list[psutil.Process], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs):
            return True
        time.sleep(0.1)
    return False


def test_a_command_killed_with_sigkill_leaves_nothing_running(tmp_path: Path) -> None:
    marker = _marker(tmp_path)
    with _command(tmp_path) as (cmd, started):
        os.kill(cmd.pid, signal.SIGKILL)
        assert _gone(started, 10), "the guardian did not stop what the killed command started"
        assert "its guardian stopped" in json.loads(marker.read_text())["how"]
        assert not (tmp_path / "runs" / f"{cmd.pid}.json").exists()


def test_the_next_command_stops_what_a_command_killed_with_its_guardian_left(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    marker = _marker(tmp_path)
    with _command(tmp_path) as (cmd, started):
        guardian = [c for c in psutil.Process(cmd.pid).children() if "harness.support.guard" in " ".join(c.cmdline())]
        assert len(guardian) == 1
        guardian[0].kill()  # SIGKILL: it cannot act on it (it stays a zombie of the command's until then)
        os.kill(cmd.pid, signal.SIGKILL)
        cmd.wait(5)
        time.sleep(0.5)
        assert all(p.is_running() for p in started)  # orphans, until the next command starts
        monkeypatch.setattr(guard, "RECORDS", tmp_path / "runs")
        lines = guard.clean_leftovers()
        assert _gone(started, 5)
        assert any("sleeper-0" in line and "sleeper-1" in line for line in lines), lines
        assert "the next command stopped" in json.loads(marker.read_text())["how"]
        assert guard.clean_leftovers() == []


def test_a_command_that_finished_releases_its_guardian_and_record(tmp_path: Path) -> None:
    cmd = _script(tmp_path, """
        procs.stop_all()
        guard.release()
        print("released", flush=True)
    """)
    out, _ = cmd.communicate(timeout=30)
    assert "released" in out and cmd.returncode == 0
    assert list((tmp_path / "runs").glob("*.json")) == []


def test_a_record_whose_command_still_runs_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _command(tmp_path) as (cmd, _):
        monkeypatch.setattr(guard, "RECORDS", tmp_path / "runs")
        assert guard.clean_leftovers() == []
        assert len(_sleepers(tmp_path, _record(tmp_path, cmd.pid))) == 6


def test_a_second_interrupt_exits_even_when_the_main_thread_is_stuck_in_native_code(tmp_path: Path) -> None:
    with _command(tmp_path, """
        import ctypes
        from harness.support import interrupt
        interrupt.install()
        try:
            time.sleep(300)
        except KeyboardInterrupt:
            print("cleaning up", flush=True)
            libc = ctypes.CDLL(None)
            while True:  # a client library's shutdown that never returns
                libc.sleep(300)
    """) as (cmd, started):
        time.sleep(0.5)  # interrupt.install() runs after "started"
        cmd.send_signal(signal.SIGINT)
        assert cmd.stdout is not None and cmd.stdout.readline().strip() == "cleaning up"
        cmd.send_signal(signal.SIGINT)
        assert cmd.wait(10) == 130
        assert _gone(started, 10)


def test_a_process_under_test_runs_below_the_instrument_in_its_session_too(tmp_path: Path) -> None:
    """Niced itself, and where the kernel shares the CPU between sessions first (autogroup),
    its session is niced as well: a process's own niceness does not count across sessions."""
    from harness.support.procs import engine_nice

    under, beside = (ManagedProcess(name, ["sleep", "30"], tmp_path / f"{name}.log", under_test=test)
                     for name, test in (("engine", True), ("instrument", False)))
    try:
        deadline = time.monotonic() + 5
        while psutil.Process(under.pid).name() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.01)  # `nice` sets the niceness, then execs the command
        assert psutil.Process(under.pid).nice() == engine_nice() > 0
        assert psutil.Process(beside.pid).nice() == 0
        group = Path(f"/proc/{under.pid}/autogroup")
        if group.exists():
            assert group.read_text().split()[-1] == str(engine_nice())
            assert Path(f"/proc/{beside.pid}/autogroup").read_text().split()[-1] == "0"
    finally:
        under.stop(grace_s=1)
        beside.stop(grace_s=1)


def test_replicated_brokers_run_beside_the_instrument_and_the_record_says_so() -> None:
    """Niced, three brokers on 2 cores answered so slowly that the driver's idempotent
    producer spun and kept them starved (docs/probes/replicated-produce.md)."""
    from harness.backends.local import LocalBackend
    from harness.support.procs import engine_nice
    from harness.workload.schema import Workload

    def wl(brokers: int) -> Workload:
        return Workload.model_validate({"name": "t", "seed": 1, "duration_s": 60, "rate": 100, "users": 100,
                                        "kafka": {"brokers": brokers}})

    one, three = LocalBackend().protection(wl(1)), LocalBackend().protection(wl(3))
    assert one["engine_nice"] == three["engine_nice"] == engine_nice() > 0
    assert one["how"].startswith("the brokers and engines run at niceness")
    assert three["how"].startswith("the engines (not the replicated brokers")
