"""The pytest plugin (harness/fixtures.py) as a team uses it: examples/test_slo.py run by a
pytest of its own, which finds the fixtures through the package's entry point, starts real
clusters, runs a benchmark and asserts its figures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.results.read import load_summary
from harness.support.env import child_env
from harness.support.paths import ROOT

pytestmark = pytest.mark.integration


def test_the_example_slo_tests_pass_through_the_plugin(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "examples" / "test_slo.py"), "--showdown-backend", "local",
         "--showdown-results", str(results), f"--basetemp={tmp_path / 'tmp'}", "-p", "no:cacheprovider",
         "-q", "--durations=5"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=900)
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "4 passed" in proc.stdout
    [run] = [p for p in results.iterdir() if p.is_dir()]
    summary = load_summary(run)
    assert summary.status == "complete" and [e.engine for e in summary.engines] == ["kafka"]
    assert summary.metadata.backend == "local"
