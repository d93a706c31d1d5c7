"""Aggregates of hand-made judgements, checked on paper, and the figures on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from behaviorsft.judge.aggregate import (
    JudgedRun,
    aggregate,
    bootstrap_mean_ci,
    criterion_summary,
    markdown,
)
from behaviorsft.judge.figures import density_png, grouped_bars_png
from behaviorsft.records import Criterion, Judgement
from behaviorsft.taxonomy import Category


def _j(pred: str, task: str, crit: Criterion, score: float | None, **kw: Any) -> Judgement:
    if score is None:
        return Judgement(
            prediction_id=pred,
            task_id=task,
            criterion=crit,
            judge_model="openai/gpt-4o-mini",
            error=kw.get("error", "judge call failed: HTTP 500"),
        )
    return Judgement(
        prediction_id=pred,
        task_id=task,
        criterion=crit,
        judge_model="openai/gpt-4o-mini",
        score=score,
        raw_score=1 + 4 * score,
        method=kw.get("method", "logprobs"),
        n_samples=kw.get("n_samples"),
    )


U, S = Criterion.UTILITY, Criterion.SPECIFICITY
CATS = {"r1": Category.REACTIVE, "r2": Category.REACTIVE, "p1": Category.PROACTIVE}


def _run() -> JudgedRun:
    js = [
        _j("r1@0", "r1", U, 1.0),
        _j("r1@1", "r1", U, 0.5),
        _j("r2@0", "r2", U, 0.75, method="sampling", n_samples=20),
        _j("p1@0", "p1", U, 0.25),
        _j("p1@1", "p1", U, None),  # unscored: excluded, counted
        _j("r1@0", "r1", S, 0.5),
        _j("p1@0", "p1", S, 0.9),
    ]
    return JudgedRun("base", "Baseline", js, CATS)


def test_criterion_summary_by_hand():
    s = criterion_summary([j for j in _run().judgements if j.criterion is U], n_resamples=0)
    # scored: 1.0, 0.5, 0.75, 0.25 -> mean 0.625; the unscored one is not a 0
    assert s["mean"] == pytest.approx(0.625)
    assert s["std"] == pytest.approx(np.std([1.0, 0.5, 0.75, 0.25], ddof=1))
    assert (s["n"], s["unscored"], s["tasks"]) == (4, 1, 3)
    assert s["methods"] == {"logprobs": 3, "sampling": 1}
    assert s["ci"] is None  # no resamples asked for


def test_aggregate_per_category_by_hand():
    agg = aggregate([_run()], n_resamples=200)
    assert agg["criteria"] == ["utility", "specificity"]
    run = agg["runs"][0]
    assert run["counts"] == {"judgements": 7, "scored": 6, "unscored": 1, "predictions": 5}
    assert run["unscored_reasons"] == {"judge call failed": 1}
    react = run["per_category"]["reactive"]["utility"]
    assert react["mean"] == pytest.approx((1.0 + 0.5 + 0.75) / 3)
    pro = run["per_category"]["proactive"]["utility"]
    assert pro["mean"] == pytest.approx(0.25) and pro["unscored"] == 1
    assert "balanced" not in run["per_category"]
    lo, hi = run["criteria"]["utility"]["ci"]
    assert 0.25 <= lo <= 0.625 <= hi <= 1.0


def test_bootstrap_resamples_tasks_with_all_their_values():
    # One task: every resample draws it, so the CI collapses onto its mean.
    assert bootstrap_mean_ci({"t": [0.2, 0.4]}, n_resamples=50) == pytest.approx([0.3, 0.3])
    # Two tasks, one value each: resamples are {a,a}, {a,b}, {b,b} -> means in [0, 1].
    lo, hi = bootstrap_mean_ci({"a": [0.0], "b": [1.0]}, n_resamples=2000, seed=1)
    assert lo == pytest.approx(0.0) and hi == pytest.approx(1.0)
    # Same seed, same interval.
    values = {f"t{i}": [i / 10] for i in range(10)}
    assert bootstrap_mean_ci(values, seed=3) == bootstrap_mean_ci(values, seed=3)
    assert bootstrap_mean_ci({}, n_resamples=10) is None


def test_markdown_lists_scores_counts_and_reasons():
    md = markdown(aggregate([_run()], n_resamples=0))
    assert "| Baseline | 0.625 | 0.700 |" in md
    assert "4 / 1 (3 / 1)" in md  # scored / unscored (logprobs / sampling)
    assert "judge call failed (1)" in md


def test_figures_are_written(tmp_path: Path):
    other = JudgedRun(
        "bsft",
        "BehaviorSFT",
        [
            _j("r1@0", "r1", U, 0.9),
            _j("p1@0", "p1", U, 0.8),
            _j("r1@0", "r1", S, 0.7),
            _j("p1@0", "p1", S, 0.7),  # all equal: drawn as a line, not a KDE
            _j("r1@0", "r1", Criterion.IMPLICITNESS, 0.3),
            _j("p1@0", "p1", Criterion.IMPLICITNESS, 0.6),
        ],
        CATS,
    )
    runs = [_run(), other]
    agg = aggregate(runs, n_resamples=100)
    bars = grouped_bars_png(agg, tmp_path / "bars.png")
    dens = density_png(runs, tmp_path / "dens.png")
    for path in (bars, dens):
        assert path is not None and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_skip_criteria_not_judged(tmp_path: Path):
    only_spec = JudgedRun("x", "X", [_j("r1@0", "r1", S, 0.5)], CATS)
    assert grouped_bars_png(aggregate([only_spec], n_resamples=0), tmp_path / "b.png") is None
    assert not (tmp_path / "b.png").exists()
    only_util = JudgedRun("y", "Y", [_j("r1@0", "r1", U, 0.5)], CATS)
    assert density_png([only_util], tmp_path / "d.png") is None
