"""The cluster file (`--cluster FILE`): services that already exist, how the harness and
the engines reach them, and how a fault hits them (docs/design/existing-clusters.md).

Secrets are named, never written: `${VAR}` in a value is a variable of an environment.
What the harness itself uses (`kafka.bootstrap`, `kafka.client`) is expanded here from
the harness's environment; what the engines use (`kafka.engine_client`) is passed on
unexpanded with the variable itself, and expanded where the engine runs. Fault and CPU
commands run in a shell given only the variables they name. The file is recorded with
the results as written, less the values of keys that name a secret.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator

from harness.support.errors import WorkloadError
from harness.workload.engine_options import kind
from harness.workload.files import read_yaml
from harness.workload.schema import Strict, Workload

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# The names every run creates on the cluster start with `<prefix>-<run id>-`: a topic, a
# consumer group, a transactional id, a job (docs/design/existing-clusters.md, "Naming").
PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
# Keys whose values are secrets wherever they appear (librdkafka's and Java clients' own
# spellings, and a Spark conf's): recorded as <redacted> unless they are a ${VAR}.
SECRET_KEY = re.compile(r"password|secret|token|credential|jaas|ssl\.key|private", re.IGNORECASE)
REDACTED = "<redacted>"
# Client settings the harness sets itself, per client: the file may not override them.
OWN_CLIENT_KEYS = ("bootstrap.servers", "group.id", "transactional.id", "isolation.level", "enable.idempotence")


def _prefix(value: str) -> str:
    if not PREFIX.fullmatch(value):
        raise ValueError("1 to 32 lower-case letters, digits or '-', starting with a letter or digit (every topic, "
                         "group and job of a run starts with it)")
    return value


def _template(value: str) -> str:
    if not value.strip():
        raise ValueError("an empty command")
    return value


Command = Annotated[str, AfterValidator(_template)]
# librdkafka takes every setting as text; YAML's numbers and true/false are written as such.
ClientValue = str | int | float | bool


class Fault(Strict):
    """How a fault hits one target: `kill` (`{instance}` is the workload fault's instance),
    and `restart` where the platform does not bring the instance back by itself."""

    kill: Command
    restart: Command | None = None


class KafkaSection(Strict):
    bootstrap: str = Field(min_length=1)  # host:port,... reached from this host
    engine_bootstrap: str | None = Field(None, min_length=1)  # as the engines reach it; default bootstrap
    client: dict[str, ClientValue] = {}  # librdkafka settings of the harness's clients (TLS, SASL)
    engine_client: dict[str, ClientValue] | None = None  # the engines'; default: client
    replication: int = Field(1, ge=1, le=16)  # of the run's topics
    faults: dict[Literal["broker"], Fault] = {}
    cpu: Command | None = None  # prints the brokers' CPU seconds so far

    @field_validator("client", "engine_client")
    @classmethod
    def _not_ours(cls, value: dict[str, ClientValue] | None) -> dict[str, ClientValue] | None:
        taken = [k for k in value or {} if k in OWN_CLIENT_KEYS]
        if taken:
            raise ValueError(f"{', '.join(taken)}: set by the harness for each client (the addresses go in "
                             f"bootstrap and engine_bootstrap)")
        return value


class FlinkSection(Strict):
    """A session cluster. The job is submitted by the Flink CLI here, which ships the job's
    Python files and the Kafka connector with it: nothing is installed on the cluster but
    PyFlink itself, with flink-python on its classpath (as docker/flink's image has it)."""

    rest: Annotated[str, Field(pattern=r"^http://[^/:]+:[0-9]+/?$")]  # http://host:port, from this host
    python: str = Field(min_length=1)  # the TaskManagers' Python, with apache-flink of the same version
    # Where the job's checkpoints go, as the cluster writes them (file://, s3://, ...);
    # default: the cluster's own execution.checkpointing.dir.
    checkpoints: str | None = Field(None, min_length=1)
    faults: dict[Literal["worker"], Fault] = {}
    cpu: Command | None = None  # prints the cluster's CPU seconds so far


class SparkSection(Strict):
    master: str = Field(min_length=1)  # spark://host:port
    python: str = Field(min_length=1)  # the executors' Python
    conf: dict[str, ClientValue] = {}
    faults: dict[Literal["worker", "executor"], Fault] = {}
    cpu: Command | None = None


class Processors(Strict):
    """Where the Kafka processors run: beside the harness, as local processes."""

    run: Literal["local"] = "local"


class ClusterFile(Strict):
    name: str = Field(min_length=1, max_length=64)
    prefix: Annotated[str, AfterValidator(_prefix)] = "showdown"
    kafka: KafkaSection
    flink: FlinkSection | None = None
    spark: SparkSection | None = None
    processors: Processors = Processors()
    # Names of this host's processes that run the services (a stack on this machine: e.g.
    # containerd-shim-runc-v2 for its containers): their CPU, and their children's, is the
    # run's, not a neighbour's disturbance (docs/spec.md, section 4).
    local_processes: list[Annotated[str, Field(min_length=1, max_length=64)]] = []


# Which section of the file a workload row needs, and which targets of its faults the
# harness hits itself (a local process, a REST call) rather than by the file's command.
SECTIONS = {"kafka": "kafka", "passthrough": "kafka", "flink": "flink", "spark": "spark"}
HIT_HERE = {"kafka": {"worker"}, "passthrough": {"worker"}, "flink": {"job"}, "spark": {"driver"}}
# Rows whose pipelines run against a cluster file today.
ATTACHABLE = {"kafka", "passthrough", "flink"}


def variables(value: str) -> list[str]:
    return VARIABLE.findall(value)


def expand(value: str, where: str, env: Mapping[str, str] | None = None) -> str:
    """`value` with every ${VAR} replaced from `env` (the harness's environment)."""
    source = os.environ if env is None else env
    missing = [v for v in variables(value) if v not in source]
    if missing:
        raise WorkloadError(f"{where}: ${{{missing[0]}}} is not set in the environment: export it, or write "
                            f"the value in the cluster file")
    return VARIABLE.sub(lambda m: source[m.group(1)], value)


def client_text(settings: Mapping[str, ClientValue]) -> dict[str, str]:
    """Client settings as librdkafka takes them: text, true/false in lower case."""
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in settings.items()}


def harness_client(section: KafkaSection, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings of every client the harness opens (driver, collector, admin), expanded."""
    out = {"bootstrap.servers": expand(section.bootstrap, "kafka.bootstrap", env)}
    for k, v in client_text(section.client).items():
        out[k] = expand(v, f"kafka.client.{k}", env)
    return out


def engine_client(section: KafkaSection) -> dict[str, str]:
    """The engines' client settings, with their ${VAR}s left for the engine to expand."""
    return client_text(section.client if section.engine_client is None else section.engine_client)


def redacted(data: Any, key: str = "") -> Any:
    """The file's parsed YAML with every secret-named key's value replaced, unless it is
    only a ${VAR} (the name of a secret, not the secret)."""
    if isinstance(data, dict):
        return {k: redacted(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [redacted(v, key) for v in data]
    if SECRET_KEY.search(key) and not (isinstance(data, str) and VARIABLE.fullmatch(data)):
        return REDACTED
    return data


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid cluster file"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {field}: unknown field")
        elif e["type"] == "missing":
            lines.append(f"  {field}: required field is missing")
        else:
            lines.append(f"  {field}: {e['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def parse(data: Any, source: str = "cluster file") -> ClusterFile:
    if not isinstance(data, dict):
        raise WorkloadError(f"{source}: a cluster file must be a YAML mapping of fields, got {type(data).__name__}")
    try:
        return ClusterFile.model_validate(data)
    except ValidationError as err:
        raise WorkloadError(_describe(err, source)) from None


def load(path: Path | str) -> tuple[ClusterFile, dict[str, Any]]:
    """The validated file, and its YAML redacted for the record."""
    data, _ = read_yaml(Path(path), "cluster file", "invalid cluster file")
    return parse(data, str(path)), redacted(data)


def problem(cluster: ClusterFile, wl: Workload, rows: list[str]) -> str | None:
    """A line naming what the cluster file lacks for these rows of the workload and its faults."""
    for row in rows:
        k = kind(row)
        section = SECTIONS[k]
        if getattr(cluster, section) is None:
            return f"engines.{row}: the cluster file has no `{section}:` section to run it on"
        if k not in ATTACHABLE:
            return (f"engines.{row}: {k} rows do not run on a cluster file yet (the kafka, passthrough and flink "
                    f"rows do; attaching to a Spark cluster is the next step of issue 17)")
        for i, fault in enumerate(wl.faults):
            target = fault.target
            if target in HIT_HERE[k]:
                continue
            owner = "kafka" if target == "broker" else section
            faults = getattr(cluster, owner).faults
            if target not in faults:
                return (f"faults.{i} ({fault.kind}) for engines.{row}: the cluster file gives no command for it "
                        f"(add {owner}.faults.{target}.kill)")
    return None
