"""The backend seam: chosen once with its reason, and what each backend says of itself."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends import choice, daemon
from harness.backends.containers import ContainersBackend, Mount
from harness.backends.local import LocalBackend
from tests.conftest import make


def test_a_backend_asked_for_is_taken_as_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon, "why_not", lambda: pytest.fail("no probe when the backend is named"))
    local, containers = choice.choose("local"), choice.choose("containers")
    assert (local.name, local.why) == ("local", "asked for")
    assert (containers.name, containers.why) == ("containers", "asked for")


@pytest.mark.parametrize("reason,expected", [("", "containers"), ("no Docker engine answers", "local")])
def test_auto_takes_containers_where_docker_can_run_and_says_why(monkeypatch: pytest.MonkeyPatch, reason: str,
                                                                  expected: str) -> None:
    monkeypatch.setattr(daemon, "why_not", lambda: reason)
    backend = choice.choose("auto")
    assert backend.name == expected and backend.why.startswith("auto: ")
    assert reason in backend.why and backend.why in backend.describe()


def test_only_the_containers_backend_counts_the_docker_daemons_as_the_runs() -> None:
    assert LocalBackend().daemons == frozenset()
    assert "dockerd" in ContainersBackend().daemons


def test_containers_protect_the_instrument_by_cgroups_not_niceness() -> None:
    protection = ContainersBackend().protection(make())
    assert protection["engine_nice"] == 0 and "cgroup" in protection["how"]


def test_a_mount_keeps_colons_in_its_paths() -> None:
    """A run's log folder is named after its row (`spark:idempotent`): a volume spec
    (`host:container:mode`) would split it; a mount does not."""
    spec = Mount(Path("/runs/x/logs/spark:idempotent"), Path("/runs/x/logs/spark:idempotent"), readonly=True).spec
    assert spec["Source"] == spec["Target"] == "/runs/x/logs/spark:idempotent"
    assert spec["Type"] == "bind" and spec["ReadOnly"] is True
