"""One benchmark run: for each engine, a fresh Kafka, the pipeline, the load, the faults,
the drain, then the judgement (oracle + checker) and the figures."""
from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.live import Live
from rich.table import Table

from harness.backends.base import Backend, KafkaCluster
from harness.engines import registry as engines
from harness.engines.base import EngineContext
from harness.judge.judge import Expected, History, judge
from harness.judge.oracle import Decision, WindowsExpected, decide, windows
from harness.load import collector, driver, positions
from harness.load.generator import Txn, generate
from harness.load.messages import (
    CollectorDone,
    CollectorMessage,
    CollectorTick,
    DriverMessage,
    DriverReport,
    DriverTick,
    LoadStart,
    Ready,
)
from harness.results import layout
from harness.results.schema import CpuSeconds, Disturbance, EngineResult
from harness.results.store import RunDir, metadata
from harness.run import archive
from harness.run.disturbance import OtherCpu
from harness.run.nemesis import Nemesis
from harness.support import guard, procs
from harness.support.console import console
from harness.support.errors import ClusterError
from harness.support.procs import CpuSampler
from harness.support.wait import wait_until
from harness.workload.schema import Workload

LEAD_NS = 1_000_000_000  # between telling the driver to start and the first intended send
READY_TIMEOUT_S = 120.0
DRAIN_GRACE_S = 2.0  # after the last expected decision, keep reading for late duplicates
# How often the engine's and the brokers' processes are checked (a container's check is a
# `docker inspect`: not ten times a second beside the instrument).
HEALTH_INTERVAL_S = 1.0


@dataclass
class LiveState:
    engine: str
    phase: str = "starting"
    expected: int = 0
    second: int = 0
    sent_last_s: int = 0
    driver_lag_ms: float = 0.0
    sent_total: int = 0
    recv_last_s: int = 0
    p50: float | None = None
    p99: float | None = None
    received: int = 0
    unique: int = 0
    windows_expected: int = 0  # required window results; 0: no windows output
    windows: int = 0  # distinct window results received
    faults: int = 0

    def render(self, duration_s: float) -> Table:
        t = Table(show_header=True, header_style="bold")
        for c in ("engine", "phase", "t/s", "sent/s", "lag ms", "decisions/s", "p50 ms", "p99 ms", "received",
                  "faults"):
            t.add_column(c, justify="right")
        fmt = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
        t.add_row(self.engine, self.phase, f"{self.second}/{duration_s:.0f}", f"{self.sent_last_s:,}",
                  f"{self.driver_lag_ms:.1f}", f"{self.recv_last_s:,}", fmt(self.p50), fmt(self.p99),
                  f"{self.unique:,}/{self.expected:,}", str(self.faults))
        return t

    def line(self) -> str:
        windows = f" windows={self.windows}/{self.windows_expected}" if self.windows_expected else ""
        return (f"{self.engine} {self.phase} t={self.second}s sent/s={self.sent_last_s} lag={self.driver_lag_ms:.1f}ms "
                f"decisions/s={self.recv_last_s} p99={self.p99} received={self.unique}/{self.expected}{windows}")

    @property
    def complete(self) -> bool:
        return self.unique >= self.expected and self.windows >= self.windows_expected


@dataclass
class _Child:
    """A driver or collector process, as wait_until watches it."""

    what: str
    proc: mp.process.BaseProcess
    log: Path | None = None  # they report through their queues, not a log

    @property
    def name(self) -> str:
        return f"the {self.what} (exit code {self.proc.exitcode})"

    def alive(self) -> bool:
        return self.proc.is_alive()


def _ready(q: mp.Queue[Any], timeout_s: float, what: str, proc: mp.process.BaseProcess) -> Ready:
    def next_ready() -> Ready | None:
        try:
            msg = q.get(timeout=0.5)
        except queue.Empty:
            return None
        return msg if isinstance(msg, Ready) else None

    return wait_until(next_ready, timeout_s, f"the {what} to be ready", watch=[_Child(what, proc)], interval_s=0)


def _drain(q: mp.Queue[Any]) -> list[Any]:
    """What the queue holds now, waiting briefly for the first message."""
    out = []
    while True:
        try:
            out.append(q.get(timeout=0.05))
        except queue.Empty:
            return out


@contextmanager
def _phase_on_exit(st: LiveState) -> Iterator[None]:
    """The live table's last frame says why it stopped, not the phase it was in."""
    try:
        yield
    except KeyboardInterrupt:
        st.phase = "interrupted"
        raise
    except Exception:
        st.phase = "failed"
        raise
    st.phase = "done"


class EngineRun:
    """Everything one engine's run needs, torn down in `close` whatever happened."""

    def __init__(self, name: str, options: dict[str, Any], wl: Workload, run_dir: RunDir,
                 records: list[Txn], oracle: list[Decision], windows_expected: WindowsExpected | None,
                 keep_records: bool, backend: Backend) -> None:
        self.name = name
        self.run_dir = run_dir
        self.records = records
        self.oracle = oracle
        self.keep_records = keep_records
        self.log_dir = layout.engine_logs(run_dir.path, name)
        self.kafka: KafkaCluster = backend.kafka(wl.kafka, self.log_dir)
        # On a cluster the run did not start, the topics carry the run's names.
        self.wl = wl.model_copy(update={"kafka": self.kafka.topics(wl.kafka)})
        self.engine = engines.create(name, options)
        # Only the pipelines that apply the rules keep the windows (passthrough copies records).
        self.windows_expected = windows_expected if self.engine.applies_rules else None
        self.mp = mp.get_context("spawn")
        self.procs: list[mp.process.BaseProcess] = []
        self.nemesis: Nemesis | None = None
        self.state = LiveState(name, expected=len(records),
                               windows_expected=len(self.windows_expected.required) if self.windows_expected else 0)
        self.events: list[str] = []
        self.cpu_load: dict[str, float | None] = {}
        self.backend = backend
        self.disturbance: Disturbance | None = None

    def execute(self) -> EngineResult:
        wl = self.wl
        setup: dict[str, float] = {}
        self.engine.prepare()
        t0 = time.monotonic()
        self.kafka.start()
        setup["kafka_start_s"] = round(time.monotonic() - t0, 2)
        self.kafka.create_topics(wl.kafka.partitions, [wl.kafka.transactions_topic, wl.kafka.decisions_topic,
                                                       *([wl.kafka.windows_topic] if self.windows_expected else [])])
        t0 = time.monotonic()
        with console.status(f"Deploying the {self.name} pipeline"):
            self.engine.start(EngineContext(wl, self.kafka, self.log_dir, self.kafka.names))
        setup["engine_start_s"] = round(time.monotonic() - t0, 2)
        console.print(f"[green]✓[/] {self.name} pipeline running in {setup['engine_start_s']:.1f} s")

        out_file = layout.received(self.run_dir.path, self.name)
        windows_file = layout.windows_received(self.run_dir.path, self.name) if self.windows_expected else None
        cstats: mp.Queue[CollectorMessage] = self.mp.Queue()
        dstats: mp.Queue[DriverMessage] = self.mp.Queue()
        start_q: mp.Queue[LoadStart] = self.mp.Queue()
        stop = self.mp.Event()
        coll = self.mp.Process(target=collector.run, name="collector",
                               args=(collector.CollectorPlan(self.kafka.client, f"{self.kafka.names}-collector",
                                                             wl.kafka.decisions_topic, out_file,
                                                             wl.kafka.windows_topic if windows_file else None,
                                                             windows_file), cstats, stop))
        drv = self.mp.Process(target=driver.run, name="driver",
                              args=(self.kafka.client, wl, dstats, start_q))
        self.procs = [coll, drv]
        coll.start()
        drv.start()
        guard.remember("collector", coll.pid or 0)
        guard.remember("driver", drv.pid or 0)
        _ready(cstats, READY_TIMEOUT_S, "collector", coll)
        _ready(dstats, READY_TIMEOUT_S, "driver", drv)

        others = OtherCpu(self.backend.daemons)
        others.start()
        cpu_before = self._cpu_now()
        start = LoadStart(wall_ns=time.time_ns() + LEAD_NS, mono_ns=time.monotonic_ns() + LEAD_NS)
        start_q.put(start)
        self.nemesis = Nemesis(self.engine, self.kafka, list(wl.faults), start.mono_ns)
        report, collected = self._observe(start, dstats, cstats, stop, drv, coll)
        end_ns = time.time_ns()
        self.nemesis.stop()
        cpu_after = self._cpu_now()
        self.disturbance = others.stop()
        self.cpu_load = {k: None if a is None or b is None else round(a - b, 2)
                         for k, (a, b) in ((k, (cpu_after[k], cpu_before[k])) for k in cpu_before)}
        received = np.load(out_file)
        window_results = np.load(windows_file) if windows_file else None
        return self._judge(setup, start, end_ns, report, collected, received, window_results)

    def _cpu_now(self) -> dict[str, float | None]:
        """CPU seconds so far of the engine and the brokers, freshly sampled."""
        for p in procs.live():
            p.sample_cpu()
        return {"engine": self.engine.cpu_seconds(), "kafka": self.kafka.cpu_seconds()}

    def _observe(self, start: LoadStart, dstats: mp.Queue[DriverMessage], cstats: mp.Queue[CollectorMessage],
                 stop: Any, drv: mp.process.BaseProcess, coll: mp.process.BaseProcess
                 ) -> tuple[DriverReport, CollectorDone]:
        wl = self.wl
        st = self.state
        st.phase = "load"
        report: DriverReport | None = None
        collected: CollectorDone | None = None
        last_progress = time.monotonic()
        drain_since: float | None = None
        complete_since: float | None = None
        interactive = console.is_terminal
        last_line = last_health = 0.0
        with Live(get_renderable=lambda: st.render(wl.duration_s), console=console, refresh_per_second=2,
                  transient=False, auto_refresh=interactive) as live, _phase_on_exit(st):
            while collected is None:
                for msg in _drain(dstats) + _drain(cstats):
                    match msg:
                        case DriverTick():
                            st.second, st.sent_last_s, st.driver_lag_ms, st.sent_total = \
                                msg.second, msg.sent, msg.max_lag_ms, msg.sent_total
                        case DriverReport():
                            report = msg
                            st.phase = "drain"
                            drain_since = time.monotonic()
                        case CollectorTick():
                            st.recv_last_s, st.p50, st.p99, st.received = \
                                msg.received_last_s, msg.p50_ms, msg.p99_ms, msg.received
                            if msg.unique > st.unique or msg.windows_unique > st.windows:
                                last_progress = time.monotonic()
                            st.unique, st.windows = msg.unique, msg.windows_unique
                        case CollectorDone():
                            collected = msg
                if time.monotonic() - last_health >= HEALTH_INTERVAL_S:
                    last_health = time.monotonic()
                    self.events += self.engine.check_health()
                    self.kafka.check_health()
                st.faults = len(self.nemesis.events) if self.nemesis else 0
                # A process that exits right after its last message: read that first.
                if report is None and not drv.is_alive() and dstats.empty():
                    raise ClusterError(f"the load driver died (exit code {drv.exitcode})")
                if collected is None and not coll.is_alive() and cstats.empty():
                    raise ClusterError(f"the collector died (exit code {coll.exitcode})")
                if report is not None and not stop.is_set():
                    now = time.monotonic()
                    if st.complete:
                        complete_since = complete_since or now
                    if (complete_since and now - complete_since >= DRAIN_GRACE_S) or \
                            now - max(last_progress, drain_since or now) > wl.drain_timeout_s:
                        if st.unique < st.expected:
                            self.events.append(f"drain ended with {st.expected - st.unique} decisions missing "
                                               f"after {wl.drain_timeout_s:.0f} s without progress")
                        if st.windows < st.windows_expected:
                            self.events.append(f"drain ended with {st.windows} of {st.windows_expected} window "
                                               f"results after {wl.drain_timeout_s:.0f} s without progress")
                        stop.set()
                        st.phase = "stopping"
                if interactive:
                    live.refresh()
                elif time.monotonic() - last_line >= 10:
                    last_line = time.monotonic()
                    console.print(st.line())
        drv.join(timeout=30)
        coll.join(timeout=30)
        assert report is not None
        return report, collected

    def _judge(self, setup: dict[str, float], start: LoadStart, end_ns: int, report: DriverReport,
               collected: CollectorDone, received: np.ndarray, window_results: np.ndarray | None) -> EngineResult:
        assert self.nemesis is not None
        expected = Expected(self.records, self.oracle, self.windows_expected, self.engine.applies_rules)
        v = judge(self.wl, expected, History(start, end_ns, received, window_results, self.nemesis.events, report,
                                             collected))
        self.run_dir.append_timeseries(self.name, v.series)
        if v.failure:
            raise ClusterError(f"{v.failure}; the engine's logs are in {self.log_dir}")
        if self.keep_records:
            self._write_records(start, end_ns, received, window_results)
        return EngineResult(
            engine=self.name, status="ok", describe=self.engine.describe(), setup=setup, kafka=self.kafka.describe(),
            load_start_ns=start.wall_ns, latency_ms=v.latency, throughput=v.throughput, correctness=v.correctness,
            windows=v.windows, recovery=v.recovery,
            cpu_seconds=CpuSeconds(
                engine=_rounded(self.engine.cpu_seconds()),
                kafka=_rounded(self.kafka.cpu_seconds()),
                # From the load's start to the drain's end: without start-up and JIT warm-up,
                # what the work itself cost.
                engine_load=self.cpu_load["engine"],
                kafka_load=self.cpu_load["kafka"],
                driver=round(report.cpu_seconds, 2),
                collector=round(collected.cpu_seconds, 2),
            ),
            disturbance=self.disturbance,
            events=self.events + [f"collector error: {e}" for e in collected.errors],
        )

    def _write_records(self, start: LoadStart, end_ns: int, received: np.ndarray,
                       window_results: np.ndarray | None) -> None:
        assert self.nemesis is not None
        with console.status(f"Archiving {self.name}'s records: reading back where each input landed"):
            landed = positions.read(self.kafka.client, f"{self.kafka.names}-archive", self.wl.kafka.transactions_topic,
                                    len(self.records))
            archive.write(self.run_dir.path, self.name, wl=self.wl, records=self.records, load_start_ns=start.wall_ns,
                          drain_end_ns=end_ns, landed=landed, received=received, windows=window_results,
                          faults=self.nemesis.events)
        console.print(f"[green]✓[/] records archived in {layout.records(self.run_dir.path, self.name)}")

    def close(self) -> None:
        if self.nemesis is not None:
            self.nemesis.stop()
        for p in self.procs:
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
        self.engine.stop()
        self.kafka.stop()


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


def run(wl: Workload, workload_path: str, workload_text: str, results_base: Path,
        backend: Backend, engine_names: list[str] | None = None, keep_records: bool = False) -> RunDir:
    names = engine_names or list(wl.engines)
    backend.check(wl, names)
    run_dir = RunDir(results_base, wl.name, metadata(workload_path, workload_text, wl, backend.name,
                                                     backend.describe(), backend.protection(wl), backend.cluster))
    run_dir.write()
    guard.running_in(layout.killed_marker(run_dir.path))
    console.print(f"Backend [bold]{backend.name}[/]: {backend.describe()}")
    for line in backend.begin():
        console.print(line)
    console.print(f"Results go to [bold]{run_dir.path}[/]")
    with console.status("Generating the workload and the oracle's decisions"):
        t0 = time.monotonic()
        records = generate(wl)
        oracle_map = decide(records, wl.rules)
        oracle = [oracle_map[i] for i in range(len(records))]
        windows_expected = windows(records, wl.windows, wl.rules) if wl.windows else None
    counts = {k: sum(1 for d in oracle if d.decision == k) for k in ("APPROVE", "BLOCK", "LATE")}
    console.print(f"[green]✓[/] {len(records):,} transactions, oracle {counts} in {time.monotonic() - t0:.1f} s")
    if windows_expected:
        console.print(f"[green]✓[/] windows: {len(windows_expected.required):,} results owed, "
                      f"{len(windows_expected.optional):,} more may come")
    sampler = CpuSampler()
    try:
        for name in names:
            console.rule(f"[bold]{name}")
            er = EngineRun(name, wl.engines.get(name) or {}, wl, run_dir, records, oracle, windows_expected,
                           keep_records, backend)
            try:
                result = er.execute()
            except KeyboardInterrupt:
                console.print()
                run_dir.summary.engines.append(EngineResult(engine=name, status="interrupted"))
                run_dir.finish("partial", error="interrupted by the user")
                raise
            except Exception as e:
                console.print(f"[red]{name} failed:[/] {e}")
                result = EngineResult(engine=name, status="failed", error=f"{type(e).__name__}: {e}")
            finally:
                er.close()
            run_dir.add(result)
    finally:
        sampler.close()
    failed = [e.engine for e in run_dir.summary.engines if not e.ok]
    run_dir.finish("complete" if not failed else "partial",
                   error=f"engines failed: {', '.join(failed)}" if failed else None)
    guard.running_in(None)
    return run_dir
