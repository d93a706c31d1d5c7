"""Regression tests for issue 18 (evaluation half): nothing silently lost or wrong.

* a rebuilt bench (same task ids, other content) is never scored with old answers;
* ``--limit`` on an existing run says that metrics now cover fewer tasks, and
  ``report`` shows each column's n;
* a second writer of a RUN or JUDGED folder is refused at once (exit 5), and exact
  duplicate lines are dropped with a warning while differing ones name both lines;
* a typo (model spec, local path, option, split) writes nothing and exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from behaviorsft.cli import app
from behaviorsft.evaluate.runner import EvalConfig, load_predictions, run_eval
from behaviorsft.exit_codes import ExitCode
from behaviorsft.records import Task
from behaviorsft.store import FolderLock
from tests.evaluate.conftest import bench_tasks, write_bench


def _config(bench: Path, out: Path, **kw: object) -> EvalConfig:
    base: dict[str, object] = {
        "bench": str(bench),
        "model": "scripted/m",
        "out": str(out),
        "n_bootstrap": 0,
    }
    base.update(kw)
    return EvalConfig(**base)  # type: ignore[arg-type]


def _always(letter: str):
    return lambda req: f"<answer>{letter}</answer>"


def _cli(*args: object) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def _rebuilt(tasks: list[Task], changed: list[str]) -> list[Task]:
    """The same tasks with new answers for the ids in ``changed`` (options rotated to match)."""
    out = []
    for t in tasks:
        if t.id in changed:
            new = "C" if t.answer != "C" else "A"
            t = t.model_copy(update={"answer": new, "question": t.question + " (revised)"})
        out.append(t)
    return out


# --------------------------------------------------------------------------
# Item 2: stale predictions after a bench rebuild; --limit; report n
# --------------------------------------------------------------------------


def test_changed_tasks_are_asked_again_and_metrics_match_a_clean_run(
    tmp_path: Path, scripted
) -> None:
    tasks = [t for t in bench_tasks(2, 0) if t.answer != "D"]
    bench = write_bench(tmp_path / "bench", tasks)
    out = tmp_path / "run"
    run_eval(_config(bench, out), model=scripted(_always("C")), show_progress=False)

    changed = [tasks[0].id, tasks[3].id]
    write_bench(bench, _rebuilt(tasks, changed))  # same path, same ids, other content
    model = scripted(_always("C"))
    result = run_eval(_config(bench, out), model=model, show_progress=False)
    assert sorted(r.key.split("@")[0] for r in model.requests) == sorted(changed)
    assert result.stale == 2
    assert any("2 prediction(s)" in n and "changed" in n for n in result.notes)

    clean = run_eval(
        _config(bench, tmp_path / "clean"), model=scripted(_always("C")), show_progress=False
    )
    assert result.metrics["mean"] == clean.metrics["mean"]
    assert result.metrics["counts"] == clean.metrics["counts"]
    ids = [p.id for p in load_predictions(out)]
    assert len(ids) == len(set(ids)) == len(tasks)


def test_old_runs_without_fingerprints_load_and_say_they_cannot_be_checked(
    small_bench: Path, tmp_path: Path, scripted
) -> None:
    out = tmp_path / "run"
    run_eval(_config(small_bench, out, limit=5), model=scripted(_always("A")), show_progress=False)
    path = out / "predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(r["task_fingerprint"] for r in rows)
    for r in rows:
        del r["task_fingerprint"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    model = scripted(_always("A"))
    result = run_eval(_config(small_bench, out, limit=5), model=model, show_progress=False)
    assert model.requests == [] and result.reused == 5
    assert any("5 prediction(s)" in n and "cannot be checked" in n for n in result.notes)


def test_limit_on_an_existing_run_says_metrics_now_cover_fewer_tasks(
    small_bench: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    base = ["eval", "--bench", small_bench, "--model", "baseline/random", "--out", out]
    base += ["--no-progress", "--bootstrap", "0"]
    code, _, _ = _cli(*base)
    assert code == ExitCode.OK
    code, _, stderr = _cli(*base, "--limit", "5")
    assert code == ExitCode.OK
    assert "metrics.json now covers 5 tasks (it covered 52)" in stderr
    assert json.loads((out / "metrics.json").read_text())["counts"]["tasks"] == 5
    assert len(load_predictions(out)) == 52  # nothing is deleted


def test_report_shows_each_columns_n_and_warns_when_they_differ(
    small_bench: Path, tmp_path: Path
) -> None:
    runs = []
    for name, limit in (("a", None), ("b", 7)):
        out = tmp_path / name
        args = ["eval", "--bench", small_bench, "--model", "baseline/random", "--out", out]
        args += ["--no-progress", "--bootstrap", "0", "--label", name]
        if limit:
            args += ["--limit", str(limit)]
        assert _cli(*args)[0] == ExitCode.OK
        runs.append(out)
    rep = tmp_path / "rep"
    code, _, stderr = _cli("report", *runs, "--out", rep)
    assert code == ExitCode.OK
    table2 = (rep / "table2.md").read_text(encoding="utf-8")
    assert "| overall | n (tasks scored) | 52 | 7 |" in table2
    summary = (rep / "summary.md").read_text(encoding="utf-8")
    assert "| a | 52 |" in summary and "| b | 7 |" in summary
    assert "different numbers of tasks" in stderr
    assert "different numbers of tasks" in (rep / "report.md").read_text(encoding="utf-8")
    cells = json.loads((rep / "report.json").read_text())["tables"]["table2"]["rows"][-1]
    assert [c["n"] for c in cells["cells"]] == [52, 7]


# --------------------------------------------------------------------------
# Item 4: one writer per folder; duplicates
# --------------------------------------------------------------------------


def test_a_second_eval_writer_is_refused_at_once(small_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with FolderLock(out):
        code, _, stderr = _cli(
            "eval", "--bench", small_bench, "--model", "baseline/random", "--out", out
        )
    assert code == ExitCode.BUSY
    assert "being written by another process" in stderr
    assert not (out / "predictions.jsonl").exists() and not (out / "config.json").exists()


def test_a_second_judge_writer_is_refused_at_once(small_bench: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["eval", "--bench", small_bench, "--model", "baseline/random", "--out", run]
    assert _cli(*args, "--no-progress", "--limit", "3")[0] == ExitCode.OK
    judged = tmp_path / "judged"
    with FolderLock(judged):
        code, _, stderr = _cli(
            "judge", run, "--out", judged, "--judge", "openai-compatible/j",
            "--base-url", "http://127.0.0.1:9/v1", "--no-progress",
        )  # fmt: skip
    assert code == ExitCode.BUSY and "being written by another process" in stderr


def _duplicate_line(path: Path, index: int, **changes: object) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[index])
    row.update(changes)
    lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_exact_duplicates_are_dropped_with_a_warning(small_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["eval", "--bench", small_bench, "--model", "baseline/random", "--out", out]
    args += ["--no-progress", "--bootstrap", "0", "--limit", "6"]
    assert _cli(*args)[0] == ExitCode.OK
    # What two concurrent runs leave: the same answer twice, written at another time.
    _duplicate_line(out / "predictions.jsonl", 2, created_at="2030-01-01T00:00:00Z")
    with pytest.warns(UserWarning, match=r"dropped 1 exact duplicate"):
        assert len(load_predictions(out)) == 6  # readers (judge, hard, ensemble) go on
    code, _, stderr = _cli(*args)
    assert code == ExitCode.OK, stderr
    assert "exact duplicate" in stderr and "line 7" in stderr
    lines = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6  # repaired on disk by the writer


def test_differing_duplicates_name_both_lines(small_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["eval", "--bench", small_bench, "--model", "baseline/random", "--out", out]
    args += ["--no-progress", "--bootstrap", "0", "--limit", "6"]
    assert _cli(*args)[0] == ExitCode.OK
    row = json.loads((out / "predictions.jsonl").read_text().splitlines()[1])
    other = "A" if row["parsed_answer"] != "A" else "B"
    _duplicate_line(out / "predictions.jsonl", 1, parsed_answer=other, correct=False)
    code, _, stderr = _cli(*args)
    assert code == ExitCode.INPUT_ERROR
    assert "predictions.jsonl:7: id:" in stderr and "first on line 2" in stderr
    assert "different content" in stderr
    assert "parsed_answer" in stderr


# --------------------------------------------------------------------------
# Items 8 and 14: typos write nothing and name the fix
# --------------------------------------------------------------------------


def test_a_model_typo_writes_nothing_and_the_fixed_command_runs(
    small_bench: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code, _, stderr = _cli("eval", "--bench", small_bench, "--model", "gpt4", "--out", out)
    assert code == ExitCode.INPUT_ERROR and "expected 'provider/model'" in stderr
    assert not (out / "config.json").exists()
    code, _, stderr = _cli(
        "eval", "--bench", small_bench, "--model", "baseline/random", "--out", out, "--no-progress"
    )
    assert code == ExitCode.OK, stderr


def test_a_missing_local_model_folder_is_one_line(small_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    for spec, missing in (("hf/./nope", "./nope"), (f"hf/{tmp_path}/gone:./no-adapter", "gone")):
        code, stdout, stderr = _cli("eval", "--bench", small_bench, "--model", spec, "--out", out)
        assert code == ExitCode.INPUT_ERROR
        assert "no such folder" in stderr and missing in stderr
        assert "Traceback" not in stdout + stderr and len(stderr.strip().splitlines()) <= 2
        assert not out.exists()


def test_a_backend_that_fails_to_load_leaves_no_config(small_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["eval", "--bench", small_bench, "--model", "openai-compatible/m", "--out", out]
    args += ["--base-url", "http://127.0.0.1:9/v1", "--no-progress"]
    code, _, stderr = _cli(*args, "--option", "no_such_option=1")
    assert code == ExitCode.INPUT_ERROR and "no_such_option" in stderr
    assert not (out / "config.json").exists()


def test_unknown_choices_list_the_valid_ones(small_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, stderr = _cli(
        "eval", "--bench", small_bench, "--model", "baseline/random", "--out", out,
        "--split", "foo",
    )  # fmt: skip
    assert code == ExitCode.INPUT_ERROR
    assert "--split" in stderr and "train, val, test, all" in stderr
    assert not out.exists()
    run = tmp_path / "r"
    assert (
        _cli("eval", "--bench", small_bench, "--model", "baseline/random", "--out", run)[0]
        == ExitCode.OK
    )
    code, _, stderr = _cli(
        "hard", "--bench", small_bench, "--runs", run, "--out", tmp_path / "h", "--split", "foo"
    )
    assert code == ExitCode.INPUT_ERROR and "train, val, test, all" in stderr


def test_judge_refuses_predictions_whose_task_changed(tmp_path: Path) -> None:
    tasks = [t for t in bench_tasks(1, 0) if t.answer != "D"]
    bench = write_bench(tmp_path / "bench", tasks)
    run = tmp_path / "run"
    args = ["eval", "--bench", bench, "--model", "baseline/random", "--out", run, "--no-progress"]
    assert _cli(*args)[0] == ExitCode.OK
    write_bench(bench, _rebuilt(tasks, [tasks[1].id]))
    code, _, stderr = _cli(
        "judge", run, "--out", tmp_path / "j", "--judge", "openai-compatible/j",
        "--base-url", "http://127.0.0.1:9/v1", "--no-progress",
    )  # fmt: skip
    assert code == ExitCode.INPUT_ERROR
    assert "1 prediction(s)" in stderr and "changed" in stderr and "behaviorsft eval" in stderr
    assert not (tmp_path / "j" / "config.json").exists()


def test_other_options_exit_4_and_fresh_starts_over(small_bench: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["eval", "--bench", small_bench, "--out", out, "--no-progress", "--bootstrap", "0"]
    assert _cli(*args, "--model", "baseline/random", "--limit", "4")[0] == ExitCode.OK
    code, _, stderr = _cli(*args, "--model", "baseline/longest", "--limit", "4")
    assert code == ExitCode.REFUSED and "--fresh" in stderr
    code, _, stderr = _cli(*args, "--model", "baseline/longest", "--limit", "4", "--fresh")
    assert code == ExitCode.OK, stderr
    rows = load_predictions(out)
    assert len(rows) == 4 and {p.model for p in rows} == {"baseline/longest"}


def test_out_pointing_at_another_stages_folder_is_refused_untouched(tmp_path: Path) -> None:
    from behaviorsft.store import new_manifest, write_manifest

    bench = write_bench(tmp_path / "bench", bench_tasks(1, 0))
    write_manifest(bench, new_manifest("build"))
    before = {p.name: p.read_bytes() for p in bench.iterdir()}
    code, _, stderr = _cli(
        "eval", "--bench", bench, "--model", "baseline/random", "--out", bench, "--no-progress"
    )
    assert code == ExitCode.INPUT_ERROR and "outputs of `build`" in stderr
    assert {p.name: p.read_bytes() for p in bench.iterdir()} == before


def test_hard_and_ensemble_refuse_predictions_whose_task_changed(tmp_path: Path) -> None:
    tasks = [t for t in bench_tasks(1, 0) if t.answer != "D"]
    bench = write_bench(tmp_path / "bench", tasks)
    runs = []
    for kind in ("random", "longest"):
        run = tmp_path / kind
        args = ["eval", "--bench", bench, "--model", f"baseline/{kind}", "--out", run]
        assert _cli(*args, "--no-progress", "--bootstrap", "0")[0] == ExitCode.OK
        runs.append(run)
    write_bench(bench, _rebuilt(tasks, [tasks[2].id]))
    code, _, stderr = _cli("ensemble", *runs, "--out", tmp_path / "ens", "--bootstrap", "0")
    assert code == ExitCode.INPUT_ERROR and "changed since" in stderr
    code, _, stderr = _cli("hard", "--bench", bench, "--runs", *runs, "--out", tmp_path / "h")
    assert code == ExitCode.INPUT_ERROR and "changed since" in stderr
