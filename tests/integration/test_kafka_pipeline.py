"""The smoke workload through a real Kafka broker, with a processor killed mid-run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.present import report
from harness.run import runner
from harness.support.paths import WORKLOADS
from harness.workload import files as workload

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    wl, text = workload.load(WORKLOADS / "smoke.yaml")
    run_dir = runner.run(wl, "workloads/smoke.yaml", text, tmp_path_factory.mktemp("results"), keep_records=True)
    report.write_report(run_dir)  # as `showdown run` does
    summary = json.loads((run_dir.path / "summary.json").read_text())
    summary["_path"] = str(run_dir.path)
    return summary


def _engine(summary: dict, name: str) -> dict:
    return next(e for e in summary["engines"] if e["engine"] == name)


@pytest.mark.parametrize("name", ["kafka", "passthrough"])
def test_exactly_once_across_a_processor_kill(smoke_run: dict, name: str) -> None:
    e = _engine(smoke_run, name)
    assert e["status"] == "ok", e.get("error")
    c = e["correctness"]
    assert (c["missing"], c["duplicates"], c["unexpected"], c["malformed"]) == (0, 0, 0, 0), c["examples"]
    if name == "kafka":
        assert c["wrong"] == 0, c["examples"]
        assert c["decisions"] == c["expected_decisions"]
        assert c["decisions"]["BLOCK"] > 0 and c["decisions"]["LATE"] > 0
    [rec] = e["recovery"]
    assert rec["error"] is None and "processor-0" in rec["target"]
    assert rec["output_gap_s"] > 0
    assert rec["recovered"] and rec["recovery_time_s"] > 0, rec


def test_result_carries_figures_and_metadata(smoke_run: dict) -> None:
    assert smoke_run["status"] == "complete"
    meta = smoke_run["metadata"]
    assert meta["backend"] == "local" and meta["workload"]["seed"] == 7 and meta["git"]["commit"]
    assert meta["versions"]["pinned"]["kafka"]["version"] and meta["versions"]["librdkafka"]
    e = _engine(smoke_run, "kafka")
    assert e["latency_ms"]["p50"] > 0 and e["latency_ms"]["n"] > 0
    assert e["throughput"]["driver_kept_schedule"]
    assert e["cpu_seconds"]["engine"] > 0 and e["cpu_seconds"]["kafka"] > 0
    path = Path(smoke_run["_path"])
    assert (path / "timeseries.csv").read_text().startswith("engine,second,")
    assert (path / "transactions.parquet").exists() and (path / "decisions-kafka.parquet").exists()
    assert (path / "logs" / "kafka" / "kafka-1.log").exists()


def test_exactly_once_across_a_broker_kill(tmp_path: Path) -> None:
    """The only broker killed with -9 and started again on its data: everything stops, then
    the processors (restarted if their transactions timed out) catch up without a loss or a
    duplicate."""
    data = yaml.safe_load((WORKLOADS / "smoke.yaml").read_text())
    data.update(name="smoke-broker", duration_s=50, engines={"kafka": {"parallelism": 2}},
                faults=[{"at_s": 12, "action": "kill", "target": "broker", "restart_after_s": 3}])
    wl = workload.parse(data, "smoke-broker")
    run_dir = runner.run(wl, "smoke-broker", yaml.safe_dump(data), tmp_path)
    e = _engine(json.loads((run_dir.path / "summary.json").read_text()), "kafka")
    assert e["status"] == "ok", e.get("error")
    c = e["correctness"]
    assert (c["missing"], c["duplicates"], c["wrong"], c["unexpected"]) == (0, 0, 0, 0), c["examples"]
    [rec] = e["recovery"]
    assert rec["error"] is None and "Kafka broker 1" in rec["target"]
    assert rec["output_gap_s"] > 3 and rec["recovered"], rec


def test_the_report_page_renders_in_a_headless_browser(smoke_run: dict, tmp_path: Path) -> None:
    """report.html is one self-contained page: Chromium, offline, draws its table and charts."""
    import re
    import shutil
    import subprocess

    import matplotlib.image

    run = Path(smoke_run["_path"])
    page = (run / "report.html").read_text()
    assert "<svg" in page and not re.search(r"""(src|href)=["']https?:""", page), "nothing to fetch"
    assert (run / "report.md").exists() and (run / "report-files" / "latency.png").exists()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,2400", f"--screenshot={shot}", (run / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1200) and pixels.std() > 0.05, "a blank page"
