"""`study analyze` and `study apply` end to end: files, verdicts beside the bench, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from behaviorsft.cli_study_analyze import study_group
from behaviorsft.exit_codes import ExitCode
from behaviorsft.records import StudyVerdict
from behaviorsft.store import new_manifest, read_jsonl, read_manifest, write_jsonl, write_manifest
from behaviorsft.study.verdicts import VERDICTS_FILE, read_verdicts
from tests.conftest import make_task_dict
from tests.study.study_rows import comparison_rows, vrow, write_export

runner = CliRunner()
APP = study_group()

RANKS = {
    (rater, task): dict(zip(("behaviorsft", "general", "zs_explicit"), order, strict=True))
    for (rater, task), order in {
        ("r1", "t1"): (1, 2, 3),
        ("r2", "t1"): (1, 3, 2),
        ("r1", "t2"): (2, 1, 3),
        ("r2", "t2"): (1, 2, 3),
    }.items()
}
LIKERT = {sheet: {"behaviorsft": 5, "general": 4, "zs_explicit": 3} for sheet in RANKS}


def _validation_rows():
    rows = []
    for task, answers in {
        "t1": ("B", "B", "B"),
        "t2": ("C", "D", "B"),
        "t3": ("B", "B", "A"),
    }.items():
        for rater, ans in zip(("r1", "r2", "r3"), answers, strict=True):
            rows.append(
                vrow(
                    rater,
                    task,
                    answer=ans,
                    proactivity={"t1": 0.2, "t2": 0.6, "t3": 0.9}[task]
                    + (0.1 if rater == "r2" else 0),
                    plausibility="no" if (task, rater) == ("t3", "r3") else "yes",
                    note="the key looks wrong" if task == "t2" and rater == "r1" else "",
                )
            )
    return rows


@pytest.fixture
def export(tmp_path: Path) -> Path:
    rows, key = comparison_rows(RANKS, LIKERT, unsafe={("r2", "t2", "general"): "wrong drug"})
    return write_export(tmp_path / "export", _validation_rows(), rows, key)


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    folder = tmp_path / "bench"
    write_jsonl(
        folder / "tasks.jsonl",
        [make_task_dict(id=t, case_id="c-1", split="test") for t in ("t1", "t2", "t3", "t4")],
    )
    write_manifest(folder, new_manifest("build"))
    return folder


def _analyze(export: Path, out: Path, *extra: str):
    return runner.invoke(
        APP, ["analyze", str(export), "--out", str(out), "--bootstrap", "200", *extra]
    )


def test_analyze_writes_report_numbers_figures_and_verdicts(export, tmp_path):
    out = tmp_path / "report"
    res = _analyze(export, out)
    assert res.exit_code == 0, res.output
    for name in ("report.md", "analysis.json", "verdicts.jsonl", "figure18.png", "figure19.png"):
        assert (out / name).stat().st_size > 0, name
    analysis = json.loads((out / "analysis.json").read_text())
    v = analysis["validation"]
    assert v["accuracy"]["overall"]["mean"] == pytest.approx(6 / 9)
    assert v["rejected"] == ["t2"]  # 2/3 chose another answer than B
    assert v["slider"]["icc"]["n_targets"] == 3
    c = analysis["comparison"]
    assert c["per_agent"]["behaviorsft"]["rank"]["mean"] == pytest.approx(5 / 4)
    assert c["per_agent"]["general"]["unsafe"]["flags"][0]["note"] == "wrong drug"
    verdicts = read_jsonl(out / "verdicts.jsonl", StudyVerdict, key=None)
    assert {v.task_id: v.verdict for v in verdicts} == {
        "t1": "accepted",
        "t2": "rejected",
        "t3": "accepted",
    }
    assert all(v.study == "pilot" and v.n_raters == 3 for v in verdicts)
    md = (out / "report.md").read_text()
    assert "Figure 18" in md and "Figure 19" in md and "ICC(3,1)" in md
    assert "the key looks wrong" in md and "wrong drug" in md
    assert "accuracy 66.7%" in res.output


def test_analyze_is_deterministic_for_a_seed(export, tmp_path):
    assert _analyze(export, tmp_path / "a", "--seed", "5").exit_code == 0
    assert _analyze(export, tmp_path / "b", "--seed", "5").exit_code == 0

    def numbers(p: Path) -> dict:
        data = json.loads((p / "analysis.json").read_text())
        return {"v": data["validation"], "c": data["comparison"]}

    assert numbers(tmp_path / "a") == numbers(tmp_path / "b")


def test_stricter_rule_from_the_command_line(export, tmp_path):
    res = _analyze(export, tmp_path / "r", "--reject-implausible-above", "0")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "r" / "analysis.json").read_text())
    assert data["validation"]["rejected"] == ["t2", "t3"]  # t3: one 'No' is enough now


def test_bad_inputs_exit_2_with_the_file_and_line(tmp_path, export):
    missing = runner.invoke(APP, ["analyze", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == ExitCode.INPUT_ERROR and "no such export folder" in missing.output

    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(APP, ["analyze", str(empty), "--out", str(tmp_path / "o")])
    assert res.exit_code == ExitCode.INPUT_ERROR and "not a study export" in res.output

    lines = (export / "validation.jsonl").read_text().splitlines()
    bad = json.loads(lines[1])
    bad["confidence"] = "very"
    (export / "validation.jsonl").write_text(
        "\n".join([lines[0], json.dumps(bad), *lines[2:]]) + "\n"
    )
    res = _analyze(export, tmp_path / "o")
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "validation.jsonl:2: confidence" in res.output
    assert not (tmp_path / "o").exists()  # nothing written


def test_inconsistent_rows_are_named(tmp_path):
    rows = [vrow("r1", "t1"), vrow("r2", "t1", key="C"), vrow("r1", "t1")]
    folder = write_export(tmp_path / "e", rows)
    res = _analyze(folder, tmp_path / "o")
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "validation.jsonl:2: key: 'C' for task 't1', but line 1 gives 'B'" in res.output
    assert "validation.jsonl:3: task_id: rater 'r1' has task 't1' twice" in res.output


def test_comparison_without_the_key_is_refused(tmp_path):
    rows, _ = comparison_rows(RANKS, LIKERT)
    folder = write_export(tmp_path / "e", comparison=rows)
    res = _analyze(folder, tmp_path / "o")
    assert res.exit_code == ExitCode.INPUT_ERROR and "agent_key.jsonl" in res.output


def test_a_broken_ranking_is_named(tmp_path):
    rows, key = comparison_rows(RANKS, LIKERT)
    rows[0] = rows[0].model_copy(update={"rank": rows[1].rank})
    folder = write_export(tmp_path / "e", comparison=rows, key=key)
    res = _analyze(folder, tmp_path / "o")
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "comparison.jsonl:3: rank: rater 'r1' ranked task 't1'" in res.output


def test_give_a_folder_or_db_not_both(export, tmp_path):
    res = runner.invoke(APP, ["analyze", "--out", str(tmp_path / "o")])
    assert res.exit_code == ExitCode.INPUT_ERROR
    res = runner.invoke(
        APP, ["analyze", str(export), "--db", "sqlite:///x.db", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == ExitCode.INPUT_ERROR


# ---------------------------------------------------------------------------
# apply
# ---------------------------------------------------------------------------


def test_apply_writes_verdicts_beside_the_bench_and_notes_it(export, bench, tmp_path):
    out = tmp_path / "report"
    assert _analyze(export, out).exit_code == 0
    res = runner.invoke(APP, ["apply", str(out), "--bench", str(bench)])
    assert res.exit_code == 0, res.output
    rows = read_verdicts(bench / VERDICTS_FILE)
    assert {r.task_id for r in rows if r.verdict == "rejected"} == {"t2"}
    manifest = read_manifest(bench)
    assert manifest.files[VERDICTS_FILE].count == 3 and manifest.files[VERDICTS_FILE].sha256
    assert any("pilot" in n and "1 of 3 tasks rejected" in n for n in manifest.notes)

    # applying the same study again replaces its rows; another study's rows stay
    other = [StudyVerdict(task_id="t4", verdict="rejected", study="second", n_raters=2)]
    write_jsonl(tmp_path / "r2" / "verdicts.jsonl", other)
    assert runner.invoke(APP, ["apply", str(tmp_path / "r2"), "--bench", str(bench)]).exit_code == 0
    assert runner.invoke(APP, ["apply", str(out), "--bench", str(bench)]).exit_code == 0
    rows = read_verdicts(bench / VERDICTS_FILE)
    assert sorted((r.study, r.task_id) for r in rows) == [
        ("pilot", "t1"),
        ("pilot", "t2"),
        ("pilot", "t3"),
        ("second", "t4"),
    ]


def test_apply_refuses_task_ids_the_bench_lacks(bench, tmp_path):
    report = tmp_path / "report"
    write_jsonl(
        report / "verdicts.jsonl",
        [
            StudyVerdict(task_id="t1", verdict="accepted", study="s", n_raters=3),
            StudyVerdict(task_id="elsewhere-9", verdict="rejected", study="s", n_raters=3),
        ],
    )
    res = runner.invoke(APP, ["apply", str(report), "--bench", str(bench)])
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "1 task id(s) are not in" in res.output and "elsewhere-9" in res.output
    assert not (bench / VERDICTS_FILE).exists()
    assert not read_manifest(bench).notes


def test_apply_needs_a_report_with_verdicts(bench, tmp_path):
    (tmp_path / "r").mkdir()
    res = runner.invoke(APP, ["apply", str(tmp_path / "r"), "--bench", str(bench)])
    assert res.exit_code == ExitCode.INPUT_ERROR and "verdicts.jsonl" in res.output


def test_a_report_folder_in_use_exits_5(export, tmp_path):
    from behaviorsft.store import FolderLock

    out = tmp_path / "report"
    with FolderLock(out):
        res = _analyze(export, out)
    assert res.exit_code == ExitCode.BUSY, res.output
    assert not (out / "analysis.json").exists()


def test_an_export_of_several_studies(tmp_path):
    """`study export` writes every study of the database: a validation and a comparison
    study side by side are analysed together; two rounds of one phase need --study."""
    cmp_rows, key = comparison_rows(RANKS, LIKERT)
    cmp_rows = [r.model_copy(update={"study": "phase2"}) for r in cmp_rows]
    key = [k.model_copy(update={"study": "phase2"}) for k in key]
    round2 = [r.model_copy(update={"study": "round2", "answer": "B"}) for r in _validation_rows()]
    folder = write_export(tmp_path / "e", [*_validation_rows(), *round2], cmp_rows, key)

    res = _analyze(folder, tmp_path / "o")
    assert res.exit_code == ExitCode.INPUT_ERROR
    assert "rows of several studies (pilot, round2); pick one with --study NAME" in res.output

    res = _analyze(folder, tmp_path / "o", "--study", "round2")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o" / "analysis.json").read_text())
    assert data["validation"]["accuracy"]["overall"]["mean"] == 1.0  # round 2's answers only
    assert data["comparison"] is None and not (tmp_path / "o" / "figure19.png").exists()
    assert [m["name"] for m in data["meta"]] == ["round2"]
    assert {
        v.study for v in read_jsonl(tmp_path / "o" / "verdicts.jsonl", StudyVerdict, key=None)
    } == {"round2"}

    only_pilot = write_export(tmp_path / "e2", _validation_rows(), cmp_rows, key)
    res = _analyze(only_pilot, tmp_path / "o2")
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o2" / "analysis.json").read_text())
    assert data["studies"] == {"validation": "pilot", "comparison": "phase2"}
    assert data["study"] == "pilot + phase2"
    assert data["comparison"]["per_agent"]["behaviorsft"]["rank"]["mean"] == pytest.approx(5 / 4)

    res = _analyze(only_pilot, tmp_path / "o3", "--study", "nope")
    assert res.exit_code == ExitCode.INPUT_ERROR and "answers of: phase2, pilot" in res.output


def test_db_that_does_not_exist_exits_2(tmp_path):
    res = runner.invoke(
        APP, ["analyze", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == ExitCode.INPUT_ERROR and "no such database file" in res.output
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "o").exists()
