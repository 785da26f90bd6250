"""One virtual environment per engine runtime, created on demand and cached.

PyFlink and PySpark pin pyarrow, pandas and numpy against each other and against the
harness, so each runtime gets its own venv, keyed by a hash of its requirements.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from harness.support.console import console
from harness.support.env import child_env
from harness.support.errors import SetupError
from harness.support.paths import CACHE


def ensure(name: str, requirements: list[str]) -> Path:
    """The python executable of a venv holding exactly `requirements`."""
    digest = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:12]
    root = CACHE / "venvs" / f"{name}-{digest}"
    python = root / "bin" / "python"
    marker = root / ".complete"
    if marker.exists():
        return python
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    log = root.parent / f"{name}-{digest}.pip.log"
    console.print(f"Creating the {name} runtime in {root}: {' '.join(requirements)}")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, env=child_env())
    with open(log, "w") as out, console.status(f"pip install for {name} (log: {log})") as status:
        proc = subprocess.Popen([str(python), "-m", "pip", "install", "--progress-bar", "off", *requirements],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=child_env(network=True))
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.startswith(("Collecting", "Downloading", "Installing", "Successfully")):
                status.update(f"pip install for {name}: {line.strip()[:100]}")
        code = proc.wait()
    if code != 0:
        lines = log.read_text().splitlines()[-20:]
        raise SetupError(f"pip could not install the {name} runtime ({' '.join(requirements)}):\n" + "\n".join(lines))
    marker.write_text("\n".join(requirements) + "\n")
    console.print(f"[green]✓[/] {name} runtime ready")
    return python


def package_home(python: Path, package: str) -> Path:
    """Where `package` is installed for `python`: the Flink and Spark distributions live
    inside their wheels."""
    return Path(subprocess.run([str(python), "-c", f"import os, {package}; print(os.path.dirname({package}.__file__))"],
                               capture_output=True, text=True, check=True).stdout.strip())
