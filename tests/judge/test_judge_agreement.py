"""Judge-human agreement: statistics equal scipy's on a hand-made table; bad rows are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import kendalltau, spearmanr

from behaviorsft.judge.aggregate import JudgedRun
from behaviorsft.judge.agreement import (
    RatingsFileError,
    agreement,
    correlation,
    read_ratings,
    write_agreement,
)
from behaviorsft.judge.geval import RUNS_FILE, judgements_path
from behaviorsft.records import Criterion, Judgement
from behaviorsft.store import write_jsonl
from behaviorsft.taxonomy import Category

# Judge raw scores (1-5) and human ratings of six answers, on utility.
JUDGE_RAW = [5.0, 4.2, 3.0, 3.6, 1.5, 2.0]
HUMAN = [5, 4, 3, 4, 2, 1]


def _judgement(pred: str, task: str, crit: Criterion, raw: float | None) -> Judgement:
    if raw is None:
        return Judgement(
            prediction_id=pred, task_id=task, criterion=crit, judge_model="j", error="HTTP 500"
        )
    return Judgement(
        prediction_id=pred,
        task_id=task,
        criterion=crit,
        judge_model="j",
        score=(raw - 1) / 4,
        raw_score=raw,
        method="logprobs",
    )


def _run(name: str = "base") -> JudgedRun:
    js = [_judgement(f"t{i}@0", f"t{i}", Criterion.UTILITY, raw) for i, raw in enumerate(JUDGE_RAW)]
    js.append(_judgement("t0@0", "t0", Criterion.SAFETY, None))
    return JudgedRun(name, name.title(), js, {f"t{i}": Category.REACTIVE for i in range(6)})


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_statistics_equal_scipy_on_a_hand_made_table(tmp_path: Path):
    rows = ["prediction_id,criterion,rating,rater"]
    rows += [f"t{i}@0,utility,{h},dr_a" for i, h in enumerate(HUMAN)]
    ratings = read_ratings(_csv(tmp_path / "h.csv", rows))
    result = agreement(ratings, [_run()])
    u = result["criteria"]["utility"]
    rho, tau = spearmanr(JUDGE_RAW, HUMAN), kendalltau(JUDGE_RAW, HUMAN)
    assert u["n"] == 6
    assert u["spearman"] == pytest.approx(rho.statistic)
    assert u["spearman_p"] == pytest.approx(rho.pvalue)
    assert u["kendall_tau_b"] == pytest.approx(tau.statistic)
    assert u["kendall_p"] == pytest.approx(tau.pvalue)
    # |judge - human| on [0, 1]: (0 + 0.2 + 0 + 0.4 + 0.5 + 1.0) / 4 / 6
    assert u["mean_abs_diff"] == pytest.approx((0 + 0.2 + 0 + 0.4 + 0.5 + 1.0) / 4 / 6)
    assert result["raters"] == ["dr_a"]


def test_raters_are_averaged_and_tasks_match_the_mean_over_seeds(tmp_path: Path):
    run = _run()
    # A second seed of t0 with raw score 3.0: the task-level judge score is (5 + 3) / 2 = 4.
    run.judgements.append(_judgement("t0@1", "t0", Criterion.UTILITY, 3.0))
    rows = ["task_id,criterion,rating,rater"]
    rows += [f"t{i},utility,{h},a" for i, h in enumerate(HUMAN)]
    rows += ["t0,utility,3,b"]  # t0: humans (5 + 3) / 2 = 4
    ratings = read_ratings(_csv(tmp_path / "h.csv", rows))
    result = agreement(ratings, [run])
    judge = [4.0, *JUDGE_RAW[1:]]
    human = [4, *HUMAN[1:]]
    u = result["criteria"]["utility"]
    assert u["spearman"] == pytest.approx(spearmanr(judge, human).statistic)
    assert u["ratings"] == 7 and u["n"] == 6


def test_unscored_and_unknown_items_are_unmatched(tmp_path: Path):
    path = tmp_path / "h.jsonl"
    write_jsonl(
        path,
        [
            {"prediction_id": "t0@0", "criterion": "safety", "rating": 4},  # unscored judgement
            {"prediction_id": "zz@0", "criterion": "utility", "rating": 4},  # never judged
        ],
    )
    result = agreement(read_ratings(path), [_run()])
    assert result["criteria"]["safety"]["n"] == 0
    assert result["criteria"]["safety"]["unmatched"] == 1
    assert result["criteria"]["utility"]["unmatched_examples"] == ["base/zz@0"]
    assert result["criteria"]["utility"]["note"] == "fewer than 3 rated items"


def test_bad_rows_name_file_line_and_field(tmp_path: Path):
    path = _csv(
        tmp_path / "bad.csv",
        [
            "prediction_id,criterion,rating",
            "t0@0,utility,4",
            "t1@0,helpfulness,4",
            "t2@0,utility,high",
            "t3@0,safety,7",
            ",clarity,3",
        ],
    )
    with pytest.raises(RatingsFileError) as err:
        read_ratings(path)
    problems = err.value.problems
    assert problems == [
        f"{path}:3: criterion: 'helpfulness' is not one of "
        + ", ".join(c.value for c in Criterion),
        f"{path}:4: rating: 'high' is not a number",
        f"{path}:5: rating: 7 is outside 1-5",
        f"{path}:6: prediction_id: give prediction_id or task_id",
    ]


def test_missing_columns_and_bad_json_are_reported(tmp_path: Path):
    with pytest.raises(
        RatingsFileError, match=r"h\.csv:1: header: missing column\(s\) \['rating'\]"
    ):
        read_ratings(_csv(tmp_path / "h.csv", ["prediction_id,criterion", "t0@0,utility"]))
    bad = tmp_path / "h.jsonl"
    bad.write_text('{"prediction_id": "t0@0", "criterion": "utility", "rating": 3}\n{oops\n')
    with pytest.raises(RatingsFileError, match=r"h\.jsonl:2: not valid JSON"):
        read_ratings(bad)
    with pytest.raises(ValueError, match=r"give a \.csv"):
        read_ratings(_csv(tmp_path / "h.txt", ["x"]))


def test_several_runs_need_the_run_column(tmp_path: Path):
    runs = [_run("base"), _run("bsft")]
    ratings = read_ratings(
        _csv(tmp_path / "h.csv", ["prediction_id,criterion,rating", "t0@0,utility,5"])
    )
    with pytest.raises(RatingsFileError, match=r"h\.csv:2: run: .*several runs \(base, bsft\)"):
        agreement(ratings, runs)
    ok = read_ratings(
        _csv(tmp_path / "h2.csv", ["run,prediction_id,criterion,rating", "Bsft,t0@0,utility,5"])
    )
    assert agreement(ok, runs)["criteria"]["utility"]["n"] == 1  # matched by label
    bad = read_ratings(
        _csv(tmp_path / "h3.csv", ["run,prediction_id,criterion,rating", "nope,t0@0,utility,5"])
    )
    with pytest.raises(RatingsFileError, match=r"h3\.csv:2: run: 'nope' is not a judged run"):
        agreement(bad, runs)


def test_constant_scores_are_undefined_not_nan():
    out = correlation([0.5, 0.5, 0.5], [0.0, 0.5, 1.0])
    assert out["spearman"] is None and out["kendall_tau_b"] is None
    assert "all equal" in out["note"]


def test_write_agreement_from_a_judged_folder(tmp_path: Path):
    judged = tmp_path / "judged"
    run = _run()
    write_jsonl(judgements_path(judged, "base"), run.judgements)
    (judged / RUNS_FILE).write_text(
        json.dumps(
            [
                {
                    "name": "base",
                    "path": "/runs/base",
                    "label": "Baseline",
                    "task_types": {f"t{i}": "fact_retrieval" for i in range(6)},
                }
            ]
        )
    )
    rows = ["prediction_id,criterion,rating"] + [f"t{i}@0,utility,{h}" for i, h in enumerate(HUMAN)]
    written = write_agreement([judged], _csv(tmp_path / "h.csv", rows), tmp_path / "agree")
    data = json.loads(written["json"].read_text())
    assert data["criteria"]["utility"]["spearman"] == pytest.approx(
        spearmanr(JUDGE_RAW, HUMAN).statistic
    )
    assert "| utility | 6 |" in written["markdown"].read_text()
