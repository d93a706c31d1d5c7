"""Shortcut baselines: what they pick, and that they run through the ordinary runner."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from behaviorsft.evaluate.baselines import baseline_answer
from behaviorsft.evaluate.runner import EvalConfig, load_predictions, run_eval
from behaviorsft.records import Task
from tests.conftest import make_task_dict


def _task(i: int, texts: list[str], answer: str = "A") -> Task:
    options = [{"label": "ABCDEF"[k], "text": t} for k, t in enumerate(texts)]
    return Task.model_validate(
        make_task_dict(id=f"t{i}", options=options, answer=answer, option_permutation=None)
    )


def test_longest_picks_the_longest_option() -> None:
    task = _task(0, ["short", "a much longer option text", "mid length", "tiny"])
    assert {baseline_answer(task, "longest", seed) for seed in range(20)} == {"B"}


def test_longest_breaks_ties_at_random_but_reproducibly() -> None:
    task = _task(1, ["aaaa", "bbbb", "cc", "dddd"])
    picks = [baseline_answer(task, "longest", seed) for seed in range(60)]
    assert set(picks) == {"A", "B", "D"}  # never the shorter C, and not always the first
    assert picks == [baseline_answer(task, "longest", seed) for seed in range(60)]


def test_random_is_uniform_over_the_options() -> None:
    counts = Counter(
        baseline_answer(_task(i, ["w", "x", "y", "z"]), "random", 0) for i in range(2000)
    )
    assert set(counts) == {"A", "B", "C", "D"}
    assert all(400 <= n <= 600 for n in counts.values()), counts


def test_unknown_baseline_is_refused() -> None:
    with pytest.raises(ValueError, match="baseline/random"):
        baseline_answer(_task(0, ["a", "b", "c", "d"]), "smartest")


def test_baselines_run_through_the_runner(small_bench: Path, tmp_path: Path) -> None:
    cfg = EvalConfig(bench=str(small_bench), model="baseline/longest", out=str(tmp_path / "r"))
    result = run_eval(cfg, show_progress=False)
    preds = load_predictions(tmp_path / "r")
    assert len(preds) == result.requested > 0
    assert all(p.valid and p.model == "baseline/longest" for p in preds)
    assert result.metrics["label"] == "baseline/longest"
    again = run_eval(cfg, show_progress=False)
    assert again.reused == result.requested and again.generated == 0
    with pytest.raises(ValueError, match="unknown baseline"):
        EvalConfig(bench=str(small_bench), model="baseline/oracle", out="x").validate()
