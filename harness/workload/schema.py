"""The typed schema of a workload: what a run does (docs/spec.md, README "Workload fields")."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.support.names import same_topic, topic_problem, workload_name_problem


class Strict(BaseModel):
    # strict: `rate: true` is not 1 ev/s, nor is a quoted "5" a number (YAML's unquoted
    # numbers, 1e6 too, are numbers: files.py). No .inf or .nan: every float here is a
    # duration, a rate or a bound that arithmetic or a timer takes later.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


DAY = 86_400
# Sums of amounts over a window must fit the 64-bit integers of the engines and the history.
MAX_CENTS = 10**10
# events/s: the driver's ceiling (a Python producer) is far below.
Rate = Annotated[float, Field(gt=0, le=1_000_000)]


def _refused_by(problem_of: Callable[[str], str | None]) -> AfterValidator:
    """A name checked by one of support/names.py's rules, its message as the field's error."""
    def check(value: str) -> str:
        problem = problem_of(value)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


TopicName = Annotated[str, _refused_by(topic_problem)]
WorkloadName = Annotated[str, _refused_by(workload_name_problem)]


class Phase(Strict):
    """A stretch of the run at `multiplier` x the base rate (e.g. a flash-sale surge)."""

    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    multiplier: float = Field(gt=0, le=1000)


class Amount(Strict):
    """Log-normal payment amounts: `median_cents` x e^(sigma x N(0,1)), clipped to [1, max_cents]."""

    median_cents: int = Field(4_000, gt=0, le=MAX_CENTS)
    sigma: float = Field(1.0, ge=0, le=5)
    max_cents: int = Field(200_000, gt=0, le=MAX_CENTS)


class OutOfOrder(Strict):
    """Events whose event time lags their send time by up to `max_delay_ms`."""

    fraction: float = Field(0.05, ge=0, le=1)
    max_delay_ms: int = Field(8_000, ge=0, le=DAY * 1000)


class BeyondLateness(Strict):
    """Events older than the allowed lateness by up to `max_extra_ms` (LATE if the user moved on)."""

    fraction: float = Field(0.005, ge=0, le=1)
    max_extra_ms: int = Field(20_000, gt=0, le=DAY * 1000)


class Burst(Strict):
    """Injected fraud: a random user makes `events` payments `spacing_ms` apart (event time)."""

    per_minute: float = Field(ge=0, le=600)
    events: int = Field(gt=0, le=1000)
    amount_cents: int = Field(gt=0, le=MAX_CENTS)
    spacing_ms: int = Field(ge=0, le=DAY * 1000)


class Fraud(Strict):
    spend_bursts: Burst = Burst(per_minute=4, events=6, amount_cents=120_000, spacing_ms=3_000)
    velocity_bursts: Burst = Burst(per_minute=4, events=12, amount_cents=1_500, spacing_ms=2_000)


class Rules(Strict):
    """The SPEC's rule parameters (section 2)."""

    window_s: int = Field(3_600, gt=0, le=7 * DAY)
    spend_limit_cents: int = Field(500_000, gt=0, le=MAX_CENTS)
    velocity_window_s: int = Field(60, gt=0, le=7 * DAY)
    velocity_limit: int = Field(8, gt=0)
    allowed_lateness_s: int = Field(10, ge=0, le=DAY)


# Every engine and the oracle keep a sum for each window an event falls in: size_s / slide_s.
MAX_WINDOWS_PER_EVENT = 100


class Windows(Strict):
    """The event-time windows output (docs/design/event-time-windows.md): per user, the spend
    and count over sliding windows of `size_s` every `slide_s`, aligned to the epoch,
    emitted once the engine's watermark (max event time − allowed lateness) passes the end."""

    size_s: int = Field(3_600, gt=0, le=7 * DAY)
    slide_s: int = Field(300, gt=0)

    @model_validator(mode="after")
    def _slides_fit(self) -> Windows:
        if self.size_s % self.slide_s:
            raise ValueError(f"size_s ({self.size_s}) must be a multiple of slide_s ({self.slide_s})")
        if self.size_s // self.slide_s > MAX_WINDOWS_PER_EVENT:
            raise ValueError(f"size_s / slide_s ({self.size_s // self.slide_s}) is the number of windows each event "
                             f"falls in: at most {MAX_WINDOWS_PER_EVENT}; raise slide_s")
        return self


class KafkaSettings(Strict):
    brokers: Literal[1, 3] = 1
    partitions: int = Field(4, ge=1, le=256)
    heap_mb: int = Field(1_024, ge=256, le=16_384)
    # Containers backend: each broker container's CPU limit (its memory limit is heap + 512 MB).
    cpus: float = Field(1.0, gt=0, le=64)
    # Kafka 4's transaction protocol: 2 (KIP-890, the default of a new 4.x cluster) bumps the
    # producer epoch on every commit; 1 is the protocol of Kafka 3.x.
    transaction_version: Literal[1, 2] = 2
    transactions_topic: TopicName = "transactions"
    decisions_topic: TopicName = "decisions"
    # The event-time windows output (workload `windows`), when there is one.
    windows_topic: TopicName = "windows"

    @model_validator(mode="after")
    def _distinct_topics(self) -> KafkaSettings:
        named = [("transactions_topic", self.transactions_topic), ("decisions_topic", self.decisions_topic),
                 ("windows_topic", self.windows_topic),
                 ("the changelog of the kafka engine's state", self.changelog_topic)]
        for i, (a, ta) in enumerate(named):
            for b, tb in named[i + 1:]:
                if same_topic(ta, tb):
                    raise ValueError(f"{a} ({ta!r}) and {b} ({tb!r}) are one Kafka topic (it takes '.' and '_' "
                                     f"alike): every topic of a run must be its own")
        return self

    @field_validator("brokers", "transaction_version", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        # A Literal of numbers takes true for 1, strict or not.
        if isinstance(value, bool):
            raise ValueError("a number, not true or false")
        return value

    @property
    def changelog_topic(self) -> str:
        return f"{self.transactions_topic}-state-changelog"

    @property
    def container_mb(self) -> int:
        """A broker container's memory limit: the heap plus the JVM's own and page cache room."""
        return self.heap_mb + 512


class DriverSettings(Strict):
    linger_ms: float = Field(1.0, ge=0, le=1_000)
    # The driver counts as having kept its schedule while its sends lag the plan by less.
    max_lag_ms: float = Field(100.0, gt=0)


class Fault(Strict):
    """At `at_s` after the load starts, hit the engine, and undo it `restart_after_s` later.

    kill worker: kill -9 the worker `instance` (Kafka processor; Flink TaskManager with its
    Python workers; Spark Worker with its executor), then start a new one, as a supervisor
    would. kill executor (Spark): kill -9 an executor JVM; its Worker starts a new one.
    kill driver (Spark): kill -9 the driver, then restart the query from its checkpoint.
    cancel-resubmit job (Flink): cancel the job, then resubmit it from its latest
    retained checkpoint.
    kill broker (every engine): kill -9 Kafka broker `instance` (its process, or
    `docker kill` of its container), then start it again on its data.
    """

    at_s: float = Field(gt=0)
    action: Literal["kill", "cancel-resubmit"] = "kill"
    target: Literal["worker", "executor", "driver", "job", "broker"] = "worker"
    # Which worker or broker, from 0: checked against the engines' workers (files.py) and
    # kafka.brokers, never wrapped around.
    instance: int = Field(0, ge=0)
    restart_after_s: float = Field(5.0, ge=0, le=DAY)

    @model_validator(mode="after")
    def _target_fits(self) -> Fault:
        allowed = TARGETS[self.action]
        if self.target not in allowed:
            raise ValueError(f"action {self.action} takes target {' or '.join(map(repr, allowed))}, "
                             f"got {self.target!r}")
        if self.target in ("driver", "job") and self.instance:
            raise ValueError(f"instance must be 0: there is one {self.target} to hit (got {self.instance})")
        return self

    @property
    def kind(self) -> str:
        """`action:target`, what engines list in their `fault_actions`."""
        return f"{self.action}:{self.target}"


def instances(count: int) -> str:
    """The `instance`s a fault may name among `count` workers or brokers."""
    return "instance 0" if count == 1 else f"instance 0 to {count - 1}"


TARGETS = {"kill": ("worker", "executor", "driver", "broker"), "cancel-resubmit": ("job",)}


class Sweep(Strict):
    """`showdown sweep`: each rate in turn, without faults, for `duration_s`. A rate is
    sustainable when the driver kept its schedule, every decision arrived, the p99 stayed
    under `p99_limit_ms`, and latency did not trend upward (its fitted growth over the
    step, after warm-up, stayed under `max_growth_ms`): Karimov et al., ICDE 2018."""

    rates: list[Rate] = Field(default_factory=lambda: [250.0, 500.0, 1000.0, 2000.0, 4000.0], min_length=1)
    duration_s: float = Field(60.0, gt=0, le=3600)
    warmup_s: float = Field(15.0, ge=0)
    p99_limit_ms: float = Field(5_000.0, gt=0)
    max_growth_ms: float = Field(1_000.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Sweep:
        if sorted(self.rates) != self.rates:
            raise ValueError(f"rates must be ascending, got {self.rates}")
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"warmup_s ({self.warmup_s}) must be shorter than duration_s ({self.duration_s})")
        return self


# Faults the harness injects into Kafka itself, whatever the engine.
CLUSTER_FAULTS = frozenset({"kill:broker"})


# The generator builds a shuffled id list and a Zipf table of `users` entries (size.py) in
# ~1 s per million; merchants are ids like them. Beyond this no rule would notice more.
MAX_IDS = 10_000_000


class Workload(Strict):
    name: WorkloadName
    description: str = ""
    seed: int = Field(ge=0)
    duration_s: float = Field(gt=0, le=24 * 3600)
    warmup_s: float = Field(10.0, ge=0)
    rate: Rate = Field(description="events/s, open loop")
    phases: list[Phase] = []
    users: int = Field(20_000, ge=1, le=MAX_IDS)
    key_skew: float = Field(0.5, ge=0, le=3, description="Zipf exponent; 0 = uniform")
    merchants: int = Field(5_000, ge=1, le=MAX_IDS)
    amount: Amount = Amount()
    out_of_order: OutOfOrder = OutOfOrder()
    beyond_lateness: BeyondLateness = BeyondLateness()
    fraud: Fraud = Fraud()
    rules: Rules = Rules()
    kafka: KafkaSettings = KafkaSettings()
    driver: DriverSettings = DriverSettings()
    engines: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"kafka": {}, "passthrough": {}})
    faults: list[Fault] = []
    drain_timeout_s: float = Field(60.0, gt=0, le=DAY)
    sweep: Sweep = Sweep()
    # With its time zone (2026-01-01T00:00:00Z): without one it would be the machine's local
    # time. Not strict: summary.json records it as text. From 2000 on, as Kafka timestamps
    # cannot be negative, late events included.
    event_time_start: AwareDatetime = Field(datetime(2026, 1, 1, tzinfo=UTC), strict=False,
                                            ge=datetime(2000, 1, 1, tzinfo=UTC))
    # Event-time milliseconds per millisecond of the schedule: > 1 lets a run of minutes
    # cover hours of event time, so that hour-long windows close within it.
    event_time_speed: float = Field(1.0, ge=1, le=3_600)
    windows: Windows | None = None
    # From this second of the load on, the driver writes value schema v2 (generator.encode_prefix).
    schema_v2_from_s: float | None = Field(None, ge=0)
    # A simulated scoring model every rules-applying pipeline calls once per event: it
    # waits this long without holding the CPU or Python's GIL, as a call to a model server
    # or to native inference code would. 0: no model step.
    model_cost_ms: float = Field(0.0, ge=0, le=1_000)

    def steady_until_s(self) -> float:
        """Where the steady part of the load ends: at the first surge or fault, else at its end."""
        return min([self.duration_s, *(p.start_s for p in self.phases), *(f.at_s for f in self.faults)])

    def pipeline_rules(self) -> dict[str, Any]:
        """What every pipeline's rules step is configured with (pipelines/rules.py)."""
        return {**self.rules.model_dump(), "model_cost_ms": self.model_cost_ms}

    def pipeline_windows(self) -> dict[str, Any] | None:
        """What every rules-applying pipeline's windows output is configured with; None: no output."""
        if self.windows is None:
            return None
        return {"size_ms": self.windows.size_s * 1000, "slide_ms": self.windows.slide_s * 1000,
                "lateness_ms": self.rules.allowed_lateness_s * 1000, "topic": self.kafka.windows_topic}

    @model_validator(mode="after")
    def _consistent(self) -> Workload:
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"warmup_s ({self.warmup_s}) must be shorter than duration_s ({self.duration_s})")
        for i, p in enumerate(self.phases):
            if p.start_s + p.duration_s > self.duration_s:
                raise ValueError(f"phases.{i} ends at {p.start_s + p.duration_s} s, "
                                 f"after duration_s ({self.duration_s})")
        ordered = sorted(self.phases, key=lambda p: p.start_s)
        for a, b in zip(ordered, ordered[1:]):
            if b.start_s < a.start_s + a.duration_s:
                raise ValueError(f"phases overlap: one starts at {b.start_s} s before the one at {a.start_s} s ends")
        if self.schema_v2_from_s is not None and self.schema_v2_from_s >= self.duration_s:
            raise ValueError(f"schema_v2_from_s ({self.schema_v2_from_s}) must be inside the run "
                             f"(duration_s {self.duration_s})")
        if self.windows is not None:
            # Whether a window keeps an event the watermark has passed depends on each engine's
            # timing, not on the data (the design file): such events would make the check inexact.
            if self.beyond_lateness.fraction:
                raise ValueError("windows need beyond_lateness.fraction: 0: whether an engine's window keeps an "
                                 "event beyond the lateness depends on its timing, so no exact check is possible")
            if self.out_of_order.max_delay_ms * 2 > self.rules.allowed_lateness_s * 1000:
                raise ValueError(f"windows need out_of_order.max_delay_ms ({self.out_of_order.max_delay_ms}) at most "
                                 f"half the allowed lateness ({self.rules.allowed_lateness_s * 500} ms): the margin "
                                 f"keeps a batch's fetch skew from closing a window early")
        for i, f in enumerate(self.faults):
            if f.at_s >= self.duration_s:
                raise ValueError(f"faults.{i}.at_s ({f.at_s}) must be inside the run (duration_s {self.duration_s})")
        if self.out_of_order.max_delay_ms > self.rules.allowed_lateness_s * 1000:
            raise ValueError(
                f"out_of_order.max_delay_ms ({self.out_of_order.max_delay_ms}) must stay within "
                f"rules.allowed_lateness_s ({self.rules.allowed_lateness_s} s); use beyond_lateness for later events"
            )
        if not self.engines:
            raise ValueError("engines is empty: name at least one engine")
        return self

    @property
    def event_time_start_ms(self) -> int:
        return int(self.event_time_start.timestamp() * 1000)

    @property
    def changelog_topic(self) -> str:
        return self.kafka.changelog_topic
