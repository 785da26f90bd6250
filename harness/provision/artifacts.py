"""JVM jars resolved from Maven Central with mvn, cached per component and version."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from harness.provision.versions import pinned
from harness.support.console import console
from harness.support.env import child_env
from harness.support.errors import SetupError
from harness.support.paths import CACHE, ROOT

POM = ROOT / "artifacts" / "pom.xml"


def require_tool(name: str, install_hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SetupError(f"`{name}` was not found on PATH. {install_hint}")
    return path


def require_java() -> str:
    return require_tool("java", "Install a Java 17+ runtime, e.g. `apt-get install openjdk-17-jre-headless`.")


def jars(component: str) -> Path:
    """The folder holding every jar of `component` (a profile in artifacts/pom.xml).

    Resolved once per version set; later calls only check the completion marker,
    so runs work offline once the first resolution succeeded.
    """
    # Lists (e.g. a runtime's Python packages) are not Maven properties.
    props = {f"{component}.{k}": str(v) for k, v in pinned()[component].items() if not isinstance(v, list)}
    digest = hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()[:12]
    target = CACHE / "jars" / f"{component}-{digest}"
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = require_tool("mvn", "Install Maven, e.g. `apt-get install maven`.")
    require_java()
    if target.exists():
        shutil.rmtree(target)
    cmd = [
        mvn, "-B", "-q", "-f", str(POM), "-P", component,
        "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={target}",
        *(f"-D{k}={v}" for k, v in props.items()),
    ]
    with console.status(f"Resolving {component} jars from Maven Central ({props})"):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(network=True))
    if proc.returncode != 0 or not any(target.glob("*.jar")):
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise SetupError(f"mvn could not resolve the {component} jars:\n{tail}")
    marker.write_text(json.dumps(props, indent=2))
    console.print(f"[green]✓[/] {component} jars in {target} ({len(list(target.glob('*.jar')))} jars)")
    return target
