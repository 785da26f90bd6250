from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.support.errors import ClusterError, SetupError
from harness.support.wait import wait_until


@dataclass
class Proc:
    name: str
    log: Path | None
    up: bool = True

    def alive(self) -> bool:
        return self.up


def test_returns_the_probes_first_truthy_answer() -> None:
    answers = iter([None, 0, {"brokers": 3}])
    assert wait_until(lambda: next(answers), 5, "brokers", interval_s=0) == {"brokers": 3}


def test_a_dead_process_ends_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "tm.log"
    log.write_text("starting\njava.lang.OutOfMemoryError: Java heap space\n")
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match="taskmanager-0 exited while waiting for 2 TaskManagers") as e:
        wait_until(lambda: False, 60, "2 TaskManagers", watch=[Proc("jobmanager", None), Proc("taskmanager-0", log,
                                                                                                up=False)])
    assert time.monotonic() - t0 < 1, "not after the timeout"
    assert "OutOfMemoryError" in str(e.value)


def test_a_timeout_shows_the_given_log_or_the_first_watched_one(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text("waiting for the controller quorum\n")
    with pytest.raises(ClusterError, match=r"timed out after 0 s waiting for Kafka(.|\n)*controller quorum"):
        wait_until(lambda: None, 0.05, "Kafka", watch=[None, Proc("kafka-1", log)], interval_s=0.01)
    with pytest.raises(SetupError, match="^timed out after 0 s waiting for dockerd$"):
        wait_until(lambda: None, 0.05, "dockerd", interval_s=0.01, error=SetupError)


def test_only_the_named_exceptions_mean_not_yet() -> None:
    calls = iter([OSError("connection refused"), OSError("connection refused"), True])

    def probe() -> bool:
        answer = next(calls)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(probe, 5, "the REST port", retry_on=(OSError,), interval_s=0) is True
    with pytest.raises(ClusterError, match="FAILED"):
        wait_until(lambda: (_ for _ in ()).throw(ClusterError("the Flink job is FAILED")), 5, "the job",
                   retry_on=(OSError,))
