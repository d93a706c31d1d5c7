"""CLI input handling: torn lines, wrong or missing inputs, messages instead of tracebacks."""

from __future__ import annotations

import json
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


# ------------------------------------------------------------------------- item 9: torn lines


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


# ------------------------------------------------------------------------- item 10: wrong inputs


def _task_lines(n: int) -> list[str]:
    return [t.model_dump_json() for t in _tasks(n)]


def test_cases_import_of_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    out = tmp_path / "c" / "cases.jsonl"
    res = runner.invoke(
        app, ["cases", "import", str(tmp_path / "nope.csv"), "--source", "text", "--out", str(out)]
    )
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "nope.csv" in res.output and "no such file" in res.output
    assert not out.exists()


def test_cases_import_of_a_tasks_file_or_an_empty_file_says_so(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("\n".join(_task_lines(2)) + "\n")
    out = tmp_path / "c" / "cases.jsonl"
    res = runner.invoke(app, ["cases", "import", str(tasks), "--source", "text", "--out", str(out)])
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "is a tasks file" in res.output
    assert not out.exists() and not (out.parent / "manifest.json").exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = runner.invoke(app, ["cases", "import", str(empty), "--source", "text", "--out", str(out)])
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "empty" in res.output and "no entry could be imported" in res.output


def test_validate_an_empty_folder_or_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "emptydir").mkdir()
    res = runner.invoke(app, ["validate", str(tmp_path / "emptydir")])
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "no *.jsonl files" in res.output
    (tmp_path / "empty.jsonl").write_text("\n")
    res = runner.invoke(app, ["validate", str(tmp_path / "empty.jsonl")])
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "empty" in res.output


def test_validate_untyped_file_reports_its_broken_lines(tmp_path: Path) -> None:
    p = tmp_path / "stuff.jsonl"
    p.write_text('{"a": 1}\n{broken\n{"b": 2}\n')
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert f"{p}:2: <line>: malformed JSON" in res.output
    assert "--type" in res.output


def test_record_type_is_recognised_from_fields_even_with_broken_lines(tmp_path: Path) -> None:
    from behaviorsft.store import detect_record_type, kind_problem

    p = tmp_path / "mine.jsonl"
    good = _task_lines(3)
    broken = good[1][: len(good[1]) // 2]  # a cut-off task, not the last line
    p.write_text("\n".join([good[0], broken, "{", good[2]]) + "\n")
    assert detect_record_type(p) == "task"
    res = runner.invoke(app, ["validate", str(p)])
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "2 valid task record(s), 2 bad line(s)" in res.output
    # A tasks file named like a cases file is a tasks file.
    q = tmp_path / "cases.jsonl"
    q.write_text("\n".join(good) + "\n")
    assert detect_record_type(q) == "task"
    assert kind_problem(q, "case") == f"{q} is a tasks file, not a cases file"
    assert kind_problem(q, "task") is None


# ------------------------------------------------------------------------- item 11: messages


def test_stats_lists_every_bad_line_without_a_traceback(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    lines = _task_lines(4)
    lines[1] = lines[1].replace('"answer":"B"', '"answer":"F"')
    lines[3] = "{oops"
    (bench / "tasks.jsonl").write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["stats", str(bench)])
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "Traceback" not in res.output
    assert f"{bench / 'tasks.jsonl'}:2: answer" in res.output
    assert f"{bench / 'tasks.jsonl'}:4: <line>: malformed JSON" in res.output
    assert not (bench / "stats.json").exists()


def test_export_hf_bad_line_and_bad_format_are_messages(tmp_path: Path) -> None:
    p = tmp_path / "tasks.jsonl"
    p.write_text("\n".join([*_task_lines(2), "{oops", "[1]"]) + "\n")
    res = runner.invoke(app, ["export-hf", str(p), "--out", str(tmp_path / "hf")])
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "Traceback" not in res.output
    assert f"{p}:3: <line>" in res.output and f"{p}:4: <record>" in res.output
    res = runner.invoke(
        app, ["export-hf", str(p), "--out", str(tmp_path / "hf"), "--format", "csv"]
    )
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "parquet" in res.output and "arrow" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "hf").exists()


def test_stats_and_export_of_empty_or_wrong_kind_files_are_input_errors(tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "tasks.jsonl").write_text("")
    res = runner.invoke(app, ["stats", str(bench)])
    assert res.exit_code == ExitCode.INPUT_ERROR and "empty" in res.output, res.output
    tasks = tmp_path / "t.jsonl"
    tasks.write_text("\n".join(_task_lines(2)) + "\n")
    res = runner.invoke(app, ["export-hf", str(tasks), "-o", str(tmp_path / "hf"), "-t", "case"])
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "is a tasks file, not a cases file" in res.output
    assert not (tmp_path / "hf").exists()


def test_export_hf_unknown_type_hint_names_the_flag(tmp_path: Path) -> None:
    p = tmp_path / "stuff.jsonl"
    p.write_text('{"a": 1}\n')
    res = runner.invoke(app, ["export-hf", str(p), "--out", str(tmp_path / "hf")])
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "--type" in res.output and "record_type" not in res.output


def test_corrupt_manifest_is_one_line_before_any_work(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "manifest.json").write_text("{not json")
    for args in (
        ["cases", "synth", "--n", "3", "--out", str(folder / "cases.jsonl")],
        [
            "cases",
            "import",
            str(_report(tmp_path)),
            "--source",
            "text",
            "--out",
            str(folder / "cases.jsonl"),
        ],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == ExitCode.INPUT_ERROR, res.output
        assert "Traceback" not in res.output
        assert str(folder / "manifest.json") in res.output
        assert not (folder / "cases.jsonl").exists()  # checked before the work, not after


def test_malformed_json_message_has_no_doubled_word(tmp_path: Path) -> None:
    p = tmp_path / "tasks.jsonl"
    p.write_text("\n".join([_task_lines(1)[0], '{"id": "x', _task_lines(2)[1]]) + "\n")
    res = runner.invoke(app, ["validate", str(p)])
    assert f"{p}:2: <line>: malformed JSON" in res.output
    assert "at at" not in res.output


# ------------------------------------------------------------------------- item 12: manifests


def test_rerunning_cases_import_keeps_counts_and_does_not_duplicate_skipped(tmp_path: Path) -> None:
    src = tmp_path / "reports.jsonl"
    src.write_text(
        '{"id": "r1", "text": "# History\\nFever and cough for two days."}\n'
        "{broken\n"
        '{"id": "r2", "text": "# History\\nChest pain at rest."}\n'
    )
    out = tmp_path / "c" / "cases.jsonl"
    args = ["cases", "import", str(src), "--source", "text", "--out", str(out)]
    for _ in range(3):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    manifest = json.loads((out.parent / "manifest.json").read_text())
    assert [(s["name"], s["count"]) for s in manifest["sources"]] == [("text", 2)]
    assert [s["where"] for s in manifest["skipped"]] == [f"{src}:2"]
    assert manifest["files"]["cases.jsonl"]["count"] == 2


# ------------------------------------------------------------------------- item 14: help


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in getattr(group, "commands", {}).items():
        out.append((*prefix, name))
        out.extend(_commands(cmd, (*prefix, name)))
    return out


def test_every_help_has_readable_metavars() -> None:
    import typer

    group = typer.main.get_command(app)
    names = _commands(group)
    assert ("cases", "import") in names and ("validate",) in names
    for name in names:
        res = runner.invoke(app, [*name, "--help"])
        assert res.exit_code == 0, (name, res.output)
        text = res.output
        assert "<list[" not in text and "<int" not in text and "<path>" not in text, (name, text)
        usage = text.splitlines()[0]
        assert "{" not in usage, (name, usage)


# ------------------------------------------------------------------------- exit codes


def test_each_owned_command_fails_with_its_documented_code(
    tmp_path: Path, monkeypatch: object
) -> None:
    bad = tmp_path / "tasks.jsonl"
    bad.write_text("\n".join([*_task_lines(1), "{oops"]) + "\n")
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "tasks.jsonl").write_text(bad.read_text())
    src = tmp_path / "reports.jsonl"
    src.write_text('{"id": "r1", "text": "# History\\nFever."}\n{broken\n')
    cases = tmp_path / "c" / "cases.jsonl"
    expected = {
        ("validate", str(bad)): ExitCode.INPUT_ERROR,
        ("export-hf", str(bad), "--out", str(tmp_path / "hf")): ExitCode.INPUT_ERROR,
        ("taxonomy", "--nope"): ExitCode.INPUT_ERROR,
        ("schema", "banana"): ExitCode.INPUT_ERROR,
        ("cases", "import", str(tmp_path / "nope.txt"), "-s", "text", "-o", str(cases)): (
            ExitCode.INPUT_ERROR
        ),
        ("cases", "import", str(src), "-s", "text", "-o", str(cases), "--strict"): (
            ExitCode.PARTIAL
        ),
        ("cases", "synth", "--n", "0", "--out", str(cases)): ExitCode.INPUT_ERROR,
        ("stats", str(bench)): ExitCode.INPUT_ERROR,
        ("stats", str(tmp_path / "nobench")): ExitCode.INPUT_ERROR,
    }
    for args, code in expected.items():
        res = runner.invoke(app, list(args))
        assert res.exit_code == code, (args, res.output)
        assert "Traceback" not in res.output, (args, res.output)


def test_a_busy_output_folder_exits_busy(tmp_path: Path) -> None:
    from behaviorsft.store import FolderLock

    out = tmp_path / "c" / "cases.jsonl"
    with FolderLock(out.parent):
        res = runner.invoke(app, ["cases", "synth", "--n", "2", "--out", str(out)])
    assert res.exit_code == ExitCode.BUSY, res.output
    assert "another process" in res.output
    assert not out.exists()


def test_an_unexpected_error_prints_the_traceback_and_exits_internal(monkeypatch) -> None:
    import behaviorsft.cli as cli

    def boom(name: str) -> object:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli, "model_for", boom)
    res = runner.invoke(app, ["schema", "task"])
    assert res.exit_code == ExitCode.INTERNAL
    assert "Traceback" in res.output and "kaboom" in res.output and "bug" in res.output
