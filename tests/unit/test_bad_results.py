"""Damaged, wrongly shaped or unfinished results, and results that cannot be written: each
is one line that names the file and says what is wrong, exit 2 for the input and 1 for the
environment, never a traceback."""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from harness import cli
from harness.backends import choice
from harness.load.history import RECEIVED
from harness.present import repeat, report
from harness.results import layout
from harness.results.store import TIMESERIES_FIELDS
from harness.run import runner, sweep
from tests.conftest import engine, failed, summary, write_repeat, write_run


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    return code, text


def error_line(text: str) -> str:
    """The one line the CLI says an error on (exactly one)."""
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, text
    return lines[0]


def summary_data(**changes: Any) -> dict[str, Any]:
    return {**json.loads(summary(engine()).model_dump_json()), **changes}


def run_folder(tmp_path: Path, data: Any) -> Path:
    folder = tmp_path / "20261205-100000-smoke"
    folder.mkdir()
    (folder / layout.SUMMARY).write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("data, problem", [
    (None, "got NoneType"),
    (summary_data(engines=None), "engines: Input should be a valid list"),
    (summary_data(engines=[[1]]), "engines.0: Input should be a JSON object"),
    (summary_data(metadata=None), "metadata: Input should be a JSON object"),
    (summary_data(status=3), "status"),
], ids=["null", "engines null", "engine a list", "metadata null", "status a number"])
def test_a_summary_of_the_wrong_shape_is_one_line_naming_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any, problem: str) -> None:
    folder = run_folder(tmp_path, data)
    code, text = run_cli(capsys, "report", str(folder))
    line = error_line(text)
    assert code == 2 and str(folder / layout.SUMMARY) in line and problem in line


def test_a_run_killed_before_its_first_engine_says_so_instead_of_an_empty_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = run_folder(tmp_path, summary_data(status="partial", engines=[]))
    code, text = run_cli(capsys, "report", str(folder))
    line = error_line(text)
    assert code == 2 and str(folder / layout.SUMMARY) in line
    assert f"run {folder.name} did not finish: it was interrupted or killed before any engine's row" in line
    assert "┏" not in text  # no table
    why = "the harness was killed during this run (SIGKILL, a crash or the OOM killer)"
    (folder / layout.SUMMARY).write_text(json.dumps(summary_data(status="killed", engines=[], error=why,
                                                                 finished_at="2026-12-05T10:01:00+00:00")))
    code, text = run_cli(capsys, "report", str(folder))
    assert code == 2 and why in error_line(text)


def test_a_killed_or_partial_run_says_so_before_its_table(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    why = "the harness was killed during this run (SIGKILL, a crash or the OOM killer)"
    data = summary_data(status="killed", error=why, engines=[json.loads(failed("spark").model_dump_json())])
    folder = run_folder(tmp_path, data)
    code, text = run_cli(capsys, "report", str(folder))
    assert code == 0
    assert text.splitlines()[0] == f"run killed: {why}"
    assert f"run killed: {why}" in (folder / layout.REPORT_HTML).read_text()
    data.update(status="partial", error=None)
    (folder / layout.SUMMARY).write_text(json.dumps(data))
    code, text = run_cli(capsys, "report", str(folder))
    assert code == 0 and text.splitlines()[0].startswith("run partial: it was interrupted or killed")


def test_a_folder_a_run_left_without_a_summary_is_a_run_that_did_not_finish(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "20261205-100000-smoke"
    layout.logs(folder).mkdir(parents=True)
    code, text = run_cli(capsys, "report", str(folder))
    line = error_line(text)
    assert code == 2 and str(folder) in line and "did not finish" in line and layout.SUMMARY in line


def test_a_repeat_folder_is_not_taken_for_a_broken_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_repeat(tmp_path / "x2", [summary(engine()), summary(engine())])
    code, text = run_cli(capsys, "report", str(folder))
    assert code == 2 and "a repeat folder (repeat.json), not a run folder" in error_line(text)


def received_rows(start_ns: int, n: int = 2000) -> np.ndarray:
    """`n` decisions, one every 10 ms from the load's start, each received 5 ms after its send."""
    rows = np.zeros(n, dtype=RECEIVED)
    rows["txn_id"] = np.arange(n)
    rows["sent_ns"] = start_ns + np.arange(n) * 10_000_000
    rows["recv_ns"] = rows["sent_ns"] + 5_000_000
    return rows


def with_history(tmp_path: Path) -> tuple[Path, Path]:
    """A finished run of kafka with its received.npy, and that file."""
    e = engine()
    folder = write_run(tmp_path / "20261205-100000-smoke", summary(e, failed("spark")))
    path = layout.received(folder, e.engine)
    path.parent.mkdir(parents=True)
    assert e.load_start_ns is not None
    np.save(path, received_rows(e.load_start_ns))
    return folder, path


def npy_bytes(rows: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, rows)
    return buf.getvalue()


@pytest.mark.parametrize("damage", ["cut short", "empty", "text", "other rows"])
def test_a_damaged_history_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  damage: str) -> None:
    folder, path = with_history(tmp_path)
    whole = path.read_bytes()
    content = {"cut short": whole[:len(whole) // 2], "empty": b"", "text": b"kafka,1,200\n",
               "other rows": npy_bytes(np.zeros(5))}[damage]
    path.write_bytes(content)
    code, text = run_cli(capsys, "report", str(folder))
    assert code == 2 and str(path) in error_line(text)


TIMESERIES_HEADER = ",".join(TIMESERIES_FIELDS)


def timeseries(folder: Path, *rows: str) -> Path:
    path = folder / layout.TIMESERIES
    path.write_text("\n".join([TIMESERIES_HEADER, *rows]))
    return path


@pytest.mark.parametrize("bad_row", ["kafka,3,200,1.0,19", "kafka,3,2\x00,x,,,,", "kafka,3,200,1.0,199,4,9,0,7",
                                     'kafka,3,"' + "x" * 200_000],
                         ids=["cut short", "garbage", "too many fields", "past the csv field limit"])
def test_unreadable_rows_of_the_time_series_are_skipped_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_row: str) -> None:
    folder, _ = with_history(tmp_path)
    path = timeseries(folder, "kafka,1,200,1.0,198,4.0,9.0,2", "kafka,2,200,1.0,201,4.0,9.0,0", bad_row)
    code, text = run_cli(capsys, "report", str(folder))
    assert code == 0
    warning = next(line for line in text.splitlines() if line.startswith("warning:"))
    assert str(path) in warning and "1 row(s)" in warning and "the 2 readable one(s)" in warning
    assert (folder / layout.REPORT_FILES / "throughput.png").is_file()


def test_a_time_series_without_its_header_is_not_drawn_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = with_history(tmp_path)
    path = folder / layout.TIMESERIES
    path.write_bytes(b"\xff\xfe\x00\x01garbage")
    code, text = run_cli(capsys, "report", str(folder))
    assert code == 0 and f"warning: {path}: no header" in text
    assert not (folder / layout.REPORT_FILES / "throughput.png").exists()


@pytest.mark.filterwarnings("error")
def test_a_partial_run_draws_what_it_has_without_a_matplotlib_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = run_folder(tmp_path, json.loads(summary(failed("kafka"), engine("flink")).model_dump_json()))
    (folder / layout.TIMESERIES).write_text(TIMESERIES_HEADER + "\n")
    code, _ = run_cli(capsys, "report", str(folder))
    assert code == 0 and "<figure>" not in (folder / layout.REPORT_HTML).read_text()
    folder, _ = with_history(tmp_path / "with-history")
    timeseries(folder, "kafka,1,200,1.0,198,4.0,9.0,2")
    code, _ = run_cli(capsys, "report", str(folder))
    figures = {p.stem for p in (folder / layout.REPORT_FILES).iterdir()}
    assert code == 0 and figures == {"latency", "cdf", "throughput", "backlog"}


def repeat_data() -> dict[str, Any]:
    return json.loads(json.dumps(repeat.aggregate([("run-0", summary(engine()))])))


def mutate(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`data` with the dotted `key` (a number indexes a list) set to `value`, or removed if
    `value` is ...."""
    *parents, last = key.split(".")
    inner: Any = data
    for k in parents:
        inner = inner[int(k)] if isinstance(inner, list) else inner[k]
    if value is ...:
        del inner[last]
    else:
        inner[last] = value
    return data


@pytest.mark.parametrize("key, value", [
    ("runs", ...), ("runs", None), ("metadata", None), ("metadata.workload", None), ("metadata.machine", [1]),
    ("engines.kafka", None), ("engines.kafka.status", "ok"), ("engines.kafka.metrics", ...),
    ("engines.kafka.metrics.p99_ms.median", "fast"), ("engines.kafka.metrics.p99_ms", None),
])
def test_compare_names_the_file_and_key_of_a_malformed_repeat_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: Any) -> None:
    a = write_run(tmp_path / "a", summary(engine()))
    b = tmp_path / "b"
    b.mkdir()
    (b / layout.REPEAT).write_text(json.dumps(mutate(repeat_data(), key, value)))
    code, text = run_cli(capsys, "compare", str(a), str(b))
    line = error_line(text)
    assert code == 2 and str(b / layout.REPEAT) in line and f": {key}: " in line


def test_recommend_names_a_repeat_json_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = tmp_path / "b"
    b.mkdir()
    (b / layout.REPEAT).write_bytes(b'{"runs": ["\xff"]}')
    code, text = run_cli(capsys, "recommend", "--p99-ms", "500", str(b))
    assert code == 2 and f"{b / layout.REPEAT}: not UTF-8" in error_line(text)


def sweep_data() -> dict[str, Any]:
    step = {"engine": "kafka", "rate": 500, "run": "r", "sustainable": True, "why_not": "", "p50_ms": 4.0,
            "p99_ms": 9.0, "growth_ms": 0.0, "cpu_s_per_million": 1.0}
    return {"workload": "smoke", "backend": "local", "criteria": {}, "sustainable": {"kafka": dict(step)},
            "steps": [step, {**step, "rate": 1000, "sustainable": False, "why_not": "p99 over"}]}


@pytest.mark.parametrize("key, value", [
    ("steps", ...), ("steps", None), ("sustainable", [1]), ("sustainable.kafka", [1]),
    ("sustainable.kafka.rate", "fast"), ("steps.1.sustainable", ...),
])
def test_recommend_names_the_file_and_key_of_a_malformed_sweep_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: Any) -> None:
    folder = tmp_path / "sw"
    folder.mkdir()
    (folder / layout.SWEEP).write_text(json.dumps(mutate(sweep_data(), key, value)))
    run = write_run(tmp_path / "r", summary(engine()))
    code, text = run_cli(capsys, "recommend", "--p99-ms", "500", "--rate", "800", str(run), str(folder))
    line = error_line(text)
    assert code == 2 and str(folder / layout.SWEEP) in line and f": {key}" in line


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run or sweep that got past its checks fails the test instead of starting clusters."""
    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run started")

    monkeypatch.setattr(runner, "run", started)
    monkeypatch.setattr(choice, "choose", started)
    monkeypatch.setattr(sweep, "run", started)


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.usefixtures("nothing_starts")
def test_results_pointing_at_a_file_is_refused_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    in_the_way = tmp_path / "results"
    in_the_way.write_text("not a folder")
    for results in (in_the_way, in_the_way / "deeper"):
        code, text = run_cli(capsys, command, "--results", str(results))
        line = error_line(text)
        assert code == 1 and str(in_the_way) in line and "--results" in line


@pytest.mark.usefixtures("nothing_starts")
def test_a_nearly_full_disk_is_refused_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=2**37, used=2**37, free=2**28))
    code, text = run_cli(capsys, "run", "--results", str(tmp_path / "results"))
    line = error_line(text)
    assert code == 1 and str(tmp_path) in line and "0.25 GiB free" in line and "needs 1 GiB" in line
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("code_of_errno", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES])
def test_a_write_that_fails_midway_is_one_line_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        code_of_errno: int) -> None:
    folder = write_run(tmp_path / "r", summary(engine()))
    page = folder / layout.REPORT_HTML

    def cannot_write(*args: object, **kwargs: object) -> None:
        raise OSError(code_of_errno, os.strerror(code_of_errno), str(page))

    monkeypatch.setattr(report, "write_files", cannot_write)
    code, text = run_cli(capsys, "report", str(folder))
    line = error_line(text)
    assert code == 1 and str(page) in line and os.strerror(code_of_errno) in line


def test_any_other_os_error_is_a_bug_and_keeps_its_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO), "somewhere")

    monkeypatch.setattr(report, "write_files", broken)
    with pytest.raises(OSError):
        cli.main(["report", str(write_run(tmp_path / "r", summary(engine())))])
