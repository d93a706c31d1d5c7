"""CLI input handling: torn lines, wrong or missing inputs, messages instead of tracebacks."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from behaviorsft.cli import app
from behaviorsft.exit_codes import ExitCode
from behaviorsft.records import Task
from behaviorsft.store import write_jsonl
from tests.conftest import make_task_dict

runner = CliRunner()


def _tasks(n: int, **kw: object) -> list[Task]:
    return [Task.model_validate(make_task_dict(id=f"t{i}", **kw)) for i in range(n)]


def _report(tmp_path: Path) -> Path:
    src = tmp_path / "reports.jsonl"
    src.write_text('{"id": "r1", "text": "# History\\nFever and cough for two days."}\n')
    return src


# ----------------------------------------------------------------------------- item 9: torn lines


def test_cases_import_never_cuts_a_users_out_file(tmp_path: Path) -> None:
    out = tmp_path / "mine" / "cases.jsonl"
    out.parent.mkdir()
    # The user's own file: no manifest; its last line is unfinished and has no newline.
    out.write_bytes(b'{"id": "x1", "source": "text"}\n{"id": "x2", "source": "te')
    before = out.read_bytes()
    args = ["cases", "import", str(_report(tmp_path)), "--source", "text", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert out.read_bytes() == before
    assert f"{out}:2" in res.output and "26 bytes" in res.output
    assert "Traceback" not in res.output


def test_cases_import_refuses_to_write_into_its_input(tmp_path: Path) -> None:
    src = _report(tmp_path)
    before = src.read_bytes()
    res = runner.invoke(app, ["cases", "import", str(src), "--source", "text", "--out", str(src)])
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert src.read_bytes() == before
    assert "input" in res.output


def test_resuming_a_tool_written_cases_file_cuts_its_torn_tail_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "c" / "cases.jsonl"
    assert runner.invoke(app, ["cases", "synth", "--n", "3", "--out", str(out)]).exit_code == 0
    with open(out, "ab") as fh:
        fh.write(b'{"id": "synthetic:0-000003", "sou')  # what a killed run leaves
    res = runner.invoke(app, ["cases", "synth", "--n", "4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"{out}:4" in res.output and "33 bytes" in res.output
    assert len(out.read_text().splitlines()) == 4


def test_cases_import_registers_its_file_before_the_first_write(tmp_path: Path) -> None:
    # So a run killed before it finished still owns its file, and the re-run may cut a tear.
    out = tmp_path / "c" / "cases.jsonl"
    args = ["cases", "import", str(_report(tmp_path)), "--source", "text", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    with open(out, "ab") as fh:
        fh.write(b'{"id": "text:r2", "sou')
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert f"{out}:2" in res.output and "bytes" in res.output
    assert len(out.read_text().splitlines()) == 1


def test_stats_warns_when_it_drops_a_torn_line(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    write_jsonl(bench / "tasks.jsonl", _tasks(3))
    with open(bench / "tasks.jsonl", "ab") as fh:
        fh.write(b'{"id": "t3", "case_id"')
    res = runner.invoke(app, ["stats", str(bench)])
    assert res.exit_code == 0, res.output
    assert f"{bench / 'tasks.jsonl'}:4" in res.stderr and "dropped" in res.stderr
    assert "Tasks (n=3)" in res.output
