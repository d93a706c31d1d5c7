"""`train --exclude-rejected`: tasks a clinician study rejected are not trained or validated on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from behaviorsft.bench import load_bench
from behaviorsft.cli import app
from behaviorsft.exit_codes import ExitCode
from behaviorsft.records import StudyVerdict
from behaviorsft.store import file_sha256, read_manifest, write_jsonl
from behaviorsft.study.verdicts import VERDICTS_FILE, apply_verdicts
from behaviorsft.train.config import load_config
from behaviorsft.train.trainer import load_training_bench


@pytest.fixture
def bench(small_bench: Path, tmp_path: Path) -> Path:
    """A copy of the session's bench (verdicts are written beside it)."""
    return Path(shutil.copytree(small_bench, tmp_path / "bench"))


def _reject(bench: Path, ids: list[str], tmp_path: Path) -> Path:
    report = tmp_path / "report"
    write_jsonl(
        report / "verdicts.jsonl",
        [StudyVerdict(task_id=t, verdict="rejected", study="s", n_raters=3) for t in ids],
    )
    apply_verdicts(report, bench)
    return bench / VERDICTS_FILE


def _ids(bench: Path, split: str, n: int) -> list[str]:
    return sorted(t.id for t in load_bench(bench).split(split))[:n]


def test_training_bench_leaves_rejected_tasks_out(bench, tmp_path):
    rejected = _ids(bench, "train", 2) + _ids(bench, "val", 1)
    verdicts = _reject(bench, rejected, tmp_path)
    cfg = load_config(None, {"model": "m", "bench": str(bench), "output_dir": "o"})
    whole, none = load_training_bench(cfg)
    assert none is None and {t.id for t in whole.tasks} >= set(rejected)

    cfg = load_config(
        None, {"model": "m", "bench": str(bench), "output_dir": "o", "exclude_rejected": True}
    )
    kept, exclusion = load_training_bench(cfg)
    assert not {t.id for t in kept.tasks} & set(rejected)
    assert len(kept.tasks) == len(whole.tasks) - 3
    assert exclusion.excluded == 3 and exclusion.verdicts_sha256 == file_sha256(verdicts)


def test_flag_without_verdicts_exits_2_before_any_model_is_loaded(bench, tmp_path):
    out = tmp_path / "adapter"
    res = CliRunner().invoke(
        app,
        ["train", "--mode", "behavior", "--model", "./no-such-model", "--bench", str(bench)]
        + ["--out", str(out), "--exclude-rejected"],
    )
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert "has no study verdicts" in res.output and "Traceback" not in res.output
    assert not out.exists()


@pytest.mark.slow
def test_train_records_the_exclusion_in_its_manifest(bench, tiny_models, tmp_path):
    rejected = _ids(bench, "train", 2) + _ids(bench, "val", 1)
    verdicts = _reject(bench, rejected, tmp_path)
    n_train, n_val = len(load_bench(bench).split("train")), len(load_bench(bench).split("val"))
    out = tmp_path / "adapter"
    quick = {
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "effective_batch_size": 4,
        "max_length": 512,
        "gradient_checkpointing": False,
        "select_best": False,
        "report_to": "none",
    }
    args = ["train", "--mode", "behavior", "--model", str(tiny_models["tied"])]
    args += ["--bench", str(bench), "--out", str(out), "--exclude-rejected"]
    for key, value in quick.items():
        args += ["--set", f"{key}={value}"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "left out 3 task(s)" in res.output
    manifest = read_manifest(out)
    assert manifest.counts["train_examples"] == n_train - 2
    assert manifest.counts["val_examples"] == n_val - 1
    assert manifest.counts["excluded_rejected"] == 3
    assert manifest.config["exclude_rejected"] is True
    assert manifest.config["study_verdicts"]["verdicts_sha256"] == file_sha256(verdicts)
