"""summary.json as typed models: what one run leaves for every reader (report, charts,
repeat, compare, recommend, sweep) and for another program (results/README.md).

`FORMAT_VERSION` goes up with every change a reader of the file would notice; `read.py`
upgrades what it can of older files and refuses the rest with a message."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from harness.workload.schema import Fault, Workload

# 1: summary.json before it carried a format_version. 2: format_version, the workload
# also recorded as parsed data, and no figure left out for older results' sake.
# 3: recovery as the start of the first stable stretch outside the output gap, counting
# records never decided (docs/spec.md, section 4), with the worst p99 after it; each
# row's disturbance; the machine's load, kernel, governor and cgroup limit.
# 4: runs on existing clusters: the cluster file (redacted) in the metadata, and the
# brokers' CPU may be not measured (null).
FORMAT_VERSION = 4


class Model(BaseModel):
    # A field the writer adds without adding it here fails the tests that write a run.
    model_config = ConfigDict(extra="forbid")


class Latency(Model):
    """End-to-end latency in ms over the records sent after the warm-up (docs/spec.md, section 4):
    exact nearest-rank percentiles; None when no such record was decided."""

    p50: float | None
    p90: float | None
    p99: float | None
    p999: float | None
    max: float | None
    mean: float | None
    n: int


class Throughput(Model):
    offered_per_s: float
    sent: int
    decisions_per_s: float
    driver_kept_schedule: bool
    driver_max_lag_ms: float
    driver_late_sends: int
    driver_delivery_errors: int
    driver_first_error: str | None
    # Most records sent but not yet decided at a second's end.
    backlog_max: int | None
    # Its fitted growth over the steady load (after warm-up, before any surge or fault);
    # None when that stretch is too short to fit.
    backlog_growth_per_s: float | None


class SchemaSplit(Model):
    """Missing, duplicates and wrong among the records sent in one value schema version."""

    sent: int
    missing: int
    duplicates: int
    wrong: int | None


class Correctness(Model):
    """The exactly-once check against the oracle (docs/spec.md, section 4)."""

    expected: int
    received: int
    missing: int
    duplicates: int
    wrong: int | None  # None: the engine applies no rules (passthrough)
    unexpected: int  # decisions for txn_ids never sent
    malformed: int = 0
    decisions: dict[str, int] = {}  # first copies received, by decision
    expected_decisions: dict[str, int] = {}
    examples: dict[str, list[str]] = {}  # a few offenders, for a human
    by_schema: dict[str, SchemaSplit] = {}
    exactly_once: bool


class WindowsResult(Model):
    """The event-time windows output against the oracle (docs/design/event-time-windows.md)."""

    required: int
    received: int
    missing: int
    duplicates: int
    wrong: int
    unexpected: int
    optional_received: int
    emission_delay_ms: dict[str, float | int | None] = {}
    examples: dict[str, list[str]] = {}
    exactly_once: bool


class FaultResult(Model):
    """One injected fault and what followed it (docs/spec.md, section 4)."""

    fault: Fault
    target: str  # what it hit, as the engine or the cluster named it; "" when the injection failed
    at_s: float  # injected, seconds after the load's start
    recovered_after_s: float | None  # when the harness restarted what it hit
    error: str | None
    output_gap_s: float
    recovered: bool
    recovery_time_s: float | None
    pre_fault_p99_ms: float | None
    threshold_ms: float | None
    peak_p99_ms: float | None
    # The worst rolling 1-s p99 from the recovery on: a later blip shows here, and does not
    # move the recovery. None when not recovered, and in results before format 3, whose
    # recovery time was "after the fault's last excursion" instead.
    worst_after_recovery_p99_ms: float | None = None
    final_p99_ms: float | None
    duplicates: int | None  # copies received from this fault until the next one; None in format-1 results


class CpuSeconds(Model):
    # None: not measured (a cluster the run did not start, whose file gives no `cpu` command).
    engine: float | None
    kafka: float | None
    # From the load's start to the drain's end: without start-up and JIT warm-up.
    engine_load: float | None
    kafka_load: float | None
    driver: float
    collector: float


class Disturbance(Model):
    """CPU used during the load and drain by processes outside the run (docs/spec.md,
    section 4). Over 5 % of the machine's capacity the row is disturbed: its latency is not
    evidence, and compare and recommend say so instead of using it."""

    other_cpu_s: float
    capacity_cpu_s: float
    share: float
    disturbed: bool
    busiest: list[str]  # the outside processes that used the most, with their CPU seconds
    load_average: list[float]  # 1, 5 and 15 min, when the load started


class EngineResult(Model):
    """One engine's row. Only `engine`, `status` and `error` are there when it did not finish."""

    engine: str
    status: Literal["ok", "failed", "interrupted"]
    error: str | None = None
    describe: dict[str, Any] = {}
    setup: dict[str, float] = {}
    kafka: dict[str, Any] = {}
    # The schedule's zero (epoch ns): with received.npy, enough to recompute every figure.
    load_start_ns: int | None = None
    latency_ms: Latency | None = None
    throughput: Throughput | None = None
    correctness: Correctness | None = None
    windows: WindowsResult | None = None
    recovery: list[FaultResult] = []
    cpu_seconds: CpuSeconds | None = None
    disturbance: Disturbance | None = None  # None: not measured (results before format 3)
    events: list[str] = []

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def disturbed(self) -> bool:
        return self.disturbance is not None and self.disturbance.disturbed

    def measured(self) -> Measured:
        """The figures of a finished row; only for rows that are `ok`."""
        assert self.latency_ms and self.throughput and self.correctness and self.cpu_seconds, self.engine
        return Measured(latency_ms=self.latency_ms, throughput=self.throughput, correctness=self.correctness,
                        cpu_seconds=self.cpu_seconds)


class Measured(BaseModel):
    """The figures every finished row has, without the Nones of a failed one."""

    latency_ms: Latency
    throughput: Throughput
    correctness: Correctness
    cpu_seconds: CpuSeconds


class RecordedWorkload(Model):
    path: str
    seed: int
    text: str  # the file as it was read, for provenance
    # The same, parsed, with every default filled in; None for a file this version cannot
    # parse (older results).
    parsed: Workload | None = None


class Metadata(Model):
    versions: dict[str, Any]
    backend: str
    backend_note: str | None = None
    machine: dict[str, Any]
    workload: RecordedWorkload
    git: dict[str, Any]
    command: list[str]
    # How the load driver and the collector were kept from being starved by what they
    # measure (README, "Protecting the instrument"); {} in results before format 3.
    instrument: dict[str, Any] = {}
    # A run on existing clusters (--cluster): the cluster file as given, secrets redacted
    # (format 4).
    cluster: dict[str, Any] | None = None


class Summary(Model):
    format_version: int = FORMAT_VERSION
    # killed: never written here; read so from the killed.json marker that a dead command's
    # guardian, or the next command, puts beside it (support/guard.py); `error` says how.
    status: Literal["partial", "complete", "killed"]
    started_at: str
    finished_at: str | None = None
    error: str | None = None
    workload_name: str
    metadata: Metadata
    engines: list[EngineResult] = []

    @property
    def workload(self) -> Workload | None:
        """The run's workload, parsed; None if it could not be read back."""
        return self.metadata.workload.parsed

    def engine(self, name: str) -> EngineResult:
        return next(e for e in self.engines if e.engine == name)
