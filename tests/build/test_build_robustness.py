"""`build` on bad input, resumes, concurrent writers and fresh starts (issue 18, build stage)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from behaviorsft.build import pipeline
from behaviorsft.build.pipeline import build_bench
from behaviorsft.cli import app
from behaviorsft.exit_codes import ExitCode
from behaviorsft.store import FolderLock, read_manifest, write_jsonl

runner = CliRunner()


def _synth(path: Path, n: int, seed: int = 0) -> None:
    res = runner.invoke(
        app, ["cases", "synth", "--n", str(n), "--seed", str(seed), "--out", str(path)]
    )
    assert res.exit_code == 0, res.output


def _build(cases: Path, out: Path, *extra: str) -> object:
    return runner.invoke(
        app, ["build", "--cases", str(cases), "--out", str(out), "--workers", "1", *extra]
    )


def _edit_line(path: Path, index: int, edit) -> str:
    """Apply ``edit`` to the JSON of line ``index`` (0-based); return that case's id."""
    lines = path.read_text().splitlines()
    obj = json.loads(lines[index])
    edit(obj)
    lines[index] = json.dumps(obj)
    path.write_text("\n".join(lines) + "\n")
    return obj["id"]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _case_ids(bench: Path) -> list[str]:
    return [json.loads(x)["id"] for x in _lines(bench / "cases.jsonl")]


# -- item 1: one case must never end or crash a build ------------------------------------


def test_a_case_without_imaging_is_built_and_the_build_goes_on(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 16)

    def drop_imaging(obj):
        obj["findings"] = [f for f in obj["findings"] if f["kind"] != "imaging"]

    cid = _edit_line(cases, 4, drop_imaging)
    res = _build(cases, tmp_path / "bench")
    assert res.exit_code == ExitCode.OK, res.output
    built = _case_ids(tmp_path / "bench")
    assert len(built) == 16 and cid in built
    assert len(_lines(tmp_path / "bench" / "conversations.jsonl")) == 16


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_case_that_fails_is_named_skipped_and_the_rest_built(tmp_path, workers):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 12)

    def empty(obj):
        obj["presentation"] = ""
        obj["sections"] = []

    cid = _edit_line(cases, 2, empty)
    out = tmp_path / "bench"
    res = runner.invoke(
        app, ["build", "--cases", str(cases), "--out", str(out), "--workers", workers]
    )
    assert res.exit_code == ExitCode.PARTIAL, res.output
    assert f"{cases}:3: case {cid}:" in res.output
    assert "1 case(s) skipped" in res.output and "manifest.json" in res.output
    built = _case_ids(out)
    assert len(built) == 11 and cid not in built
    man = read_manifest(out)
    assert man is not None
    [skip] = man.skipped
    assert skip.where == f"{cases}:3" and cid in skip.reason and "IndexError" in skip.reason


def test_stop_iteration_inside_one_case_does_not_end_the_build(tmp_path, monkeypatch):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 8)
    victim = json.loads(_lines(cases)[3])["id"]
    real = pipeline.case_tasks

    def flaky(case, *args, **kwargs):
        if case.id == victim:
            next(iter([]))  # a bare next() on an empty iterator: StopIteration
        return real(case, *args, **kwargs)

    monkeypatch.setattr(pipeline, "case_tasks", flaky)
    report = build_bench(cases, tmp_path / "bench", workers=1)
    assert report.cases == 7
    assert [(e.line, e.field) for e in report.failed] == [(4, f"case {victim}")]
    assert "StopIteration" in report.failed[0].message


def test_strict_turns_a_bad_line_into_an_input_error_before_writing(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 6)
    _edit_line(cases, 1, lambda o: o["demographics"].update(age_years=-3))
    out = tmp_path / "bench"
    res = _build(cases, out, "--strict")
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert f"{cases}:2: demographics.age_years" in res.output
    assert not out.exists()
    res = _build(cases, out)  # without --strict: the rest is built, exit PARTIAL
    assert res.exit_code == ExitCode.PARTIAL, res.output
    assert len(_case_ids(out)) == 5


def test_strict_makes_a_case_that_fails_an_input_error(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 5)
    _edit_line(cases, 0, lambda o: o.update(presentation="", sections=[]))
    res = _build(cases, tmp_path / "bench", "--strict")
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert len(_case_ids(tmp_path / "bench")) == 4  # the others are kept


# -- item 3: a resume with other options is refused -------------------------------------


@pytest.mark.parametrize(
    ("option", "new", "old_text", "new_text"),
    [
        (["--seed", "1"], "seed", "0", "1"),
        (["--types", "omission_detection"], "types", "'all'", "['omission_detection']"),
        (["--proportions", "0.5,0.25,0.25"], "proportions", "0.86", "0.5"),
    ],
)
def test_resume_with_changed_options_is_refused(tmp_path, option, new, old_text, new_text):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 6)
    out = tmp_path / "bench"
    assert _build(cases, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    res = _build(cases, out, *option)
    assert res.exit_code == ExitCode.REFUSED, res.output
    assert new in res.output and "--fresh" in res.output
    assert old_text in res.output and new_text in res.output
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # nothing rewritten, the manifest included
    res = _build(cases, out, *option, "--fresh")
    assert res.exit_code == ExitCode.OK, res.output


def test_same_options_resume_is_accepted(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 4)
    out = tmp_path / "bench"
    res = _build(cases, out, "--types", "omission_detection", "--types", "fact_retrieval")
    assert res.exit_code == ExitCode.OK, res.output
    # The order of --types does not matter; --workers does not change content.
    res = _build(cases, out, "--types", "fact_retrieval", "--types", "omission_detection")
    assert res.exit_code == ExitCode.OK, res.output
    res = _build(
        cases, out, "--types", "fact_retrieval", "--types", "omission_detection", "--workers", "2"
    )
    assert res.exit_code == ExitCode.OK, res.output


# -- item 4: one writer per folder -------------------------------------------------------


def test_a_second_writer_is_refused_at_once(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 3)
    out = tmp_path / "bench"
    with FolderLock(out):
        res = _build(cases, out)
    assert res.exit_code == ExitCode.BUSY, res.output
    assert "being written by another process" in res.output
    assert not (out / "tasks.jsonl").exists()
    assert _build(cases, out).exit_code == ExitCode.OK


# -- item 5: cases inside the bench folder ------------------------------------------------


def test_cases_inside_the_bench_folder_are_built(tmp_path):
    # Proportions at which 10 and 14 cases fill every split by hash alone (see below).
    props = ("--proportions", "0.6,0.2,0.2")
    clean = tmp_path / "clean"
    elsewhere = tmp_path / "cases" / "cases.jsonl"
    _synth(elsewhere, 10)
    assert _build(elsewhere, clean, *props).exit_code == 0

    bench = tmp_path / "B"
    inside = bench / "cases.jsonl"
    _synth(inside, 10)
    original = inside.read_bytes()
    res = _build(inside, bench, *props)
    assert res.exit_code == ExitCode.OK, res.output
    for name in ("tasks.jsonl", "conversations.jsonl"):
        assert (bench / name).read_bytes() == (clean / name).read_bytes(), name
    assert inside.read_bytes() == original  # the input is left as it is
    res = _build(inside, bench, *props)
    assert res.exit_code == ExitCode.OK and "(0 new" in res.output, res.output

    # Extend the cases in place and resume: the same as a clean build of all of them.
    _synth(inside, 14)
    _synth(elsewhere, 14)
    assert _build(inside, bench, *props).exit_code == 0
    assert _build(elsewhere, clean, *props, "--fresh").exit_code == 0
    for name in ("tasks.jsonl", "conversations.jsonl"):
        assert (bench / name).read_bytes() == (clean / name).read_bytes(), name

    # --fresh in place keeps the input.
    res = _build(inside, bench, *props, "--fresh")
    assert res.exit_code == ExitCode.OK, res.output
    assert inside.exists() and len(_lines(inside)) == 14
    assert (bench / "tasks.jsonl").read_bytes() == (clean / "tasks.jsonl").read_bytes()


def test_synthesizing_more_cases_in_the_bench_folder_keeps_the_build_options(tmp_path):
    # The cases' seed and the build's seed are different options of different stages:
    # extending the cases in place must not make the next resume look like a changed build.
    props = ("--proportions", "0.6,0.2,0.2")
    bench = tmp_path / "B"
    inside = bench / "cases.jsonl"
    _synth(inside, 10, seed=3)
    assert _build(inside, bench, *props).exit_code == ExitCode.OK
    _synth(inside, 14, seed=3)
    manifest = read_manifest(bench)
    assert manifest is not None and manifest.config["seed"] == 0  # the build's seed
    res = _build(inside, bench, *props)
    assert res.exit_code == ExitCode.OK, res.output
    assert len(_case_ids(bench)) == 14


def test_a_cases_file_in_the_bench_folder_keeps_its_own_dialogues_across_fresh(tmp_path):
    # A source's own dialogue (as `cases import --source aci-bench` writes beside its cases)
    # for one case, in the bench folder: used as is, and never deleted by --fresh.
    src = tmp_path / "src"
    _synth(src / "mine.jsonl", 5)
    assert _build(src / "mine.jsonl", tmp_path / "ref").exit_code == 0
    conv = json.loads(_lines(tmp_path / "ref" / "conversations.jsonl")[0])
    conv["turns"] = conv["turns"][:4]
    conv["turns"][1]["text"] = "An edited line of a recorded dialogue."
    (src / "conversations.jsonl").write_text(json.dumps(conv) + "\n")
    bench = tmp_path / "B"
    bench.mkdir()
    for name in ("mine.jsonl", "conversations.jsonl"):
        (bench / name).write_bytes((src / name).read_bytes())
    clean = tmp_path / "clean"
    assert _build(src / "mine.jsonl", clean, "--seed", "1").exit_code == 0
    assert _build(bench / "mine.jsonl", bench).exit_code == 0
    res = _build(bench / "mine.jsonl", bench, "--seed", "1", "--fresh")
    assert res.exit_code == ExitCode.OK, res.output
    for name in ("tasks.jsonl", "cases.jsonl"):
        assert (bench / name).read_bytes() == (clean / name).read_bytes(), name
    # The input dialogue keeps its own bytes (its file is the output too), so compare records.
    convs = [json.loads(x) for x in _lines(bench / "conversations.jsonl")]
    assert convs == [json.loads(x) for x in _lines(clean / "conversations.jsonl")]
    assert convs[0]["turns"][1]["text"] == "An edited line of a recorded dialogue."


def test_resume_that_would_move_a_small_sample_split_is_refused(tmp_path):
    # 10 cases at the paper's 1.4% val: the small-sample rule puts one in val (and one in
    # test); with 14 it picks other cases, so resuming would leave a case in the wrong split.
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 10)
    out = tmp_path / "bench"
    res = _build(cases, out)
    assert res.exit_code == ExitCode.OK and "small-sample rule" in res.output, res.output
    before = (out / "tasks.jsonl").read_bytes()
    _synth(cases, 14)
    res = _build(cases, out)
    assert res.exit_code == ExitCode.REFUSED, res.output
    assert "would now get another split" in res.output and "--fresh" in res.output
    assert (out / "tasks.jsonl").read_bytes() == before
    assert _build(cases, out, "--fresh").exit_code == ExitCode.OK


# -- item 10: wrong input files ------------------------------------------------------------


def test_a_tasks_file_is_not_taken_for_cases(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 3)
    assert _build(cases, tmp_path / "bench").exit_code == 0
    tasks = tmp_path / "bench" / "tasks.jsonl"
    renamed = tmp_path / "mine.jsonl"
    renamed.write_bytes(tasks.read_bytes())
    for wrong in (tasks, renamed):
        out = tmp_path / f"out-{wrong.stem}"
        res = _build(wrong, out)
        assert res.exit_code == ExitCode.INPUT_ERROR, res.output
        assert f"{wrong} is a tasks file, not a cases file" in res.output
        assert len(res.output.splitlines()) < 10
        assert not out.exists()


def test_empty_or_invalid_cases_files_are_input_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = _build(empty, tmp_path / "b1")
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "no case" in res.output and not (tmp_path / "b1").exists()

    cases = tmp_path / "cases.jsonl"
    _synth(cases, 2)
    for i in range(2):
        _edit_line(cases, i, lambda o: o["demographics"].update(age_years=-1))
    res = _build(cases, tmp_path / "b2")
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert f"{cases}:1: demographics.age_years" in res.output
    assert "no valid case" in res.output and not (tmp_path / "b2").exists()


def test_a_directory_as_cases_gives_a_message(tmp_path):
    res = _build(tmp_path, tmp_path / "bench")
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "is a directory" in res.output and "Traceback" not in res.output
    res = _build(tmp_path / "nope.jsonl", tmp_path / "bench")
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "no such file" in res.output
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 1)
    res = _build(cases, cases)  # --out names a file
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "needs a folder" in res.output and "Traceback" not in res.output


def test_a_corrupt_manifest_is_reported_before_any_work(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 3)
    out = tmp_path / "bench"
    assert _build(cases, out).exit_code == 0
    (out / "manifest.json").write_text("{not json")
    res = _build(cases, out)
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "manifest.json" in res.output and "--fresh" in res.output
    assert "Traceback" not in res.output
    assert _build(cases, out, "--fresh").exit_code == ExitCode.OK


# -- item 12: --fresh removes what the old build left; file modes --------------------------


def test_fresh_removes_downstream_outputs(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 3)
    out = tmp_path / "bench"
    assert _build(cases, out).exit_code == 0
    assert runner.invoke(app, ["stats", str(out), "--figures", str(out / "figures")]).exit_code == 0
    (out / "audit.json").write_text("{}\n")
    assert (out / "stats.json").exists() and any((out / "figures").iterdir())
    res = _build(cases, out, "--fresh")
    assert res.exit_code == 0, res.output
    for stale in ("audit.json", "stats.json", "figures"):
        assert not (out / stale).exists(), stale


def test_manifest_and_atomic_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        cases = tmp_path / "cases.jsonl"
        _synth(cases, 2)
        out = tmp_path / "bench"
        assert _build(cases, out).exit_code == 0
        write_jsonl(tmp_path / "atomic.jsonl", [{"id": "x"}])
    finally:
        os.umask(old)
    for path in (out / "manifest.json", out / "tasks.jsonl", tmp_path / "atomic.jsonl"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


# -- item 13: splits do not move when cases are added ---------------------------------------


def test_adding_cases_and_resuming_matches_a_clean_build(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 60)
    out = tmp_path / "resumed"
    assert _build(cases, out).exit_code == 0
    _synth(cases, 120)
    assert _build(cases, out).exit_code == 0
    assert _build(cases, tmp_path / "clean").exit_code == 0
    for name in ("tasks.jsonl", "conversations.jsonl", "cases.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name


# -- item 14: the bar ends full ---------------------------------------------------------------


def test_progress_ends_full_when_cases_are_skipped(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 2)
    _edit_line(cases, 0, lambda o: o["demographics"].update(age_years=-2))
    seen: list[tuple[int, int]] = []
    build_bench(cases, tmp_path / "bench", workers=1, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (2, 2)
