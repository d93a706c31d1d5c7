"""Scoring functions against values a reader can check on paper."""

from __future__ import annotations

import math
import random

import pytest
from sklearn.metrics import f1_score

from behaviorsft.evaluate.metrics import (
    INVALID,
    Scored,
    accuracy,
    across_seeds,
    behavior_label_scores,
    bootstrap_ci,
    category_averages,
    false_alarm_rate,
    invalid_rate,
    macro_f1,
    mean_std,
    miss_rate,
    overall_average,
    per_class_f1,
    safety_scores,
    score_run,
)
from behaviorsft.records import Prediction, Task
from behaviorsft.taxonomy import BehaviorLabel, Category, TaskType
from tests.conftest import make_task_dict

# --------------------------------------------------------------------------
# Macro F1, accuracy, invalid rate
# --------------------------------------------------------------------------

GOLD = ["A", "A", "B", "B", "C"]
PRED = ["A", "B", "B", None, "A"]


def test_macro_f1_by_hand() -> None:
    # A: TP 1, gold 2, predicted 2 -> 2*1/(2+2) = 0.5
    # B: TP 1, gold 2, predicted 2 (the unreadable answer predicts nothing) -> 0.5
    # C: TP 0 -> 0
    assert per_class_f1(GOLD, PRED) == {"A": 0.5, "B": 0.5, "C": 0.0}
    assert macro_f1(GOLD, PRED) == pytest.approx(1 / 3)
    assert accuracy(GOLD, PRED) == pytest.approx(2 / 5)
    assert invalid_rate(PRED) == pytest.approx(1 / 5)


def test_unreadable_answer_is_a_miss_not_a_class() -> None:
    # Dropping the unreadable row would give B a perfect recall (F1 2/3 instead of 1/2).
    assert per_class_f1(["B", "B"], ["B", None]) == {"B": pytest.approx(2 / 3)}
    assert INVALID not in per_class_f1(GOLD, PRED)


def test_class_only_predicted_counts_with_f1_zero() -> None:
    # D is never gold but predicted once: it is a class of the macro average.
    assert per_class_f1(["A", "A"], ["A", "D"]) == {"A": pytest.approx(2 / 3), "D": 0.0}
    assert macro_f1(["A", "A"], ["A", "D"]) == pytest.approx(1 / 3)


def test_empty_inputs_have_no_score() -> None:
    assert macro_f1([], []) is None
    assert accuracy([], []) is None
    assert invalid_rate([]) is None
    with pytest.raises(ValueError, match="gold has 1 items but pred has 0"):
        macro_f1(["A"], [])


def test_macro_f1_equals_sklearn_with_sentinel_excluded() -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 30)
        gold = [rng.choice("ABCD") for _ in range(n)]
        pred = [rng.choice(["A", "B", "C", "D", "E", None]) for _ in range(n)]
        labels = sorted(set(gold) | {p for p in pred if p is not None})
        expected = f1_score(
            gold,
            [INVALID if p is None else p for p in pred],
            labels=labels,
            average="macro",
            zero_division=0,
        )
        assert macro_f1(gold, pred) == pytest.approx(expected)


# --------------------------------------------------------------------------
# Averages: the rule that matches the paper
# --------------------------------------------------------------------------


def test_category_and_overall_average_by_hand() -> None:
    per_type = {
        TaskType.FACT_RETRIEVAL: 0.9,
        TaskType.TIMELINE_SEQUENCE: 0.7,
        TaskType.DDX_REASONING: 0.8,
        TaskType.TREATMENT_DECISION: 0.6,
        TaskType.REASONING_DIFFERENTIAL_EVOLUTION: 0.5,
        TaskType.INTEGRITY_MISSING_TURN_INFERENCE: 0.3,
        TaskType.OMISSION_DETECTION: 0.2,
        TaskType.CONSISTENCY_CHECK: 0.4,
    }
    cats = category_averages(per_type)
    assert cats[Category.REACTIVE] == pytest.approx(0.75)  # (.9+.7+.8+.6)/4
    assert cats[Category.BALANCED] == pytest.approx(0.4)  # (.5+.3)/2
    assert cats[Category.PROACTIVE] == pytest.approx(0.3)  # only the two types present
    assert overall_average(per_type) == pytest.approx(4.4 / 8)  # over types, not categories
    assert category_averages({})[Category.REACTIVE] is None


# Paper Table 7 (Gemini-2.5 Pro), rows in table order, then the printed
# reactive / balanced / proactive / overall averages.
TABLE7 = {
    "zero_shot": (
        [100.00, 99.10, 95.33, 94.77, 98.59, 98.46]
        + [94.29, 97.18, 96.70, 95.32, 81.57, 96.34, 77.88],
        (97.30, 98.53, 91.33, 94.27),
    ),
    "few_shot": (
        [100.00, 78.65, 93.99, 93.88, 82.33, 98.05]
        + [96.34, 97.24, 95.11, 96.80, 90.10, 94.23, 81.55],
        (91.63, 90.19, 93.05, 92.17),
    ),
}
# The paper's proactive rows are printed in another order than TABLE_ORDER.
PAPER_PROACTIVE_ORDER = [
    TaskType.CONSISTENCY_CHECK,
    TaskType.DATA_CONFLICT_RESOLUTION,
    TaskType.INTERPRETATION_CONFLICT,
    TaskType.STANDARD_OF_CARE,
    TaskType.OMISSION_DETECTION,
    TaskType.EXPLICIT_ERROR_CORRECTION,
    TaskType.PREDICTIVE_NEXT_ACTION,
]
PAPER_ROWS = [
    TaskType.FACT_RETRIEVAL,
    TaskType.TIMELINE_SEQUENCE,
    TaskType.DDX_REASONING,
    TaskType.TREATMENT_DECISION,
    TaskType.REASONING_DIFFERENTIAL_EVOLUTION,
    TaskType.INTEGRITY_MISSING_TURN_INFERENCE,
    *PAPER_PROACTIVE_ORDER,
]


@pytest.mark.parametrize("column", sorted(TABLE7))
def test_averages_reproduce_paper_table7(column: str) -> None:
    """Worked check of how the paper computes "Average" (see docs/evaluation.md).

    Category average = unweighted mean of its task types; overall = unweighted
    mean of all 13 types. Both reproduce the printed values to rounding; the
    mean of the three category averages does not (95.72 vs 94.27 for ZS).
    """
    rows, (reactive, balanced, proactive, overall) = TABLE7[column]
    per_type = dict(zip(PAPER_ROWS, rows, strict=True))
    cats = category_averages(per_type)
    assert cats[Category.REACTIVE] == pytest.approx(reactive, abs=0.006)
    assert cats[Category.BALANCED] == pytest.approx(balanced, abs=0.006)
    assert cats[Category.PROACTIVE] == pytest.approx(proactive, abs=0.006)
    assert overall_average(per_type) == pytest.approx(overall, abs=0.006)
    mean_of_categories = sum(v for v in cats.values() if v is not None) / 3
    assert abs(mean_of_categories - overall) > 0.5


# --------------------------------------------------------------------------
# Behaviour labels
# --------------------------------------------------------------------------


def test_behavior_label_scores_by_hand() -> None:
    L = BehaviorLabel
    gold = [
        L.HIGHLY_REACTIVE,
        L.PRIMARILY_REACTIVE,
        L.BALANCED,
        L.PRIMARILY_PROACTIVE,
        L.HIGHLY_PROACTIVE,
    ]
    pred = [L.HIGHLY_REACTIVE, L.HIGHLY_REACTIVE, L.BALANCED, L.HIGHLY_PROACTIVE, None]
    s = behavior_label_scores(gold, pred)
    # five: H_RE 2*1/(1+2)=2/3, P_RE 0, BA 1, P_PR 0, H_PR 0 (its one prediction is wrong)
    assert s["five"]["per_class"] == {
        "highly_reactive": pytest.approx(2 / 3),
        "primarily_reactive": 0.0,
        "balanced": 1.0,
        "primarily_proactive": 0.0,
        "highly_proactive": 0.0,
    }
    assert s["five"]["macro_f1"] == pytest.approx(1 / 3)
    # three: reactive 1, balanced 1, proactive TP1 gold2 pred1 -> 2/3
    assert s["three"]["per_class"] == {
        "reactive": 1.0,
        "balanced": 1.0,
        "proactive": pytest.approx(2 / 3),
    }
    assert s["three"]["macro_f1"] == pytest.approx(8 / 9)
    # binary: non_proactive 1 (balanced counts as non-proactive), proactive 2/3
    assert s["binary"]["per_class"] == {"proactive": pytest.approx(2 / 3), "non_proactive": 1.0}
    assert s["binary"]["macro_f1"] == pytest.approx(5 / 6)


# --------------------------------------------------------------------------
# False alarms and misses
# --------------------------------------------------------------------------


def _item(
    task_type: TaskType,
    gold: str,
    pred: str | None,
    *,
    control: bool = False,
    perturbed: bool = False,
    task_id: str = "t",
    seed: int = 0,
) -> Scored:
    return Scored(
        task_id=task_id,
        seed=seed,
        task_type=task_type,
        gold=gold,
        pred=pred,
        restraint_control=control,
        perturbed=perturbed,
        gold_label=BehaviorLabel.HIGHLY_PROACTIVE,
        pred_label=None,
        gold_token="<proactive>",
        pred_token=None,
        p_proactive=None,
    )


def test_false_alarm_and_miss_rates_by_hand() -> None:
    od, ee = TaskType.OMISSION_DETECTION, TaskType.EXPLICIT_ERROR_CORRECTION
    items = [
        # controls (gold D = "no issue"): D is restraint, A is a false alarm, None raised nothing
        _item(od, "D", "D", control=True),
        _item(od, "D", "A", control=True),
        _item(ee, "D", None, control=True),
        # injected issues: C and None miss it
        _item(ee, "B", "B", perturbed=True),
        _item(ee, "B", "C", perturbed=True),
        _item(od, "B", None, perturbed=True),
        _item(od, "B", "B", perturbed=True),
        # not a proactive type: ignored by both rates
        _item(TaskType.FACT_RETRIEVAL, "B", "A", perturbed=True),
    ]
    assert false_alarm_rate(items) == {"rate": pytest.approx(1 / 3), "n": 3, "count": 1}
    assert miss_rate(items) == {"rate": pytest.approx(2 / 4), "n": 4, "count": 2}
    per_type = safety_scores(items)["per_type"]
    assert per_type["omission_detection"]["false_alarm"]["rate"] == pytest.approx(1 / 2)
    assert per_type["explicit_error_correction"]["miss"]["rate"] == pytest.approx(1 / 2)
    assert false_alarm_rate([])["rate"] is None


# --------------------------------------------------------------------------
# Seeds and bootstrap
# --------------------------------------------------------------------------


def test_mean_std_and_across_seeds() -> None:
    assert mean_std([0.5, 0.7]) == (pytest.approx(0.6), pytest.approx(math.sqrt(0.02)))
    assert mean_std([0.5]) == (0.5, None)
    assert mean_std([]) == (None, None)
    mean, std = across_seeds([{"a": 0.5, "b": {"c": 1.0}}, {"a": 0.7, "b": {"c": None}}])
    assert mean == {"a": pytest.approx(0.6), "b": {"c": 1.0}}
    assert std == {"a": pytest.approx(math.sqrt(0.02)), "b": {"c": None}}


def _mixed_items(n_per_type: int = 20, seeds: tuple[int, ...] = (0,)) -> list[Scored]:
    rng = random.Random(3)
    items = []
    for t in (TaskType.FACT_RETRIEVAL, TaskType.OMISSION_DETECTION):
        for i in range(n_per_type):
            gold = "ABCD"[i % 4]
            for seed in seeds:
                pred = gold if rng.random() < 0.7 else "ABCD"[(i + 1) % 4]
                items.append(_item(t, gold, pred, task_id=f"{t.value}-{i}", seed=seed))
    return items


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate() -> None:
    items = _mixed_items(seeds=(0, 1))
    ci = bootstrap_ci(items, n_resamples=300, seed=1)
    assert ci == bootstrap_ci(items, n_resamples=300, seed=1)
    assert ci != bootstrap_ci(items, n_resamples=300, seed=2)
    point = (
        sum(
            macro_f1(
                [s.gold for s in items if s.task_type is t and s.seed == seed],
                [s.pred for s in items if s.task_type is t and s.seed == seed],
            )
            or 0
            for t in (TaskType.FACT_RETRIEVAL, TaskType.OMISSION_DETECTION)
            for seed in (0, 1)
        )
        / 4
    )
    low, high = ci["overall"]
    assert low < point < high
    assert set(ci["per_type"]) == {"fact_retrieval", "omission_detection"}
    assert set(ci["per_category"]) == {"reactive", "proactive"}


def test_bootstrap_of_a_perfect_model_is_a_point() -> None:
    items = [_item(TaskType.FACT_RETRIEVAL, g, g, task_id=str(i)) for i, g in enumerate("ABCDAB")]
    ci = bootstrap_ci(items, n_resamples=50)
    assert ci["overall"] == [1.0, 1.0]
    assert ci["accuracy"] == [1.0, 1.0]
    assert bootstrap_ci([], n_resamples=50) == {}


# --------------------------------------------------------------------------
# A whole run
# --------------------------------------------------------------------------


def _task(i: int, answer: str, **kw: object) -> Task:
    return Task.model_validate(make_task_dict(id=f"t{i}", answer=answer, **kw))


def _pred(task: Task, seed: int, answer: str | None, *, error: str | None = None) -> Prediction:
    if error:
        return Prediction(
            task_id=task.id, model="m/x", strategy="zero_shot", seed=seed, error=error
        )
    return Prediction(
        task_id=task.id,
        model="m/x",
        strategy="zero_shot",
        seed=seed,
        raw_output=f"<answer>{answer}</answer>" if answer else "??",
        parsed_answer=answer,
        valid=answer is not None,
        correct=answer == task.answer,
    )


def test_score_run_excludes_errors_and_averages_seeds() -> None:
    tasks = {t.id: t for t in (_task(0, "A"), _task(1, "B"), _task(2, "C"))}
    t0, t1, t2 = tasks.values()
    preds = [
        # seed 0: all right -> F1 1.0
        _pred(t0, 0, "A"),
        _pred(t1, 0, "B"),
        _pred(t2, 0, "C"),
        # seed 1: t1 failed (infrastructure, not scored), t2 unreadable (scored as wrong)
        _pred(t0, 1, "A"),
        _pred(t1, 1, None, error="HTTP 503"),
        _pred(t2, 1, None),
    ]
    m = score_run(tasks, preds, strategy="zero_shot", n_bootstrap=0)
    assert m["counts"] == {"predictions": 6, "scored": 5, "errors": 1, "invalid": 1, "tasks": 3}
    # seed 1 scores only t0 and t2: A right, C missed -> classes A (1.0) and C (0.0)
    assert m["per_seed"]["1"]["per_type"]["explicit_error_correction"]["macro_f1"] == 0.5
    assert m["mean"]["overall"]["macro_f1"] == pytest.approx(0.75)
    assert m["std"]["overall"]["macro_f1"] == pytest.approx(math.sqrt(0.125))
    assert m["mean"]["overall"]["invalid_rate"] == pytest.approx(0.25)  # (0 + 1/2) / 2
    assert m["ci"] == {}


def test_score_run_rejects_predictions_of_another_bench() -> None:
    task = _task(0, "A")
    stray = _pred(_task(9, "A"), 0, "A")
    with pytest.raises(ValueError, match="1 prediction\\(s\\) refer to tasks not in the bench"):
        score_run({task.id: task}, [stray], n_bootstrap=0)
