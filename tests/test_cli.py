"""The command line, driven as a user would (typer's runner, real files)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from behaviorsft.cli import app
from behaviorsft.records import Task
from behaviorsft.store import write_jsonl
from tests.conftest import make_task_dict

runner = CliRunner()


def test_help_lists_stages():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("validate", "export-hf", "taxonomy", "schema", "demo"):
        assert cmd in res.output
    assert "sources -> cases -> conversations -> tasks" in res.output


def test_python_dash_m_sees_every_command():
    """`accelerate launch -m behaviorsft.cli train ...` runs the module as __main__."""
    import subprocess
    import sys

    for cmd in ("train", "merge", "eval", "judge", "build-llm", "validate"):
        done = subprocess.run(
            [sys.executable, "-m", "behaviorsft.cli", cmd, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{cmd}: {done.stdout[-500:]} {done.stderr[-500:]}"
        assert "Usage:" in done.stdout


def test_validate_good_file(tmp_path):
    p = tmp_path / "tasks.jsonl"
    write_jsonl(p, [Task.model_validate(make_task_dict(id=f"t{i}")) for i in range(3)])
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 0, res.output
    assert "3 valid task record(s), ok" in res.output


def test_validate_reports_every_bad_line_and_leaves_file_alone(tmp_path):
    p = tmp_path / "mine.jsonl"
    good = json.dumps(make_task_dict(id="g1"))
    lines = [good, json.dumps(make_task_dict(id="b1", answer="E")), "{", good.replace("g1", "g2")]
    p.write_text("\n".join(lines) + "\n")
    before = p.read_bytes()
    res = runner.invoke(app, ["validate", str(p), "--type", "task"])
    assert res.exit_code == 2  # ExitCode.INPUT_ERROR
    assert f"{p}:2: answer: 'E' is not one of the options" in res.output
    assert f"{p}:3: <line>: malformed JSON" in res.output
    assert "2 valid task record(s), 2 bad line(s)" in res.output.replace("\n", " ")
    assert p.read_bytes() == before


def test_validate_unknown_type_and_missing_path(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n')
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == 2
    assert "cannot tell the record type" in res.output
    res = runner.invoke(app, ["validate", str(p), "--type", "banana"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["validate", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2
    assert "no such file" in res.output


def test_schema_and_taxonomy():
    res = runner.invoke(app, ["schema", "task"])
    assert res.exit_code == 0
    schema = json.loads(res.output)
    assert schema["properties"]["behavior_score"]["maximum"] == 1.0
    assert runner.invoke(app, ["schema", "nope"]).exit_code == 2
    res = runner.invoke(app, ["taxonomy", "--autonomy"])
    assert res.exit_code == 0
    assert "fact_retrieval" in res.output
    assert "Conditional Automation" in res.output


def test_cases_import_keeps_good_entries_lists_bad_ones_and_resumes(tmp_path):
    src = tmp_path / "reports.jsonl"
    src.write_text(
        '{"id": "r1", "text": "# History\\nFever and cough for two days."}\n'
        "{broken\n"
        '{"id": "r2", "text": "# History\\nChest pain at rest."}\n'
    )
    out = tmp_path / "out" / "cases.jsonl"
    args = ["cases", "import", str(src), "--source", "text", "--out", str(out), "--licence", "CC0"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert f"{src}:2:" in res.output
    assert "2 new case(s)" in res.output
    manifest = json.loads((out.parent / "manifest.json").read_text())
    assert manifest["files"]["cases.jsonl"]["count"] == 2
    assert manifest["skipped"][0]["where"] == f"{src}:2"
    assert manifest["sources"][0]["licence"] == "CC0"
    again = runner.invoke(app, [*args, "--strict"])
    assert again.exit_code == 3  # ExitCode.PARTIAL: the bad line is still bad
    assert "0 new case(s)" in again.output
    assert len(out.read_text().splitlines()) == 2
