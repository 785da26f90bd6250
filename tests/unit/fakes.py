"""Stand-ins for what engines and the nemesis drive (processes, brokers, launchers), so that
their logic runs in unit tests without starting anything."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient


class FakeWorker:
    """A process that is only a name: killing it marks it dead."""

    def __init__(self, name: str, alive: bool = True, executors: int = 1) -> None:
        self.name = name
        self.log = Path(f"/nonexistent/{name}.log")
        self.cpu_seconds = 0.0
        self.killed = False
        self.matched: list[str] = []  # patterns kill_matching was asked for
        self._alive = alive
        self._executors = executors

    @property
    def ident(self) -> str:
        return f"fake {self.name}"

    def alive(self) -> bool:
        return self._alive and not self.killed

    def exit_code(self) -> int | None:
        return None if self.alive() else -9

    def wait(self, timeout_s: float) -> int | None:
        return self.exit_code()

    def kill(self) -> None:
        self.killed = True

    def stop(self, grace_s: float = 10.0) -> None:
        self.killed = True

    def kill_matching(self, pattern: str) -> int:
        self.matched.append(pattern)
        return self._executors


@dataclass
class Launch:
    name: str
    argv: list[str]
    env: dict[str, str]
    memory_mb: int


class FakeKafka:
    """Brokers that record kills, restarts, topics and launched pipeline processes."""

    backend = "local"
    bootstrap = "127.0.0.1:9092"
    engine_bootstrap = processor_bootstrap = "127.0.0.1:9092"
    engine_client: dict[str, str] = {}
    names = "showdown-run1"
    version = "0"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []  # (what, the fault or the broker instance)
        self.launched: list[Launch] = []

    def kill_broker(self, instance: int) -> str:
        self.calls.append(("kill_broker", instance))
        return f"Kafka broker {instance + 1}"

    def restart_broker(self, instance: int) -> None:
        self.calls.append(("restart_broker", instance))

    def launch_python(self, name: str, script: Path, args: Sequence[str], log: Path, env: Mapping[str, str],
                      cpus: float, memory_mb: int) -> FakeWorker:
        self.launched.append(Launch(name, [str(script), *args], dict(env), memory_mb))
        return FakeWorker(name)

    def create_topics(self, partitions: int, names: list[str], config: dict[str, str] | None = None) -> None:
        self.calls.append(("create_topics", names))

    def start(self, timeout_s: float = 120.0) -> str:
        return self.bootstrap

    def admin(self) -> AdminClient:
        raise AssertionError("no admin client in unit tests")

    def cpu_seconds(self) -> float:
        return 0.0

    def describe(self) -> dict[str, object]:
        return {}

    def stop(self) -> None: ...


@dataclass
class FakeLauncher:
    """A Launcher that records what it would start. `networked` decides the addresses, as the
    containers launcher (each process by its alias on a network of its own, the
    distribution at its path in the image) and the local one (all on 127.0.0.1) do."""

    wheel_home: Path = Path("/nonexistent/wheel")
    networked: bool = False
    python: Path = Path("/venvs/engine/bin/python")
    launched: list[Launch] = field(default_factory=list)
    where: str = "as fakes"
    bind: str = field(init=False)
    host: str | None = field(init=False)
    home: Path = field(init=False)
    limits: bool = field(init=False)

    def __post_init__(self) -> None:
        self.bind = "0.0.0.0" if self.networked else "127.0.0.1"
        self.host = None if self.networked else "127.0.0.1"
        self.home = Path("/opt/engine") if self.networked else self.wheel_home
        self.limits = self.networked

    def address(self, alias: str) -> str:
        return alias if self.networked else "127.0.0.1"

    def jar(self, jar: Path) -> Path:
        return jar

    def share(self, path: Path) -> None: ...

    def launch(self, name: str, argv: Sequence[str], log: Path, env: Mapping[str, str], cpus: float,
               memory_mb: int, alias: str | None = None, publish: Sequence[int] = ()) -> FakeWorker:
        self.launched.append(Launch(name, list(argv), dict(env), memory_mb))
        return FakeWorker(name)

    def describe(self) -> dict[str, object]:
        return {}
