"""summary.json: what the writer writes the readers read back, older formats upgrade,
and anything else is refused with a message (exit 2), never a traceback."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import cli
from harness.results import layout
from harness.results.read import load_summary
from harness.results.schema import FORMAT_VERSION
from harness.results.store import RunDir
from harness.support.errors import ResultsError
from tests.conftest import SMOKE_TEXT, engine, failed, fault, summary, write_run


def test_a_written_run_reads_back_equal(tmp_path: Path) -> None:
    s = summary(engine(faults=[fault()]), failed("spark"))
    run = RunDir(tmp_path, "smoke", s.metadata)
    for e in s.engines:
        run.add(e)
    run.finish("complete")
    back = load_summary(run.path)
    assert back.format_version == FORMAT_VERSION and back.status == "complete"
    assert back.engines == s.engines and back.workload == s.workload
    assert load_summary(run.path / layout.SUMMARY) == back


def test_a_run_that_stopped_midway_reads_as_partial(tmp_path: Path) -> None:
    s = summary(engine())
    run = RunDir(tmp_path, "smoke", s.metadata)
    run.add(s.engines[0])
    assert load_summary(run.path).status == "partial"


def format_1(tmp_path: Path) -> Path:
    """A summary as runs before format 2 wrote it: no version, no parsed workload, no load CPU,
    no backlog, no per-fault duplicates."""
    data = json.loads(summary(engine(faults=[fault()])).model_dump_json())
    del data["format_version"]
    del data["metadata"]["workload"]["parsed"]
    e = data["engines"][0]
    for key in ("engine_load", "kafka_load"):
        del e["cpu_seconds"][key]
    for key in ("backlog_max", "backlog_growth_per_s"):
        del e["throughput"][key]
    del e["recovery"][0]["duplicates"]
    (tmp_path / layout.SUMMARY).write_text(json.dumps(data))
    return tmp_path


def test_a_format_1_summary_is_upgraded(tmp_path: Path) -> None:
    s = load_summary(format_1(tmp_path))
    assert s.format_version == FORMAT_VERSION
    m = s.engines[0].measured()
    assert m.cpu_seconds.engine_load == m.cpu_seconds.engine  # what older readers took
    assert m.throughput.backlog_max is None and s.engines[0].recovery[0].duplicates is None
    assert s.workload is not None and s.workload.rate == 200  # parsed again from the recorded text


def write(tmp_path: Path, content: bytes) -> Path:
    (tmp_path / layout.SUMMARY).write_bytes(content)
    return tmp_path


@pytest.mark.parametrize("content, message", [
    (b"", "not valid JSON"),
    (b'{"status": "complete", "engi', "not valid JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
    (b"[1, 2]", "not a summary (a JSON object), got list"),
    (json.dumps({"format_version": FORMAT_VERSION + 1}).encode(), "by a newer Stream Showdown"),
    (json.dumps({"format_version": "2"}).encode(), "format_version must be a whole number"),
    (json.dumps({"format_version": FORMAT_VERSION, "status": "complete"}).encode(), "started_at"),
])
def test_anything_else_is_refused_with_the_file_named(tmp_path: Path, content: bytes, message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path, content)
    with pytest.raises(ResultsError, match=re.escape(message)) as e:
        load_summary(folder)
    assert str(folder / layout.SUMMARY) in str(e.value)
    assert cli.main(["report", str(folder)]) == 2
    err = capsys.readouterr()
    assert "Traceback" not in err.out + err.err


def test_a_folder_without_a_summary_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="not a run folder"):
        load_summary(tmp_path)
    with pytest.raises(ResultsError, match="no such file"):
        load_summary(tmp_path / layout.SUMMARY)


def test_an_unknown_field_is_refused_so_writer_and_schema_stay_in_step(tmp_path: Path) -> None:
    data = json.loads(summary(engine()).model_dump_json())
    data["engines"][0]["latency_ms"]["p42"] = 1.0
    with pytest.raises(ResultsError, match=r"engines\.0\.latency_ms\.p42"):
        load_summary(write(tmp_path, json.dumps(data).encode()))


def test_the_recorded_workload_is_the_text_and_its_parse() -> None:
    s = summary(engine())
    assert s.metadata.workload.text == SMOKE_TEXT and s.workload and s.workload.name == "smoke"


def test_a_run_whose_command_died_reads_as_killed_with_how(tmp_path: Path) -> None:
    s = summary(engine("kafka"))
    s.status = "partial"
    run = write_run(tmp_path / "run", s)
    assert load_summary(run).status == "partial"
    (run / "killed.json").write_text(json.dumps({"killed_at": "2026-12-06T01:00:00+00:00",
                                                 "how": "the harness ended without finishing this run; x"}))
    killed = load_summary(run)
    assert killed.status == "killed" and killed.error == "the harness ended without finishing this run; x"
    (run / "killed.json").write_text("{")
    assert "unreadably" in (load_summary(run).error or "")
    s.status = "complete"
    assert load_summary(write_run(tmp_path / "done", s)).status == "complete"
