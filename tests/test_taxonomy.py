"""Taxonomy mappings, each checkable against paper Section 2, Section 3.2 and Table 3."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from behaviorsft import taxonomy as tx
from behaviorsft.taxonomy import BehaviorLabel as L
from behaviorsft.taxonomy import Category, TaskType


def test_thirteen_types_in_paper_categories():
    assert len(TaskType) == 13
    assert [t.value for t in tx.types_in("reactive")] == [
        "fact_retrieval",
        "timeline_sequence",
        "ddx_reasoning",
        "treatment_decision",
    ]
    assert [t.value for t in tx.types_in("balanced")] == [
        "reasoning_differential_evolution",
        "integrity_missing_turn_inference",
    ]
    assert len(tx.types_in(Category.PROACTIVE)) == 7
    assert tx.category_of("omission_detection") is Category.PROACTIVE
    assert set(tx.TASK_DESCRIPTIONS) == set(TaskType)


def test_table2_short_names():
    assert tx.SHORT_NAMES[TaskType.REASONING_DIFFERENTIAL_EVOLUTION] == "reasoning_diff_evolution"
    assert tx.SHORT_NAMES[TaskType.INTEGRITY_MISSING_TURN_INFERENCE] == "integrity_missing_turn"
    assert tx.SHORT_NAMES[TaskType.FACT_RETRIEVAL] == "fact_retrieval"


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (0.0, L.HIGHLY_REACTIVE),
        (0.19999, L.HIGHLY_REACTIVE),
        (0.2, L.PRIMARILY_REACTIVE),
        (0.39, L.PRIMARILY_REACTIVE),
        (0.4, L.BALANCED),
        (0.5, L.BALANCED),
        (0.59999, L.BALANCED),
        (0.6, L.PRIMARILY_PROACTIVE),
        (0.79, L.PRIMARILY_PROACTIVE),
        (0.8, L.HIGHLY_PROACTIVE),
        (1.0, L.HIGHLY_PROACTIVE),
        (1, L.HIGHLY_PROACTIVE),
    ],
)
def test_score_to_label_bins(score, label):
    assert tx.label_for_score(score) is label


@pytest.mark.parametrize("bad", [-0.01, 1.0001, math.nan, math.inf, "0.5", None, True])
def test_bad_scores_rejected(bad):
    with pytest.raises(ValueError, match="behaviour score"):
        tx.label_for_score(bad)


def test_score_ranges():
    assert tx.score_range("balanced") == (0.4, 0.6)
    assert tx.score_range(L.HIGHLY_REACTIVE) == (0.0, 0.2)
    assert tx.score_range(L.HIGHLY_PROACTIVE) == (0.8, 1.0)


@given(st.floats(min_value=0.0, max_value=1.0))
def test_label_agrees_with_its_range(score):
    low, high = tx.score_range(tx.label_for_score(score))
    assert low <= score < high or (score == 1.0 == high)


def test_three_class_and_binary_views():
    assert [tx.three_class(lbl) for lbl in L] == [
        "reactive",
        "reactive",
        "balanced",
        "proactive",
        "proactive",
    ]
    # Table 3: binary is proactive vs non-proactive, balanced is non-proactive.
    assert [tx.binary(lbl) for lbl in L] == [
        "non_proactive",
        "non_proactive",
        "non_proactive",
        "proactive",
        "proactive",
    ]
    assert tx.LABEL_ABBREVIATIONS[L.PRIMARILY_PROACTIVE] == "P_PR"


@pytest.mark.parametrize(
    ("task_type", "score", "token"),
    [
        ("fact_retrieval", 0.05, "<reactive>"),
        ("treatment_decision", 0.7, "<reactive>"),  # reactive type whatever the score
        ("consistency_check", 0.1, "<proactive>"),  # proactive type whatever the score
        ("predictive_next_action", 0.95, "<proactive>"),
        ("reasoning_differential_evolution", 0.45, "<reactive>"),
        ("reasoning_differential_evolution", 0.5, "<proactive>"),
        ("integrity_missing_turn_inference", 0.3, "<reactive>"),
        ("integrity_missing_turn_inference", 0.85, "<proactive>"),
    ],
)
def test_token_rule(task_type, score, token):
    assert tx.behavior_token(task_type, score) == token


def test_fine_inventory():
    assert tx.behavior_token("fact_retrieval", 0.65, "fine") == "<primarily_proactive>"
    assert tx.all_tokens("fine") == (
        "<highly_reactive>",
        "<primarily_reactive>",
        "<balanced>",
        "<primarily_proactive>",
        "<highly_proactive>",
    )
    assert tx.all_tokens() == ("<reactive>", "<proactive>")
    assert tx.token_inventory_of("<balanced>") == "fine"
    with pytest.raises(ValueError, match="unknown behaviour token"):
        tx.token_inventory_of("<maybe>")
    with pytest.raises(ValueError, match="unknown token inventory"):
        tx.behavior_token("fact_retrieval", 0.1, "ternary")  # type: ignore[arg-type]


def test_autonomy_levels_are_the_six_of_table_10():
    levels = tx.AUTONOMY_LEVELS
    assert [lv.level for lv in levels] == [0, 1, 2, 3, 4, 5]
    assert levels[3].name.startswith("Conditional Automation")
    assert all(lv.agent_role and lv.clinician_role for lv in levels)
