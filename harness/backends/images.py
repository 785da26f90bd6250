"""Container images, built locally: a Debian base (pulled, or bootstrapped when no registry
answers) and one image per service from docker/<service>/, tagged by a hash of their inputs
and not rebuilt while that tag exists."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from docker.errors import DockerException

from harness.backends import daemon
from harness.provision import artifacts
from harness.provision.versions import pinned, python_package, runtime
from harness.support.console import console
from harness.support.env import child_env
from harness.support.errors import SetupError
from harness.support.paths import CACHE, ROOT

DOCKERFILES = ROOT / "docker"
DEFAULT_BASE = "debian:bookworm-slim"
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
BOOTSTRAP = DOCKERFILES / "base" / "bootstrap.sh"
# What Debian's official image sets, for the bootstrapped one.
BASE_CHANGES = ["ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                'CMD ["bash"]', f"LABEL {daemon.LABEL}"]


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:12]


def _pull(tag: str) -> bool:
    try:
        daemon.client().images.pull(tag)
        return True
    except DockerException:
        return False


def base_image() -> str:
    """BASE_IMAGE if set; else Debian's slim image if present or pullable; else a minimal
    bookworm bootstrapped here with debootstrap and imported (no registry needed)."""
    wanted = os.environ.get("BASE_IMAGE")
    if wanted:
        if not daemon.image_exists(wanted) and not _pull(wanted):
            raise SetupError(f"BASE_IMAGE={wanted} is not here and cannot be pulled")
        return wanted
    if daemon.image_exists(DEFAULT_BASE):
        return DEFAULT_BASE
    with console.status(f"Pulling {DEFAULT_BASE}"):
        if _pull(DEFAULT_BASE):
            return DEFAULT_BASE
    tag = f"showdown/base:bookworm-{_digest(BOOTSTRAP.read_bytes(), DEBIAN_MIRROR, repr(BASE_CHANGES))}"
    if daemon.image_exists(tag):
        return tag
    debootstrap = artifacts.require_tool("debootstrap", "Install it: `apt-get install debootstrap`.")
    console.print(f"No registry answers for {DEFAULT_BASE}: bootstrapping Debian bookworm into {tag}")
    (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE / "tmp"))
    log = CACHE / "images" / "base-bootstrap.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        tarball = work / "rootfs.tar"
        with console.status("debootstrap --variant=minbase bookworm (about a minute)"), open(log, "w") as out:
            code = subprocess.run(["bash", str(BOOTSTRAP), str(work / "rootfs"), DEBIAN_MIRROR, str(tarball)],
                                  stdout=out, stderr=subprocess.STDOUT,
                                  env=child_env({"DEBOOTSTRAP": debootstrap}, network=True)).returncode
        if code != 0:
            raise SetupError(f"bootstrapping the base image failed; last lines of {log}:\n"
                             + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))
        repository, _, version = tag.rpartition(":")
        with console.status(f"Importing {tag}"):
            daemon.client().api.import_image_from_file(str(tarball), repository=repository, tag=version,
                                                       changes=BASE_CHANGES)
        if not daemon.image_exists(tag):
            raise SetupError(f"importing the bootstrapped base image as {tag} failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    console.print(f"[green]✓[/] base image {tag} in {time.monotonic() - t0:.0f} s")
    return tag


def kafka_image() -> str:
    """The Kafka broker: a headless JRE plus the very jars the local backend runs."""
    return _build("kafka", {"libs": sorted(artifacts.jars("kafka").glob("*.jar"))})


def python_image() -> str:
    """The Kafka processors' runtime: Python with the harness's own confluent-kafka."""
    return _build("python", {}, {"CONFLUENT_KAFKA": python_package("confluent-kafka")}, extra_ca=True)


def flink_image() -> str:
    """JobManager, TaskManager and CLI: the pinned apache-flink wheel and its connector jar."""
    jars = sorted(artifacts.jars("flink").glob("flink-sql-connector-kafka-*.jar"))
    return _build("flink", {"jars": jars}, {"REQUIREMENTS": " ".join(runtime("flink"))}, extra_ca=True)


def spark_image(jars: list[Path]) -> str:
    """Master, Worker and driver: the pinned pyspark wheel, the job's Python packages and
    `jars`, the connector jars the wheel lacks."""
    return _build("spark", {"jars": jars}, {"REQUIREMENTS": " ".join(runtime("spark"))}, extra_ca=True)


def _extra_ca() -> bytes:
    """The CA bundle HTTPS needs here (EXTRA_CA_FILE, else the one pip or requests use)."""
    for var in ("EXTRA_CA_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        path = os.environ.get(var)
        if path and Path(path).is_file():
            return Path(path).read_bytes()
    return b""


def _build(service: str, staged: dict[str, list[Path]], build_args: dict[str, str] | None = None,
           extra_ca: bool = False) -> str:
    """Build docker/<service>/ with each `staged` list of files copied into a folder of
    that name in its context."""
    base = base_image()
    build_args = build_args or {}
    ca = _extra_ca() if extra_ca else b""
    source = DOCKERFILES / service
    files = sorted(p for p in source.rglob("*") if p.is_file())
    inputs: list[str | bytes] = [base, repr(pinned().get(service, {})), repr(sorted(build_args.items())), ca]
    for p in files:
        inputs += [str(p.relative_to(source)), p.read_bytes()]
    for name, files in sorted(staged.items()):
        inputs += [name, *sorted(f.name for f in files)]
    tag = f"showdown/{service}:{_digest(*inputs)}"
    if daemon.image_exists(tag):
        return tag
    log = CACHE / "images" / f"{service}-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"ctx-{service}-", dir=CACHE / "tmp") as ctx:
        shutil.copytree(source, ctx, dirs_exist_ok=True)
        for name, files in staged.items():
            (Path(ctx) / name).mkdir()
            for f in files:
                shutil.copy(f, Path(ctx) / name / f.name)
        if extra_ca:
            (Path(ctx) / "ca-bundle.crt").write_bytes(ca)
        t0 = time.monotonic()
        with console.status(f"Building image {tag} (log: {log})"), open(log, "w") as out:
            error = _build_streamed(ctx, tag, {**build_args, "BASE_IMAGE": base}, out)
    if error:
        raise SetupError(f"building {tag} failed: {error}; last lines of {log}:\n"
                         + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))
    console.print(f"[green]✓[/] image {tag} built in {time.monotonic() - t0:.0f} s")
    # Earlier builds of this service (other versions or inputs) are 100s of MB each.
    for old in daemon.client().images.list(name=f"showdown/{service}"):
        if tag not in old.tags:
            try:
                daemon.client().images.remove(old.id)
            except DockerException:
                pass  # still used by a container: the next build removes it
    return tag


def _build_streamed(context: str, tag: str, build_args: dict[str, str], out: IO[str]) -> str:
    """Build `context` as `tag` with the classic builder (BuildKit needs the buildx plugin,
    which Debian bookworm does not ship), its output into `out`; returns the error, if any."""
    try:
        for chunk in daemon.client().api.build(path=context, tag=tag, buildargs=build_args,
                                               labels=daemon.LABELS, rm=True, forcerm=True, decode=True):
            if "stream" in chunk:
                out.write(chunk["stream"])
            elif "error" in chunk:
                out.write(chunk["error"] + "\n")
                return str(chunk["error"]).strip()
            out.flush()
    except DockerException as e:
        return str(e)
    return "" if daemon.image_exists(tag) else "the engine built no image"
