"""`eval --exclude-rejected` and `hard --exclude-rejected`: tasks a study rejected are left out."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from behaviorsft.bench import load_bench
from behaviorsft.cli import app
from behaviorsft.evaluate.ensemble import run_ensemble
from behaviorsft.evaluate.hard import build_hard
from behaviorsft.evaluate.runner import EvalConfig, load_predictions, run_eval
from behaviorsft.exit_codes import ExitCode
from behaviorsft.records import StudyVerdict
from behaviorsft.store import file_sha256, read_manifest, write_jsonl
from behaviorsft.study.verdicts import VERDICTS_FILE, apply_verdicts

REJECTED = ("fact_retrieval-test-1", "omission_detection-test-2")


def _apply(bench: Path, tmp_path: Path) -> Path:
    """Verdicts through the real `study apply` path: two rejected, one accepted."""
    report = tmp_path / "report"
    write_jsonl(
        report / "verdicts.jsonl",
        [
            *(
                StudyVerdict(task_id=t, verdict="rejected", reasons=["r"], study="s", n_raters=3)
                for t in REJECTED
            ),
            StudyVerdict(
                task_id="fact_retrieval-test-0", verdict="accepted", study="s", n_raters=3
            ),
        ],
    )
    apply_verdicts(report, bench)
    return bench / VERDICTS_FILE


def _gold_reply(bench: Path):
    gold = {t.id: t.answer for t in load_bench(bench).tasks}
    return lambda req: f"<answer>{gold[req.key.split('@')[0]]}</answer>"


def test_eval_leaves_rejected_tasks_out_and_records_it(small_bench, tmp_path, scripted):
    verdicts = _apply(small_bench, tmp_path)
    n_test = len(load_bench(small_bench).split("test"))
    out = tmp_path / "run"
    cfg = EvalConfig(
        bench=str(small_bench), model="m/x", out=str(out), n_bootstrap=0, exclude_rejected=True
    )
    result = run_eval(cfg, model=scripted(_gold_reply(small_bench)), show_progress=False)
    answered = {p.task_id for p in load_predictions(out)}
    assert not answered & set(REJECTED)
    assert "fact_retrieval-test-0" in answered  # accepted tasks stay
    assert result.metrics["counts"]["tasks"] == n_test - 2
    manifest = read_manifest(out)
    assert manifest.counts["excluded_rejected"] == 2
    record = manifest.config["study_verdicts"]
    assert record["verdicts_sha256"] == file_sha256(verdicts) and record["rejected"] == 2
    assert any("--exclude-rejected: left out 2 task(s)" in n for n in manifest.notes)
    assert json.loads((out / "config.json").read_text())["exclude_rejected"] is True

    # without the flag the same bench is evaluated whole
    plain = tmp_path / "plain"
    cfg = EvalConfig(bench=str(small_bench), model="m/x", out=str(plain), n_bootstrap=0)
    result = run_eval(cfg, model=scripted(_gold_reply(small_bench)), show_progress=False)
    assert result.metrics["counts"]["tasks"] == n_test
    assert "study_verdicts" not in read_manifest(plain).config


def test_eval_flag_without_verdicts_exits_2_and_writes_nothing(small_bench, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        ["eval", "--bench", str(small_bench), "--model", "baseline/random", "--out", str(out)]
        + ["--exclude-rejected", "--no-progress"],
    )
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "has no study verdicts" in res.output and "study apply" in res.output
    assert not out.exists()


def test_eval_cli_flag_with_verdicts(small_bench, tmp_path):
    _apply(small_bench, tmp_path)
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        ["eval", "--bench", str(small_bench), "--model", "baseline/random", "--out", str(out)]
        + ["--exclude-rejected", "--no-progress", "--bootstrap", "0"],
    )
    assert res.exit_code == 0, res.output
    assert not {p.task_id for p in load_predictions(out)} & set(REJECTED)


def _runs(bench: Path, root: Path) -> list[Path]:
    runs = []
    for kind in ("random", "longest"):
        out = root / kind
        run_eval(
            EvalConfig(bench=str(bench), model=f"baseline/{kind}", out=str(out), n_bootstrap=0),
            show_progress=False,
        )
        runs.append(out)
    return runs


def test_hard_leaves_rejected_tasks_out_and_records_it(small_bench, tmp_path):
    runs = _runs(small_bench, tmp_path)
    whole = build_hard(small_bench, runs, tmp_path / "hard-all", min_failing_models=1)
    verdicts = _apply(small_bench, tmp_path)
    res = CliRunner().invoke(
        app,
        ["hard", "--bench", str(small_bench), "--runs", str(runs[0]), str(runs[1])]
        + ["--out", str(tmp_path / "hard"), "--min-failing-models", "1", "--exclude-rejected"],
    )
    assert res.exit_code == 0, res.output
    ids = {t.id for t in load_bench(tmp_path / "hard").tasks}
    before = set(whole["failing_models"])
    assert before & set(REJECTED)  # a rejected task was hard, so leaving it out shows
    assert ids == before - set(REJECTED)
    manifest = read_manifest(tmp_path / "hard")
    assert manifest.counts["excluded_rejected"] == 2
    assert manifest.counts["candidates"] == whole["source_split"]["n_tasks"] - 2
    assert manifest.config["study_verdicts"]["verdicts_sha256"] == file_sha256(verdicts)


def test_hard_flag_without_verdicts_exits_2(small_bench, tmp_path):
    runs = _runs(small_bench, tmp_path)
    res = CliRunner().invoke(
        app,
        ["hard", "--bench", str(small_bench), "--runs", str(runs[0]), str(runs[1])]
        + ["--out", str(tmp_path / "hard"), "--exclude-rejected"],
    )
    assert res.exit_code == ExitCode.INPUT_ERROR and "has no study verdicts" in res.output
    assert not (tmp_path / "hard").exists()


def test_hard_reads_a_few_shot_run_as_it_was_made(small_bench, tmp_path, scripted):
    """A few-shot run made with --exclude-rejected drew its examples from the kept tasks:
    `hard` and `ensemble` check its answers against that bench, not the whole one
    (no false 'the task has changed')."""
    train_ids = [t.id for t in load_bench(small_bench).split("train")]
    write_jsonl(
        tmp_path / "report" / "verdicts.jsonl",
        [
            StudyVerdict(task_id=t, verdict="rejected", study="s", n_raters=3)
            for t in train_ids[::2]
        ],
    )
    apply_verdicts(tmp_path / "report", small_bench)
    runs = []
    for name, flag in (("m/one", True), ("m/two", False)):
        out = tmp_path / name.replace("/", "_")
        cfg = EvalConfig(
            bench=str(small_bench),
            model=name,
            out=str(out),
            strategy="few_shot",
            n_bootstrap=0,
            exclude_rejected=flag,
        )
        run_eval(cfg, model=scripted(lambda req: "<answer>A</answer>"), show_progress=False)
        runs.append(out)
    for flag in (True, False):
        report = build_hard(
            small_bench,
            runs,
            tmp_path / f"hard-{flag}",
            min_failing_models=1,
            exclude_rejected=flag,
        )
        assert report["hard"]["n_tasks"] > 0
    # the ensemble reads its members the same way
    run_ensemble(runs, tmp_path / "ensemble", n_bootstrap=0)
