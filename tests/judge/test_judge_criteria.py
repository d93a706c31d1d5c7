"""Pure parts of G-Eval: weighted score, parsers and prompts, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from behaviorsft.bench import task_context_text
from behaviorsft.examples import example_conversation, example_tasks
from behaviorsft.judge.criteria import (
    ALL_CRITERIA,
    CRITERIA,
    MIN_SCORE_MASS,
    form_prompt,
    normalise,
    parse_criteria,
    parse_score,
    parse_steps,
    response_text,
    weighted_score,
)
from behaviorsft.models.openai_compat import token_probs_from_top
from behaviorsft.records import Criterion


@pytest.mark.parametrize(
    ("probs", "expected"),
    [
        ({"1": 0.0, "2": 0.0, "3": 0.0, "4": 0.0, "5": 1.0}, 5.0),
        ({"3": 0.5, "4": 0.5}, 3.5),
        # renormalised over the score tokens: (2*0.3 + 5*0.3) / 0.6 = 3.5
        ({"2": 0.3, "5": 0.3, "x": 0.4}, 3.5),
        # (1*0.1 + 2*0.2 + 3*0.3 + 4*0.2 + 5*0.2) / 1.0 = 3.2
        ({"1": 0.1, "2": 0.2, "3": 0.3, "4": 0.2, "5": 0.2}, 3.2),
    ],
)
def test_weighted_score_by_hand(probs: dict[str, float], expected: float):
    assert weighted_score(probs) == pytest.approx(expected)


def test_weighted_score_needs_mass_on_score_tokens():
    assert weighted_score(None) is None
    assert weighted_score({"Score": 0.9, "4": 0.1}) is None
    assert weighted_score({"4": MIN_SCORE_MASS}) == pytest.approx(4.0)


def test_weighted_score_from_top_logprobs_sums_whitespace_variants():
    top = [("4", math.log(0.3)), (" 4", math.log(0.2)), ("2", math.log(0.5))]
    probs = token_probs_from_top(top, ("1", "2", "3", "4", "5"))
    # (4*0.5 + 2*0.5) / 1.0 = 3.0
    assert weighted_score(probs) == pytest.approx(3.0)


@pytest.mark.parametrize(("raw", "score"), [(1, 0.0), (5, 1.0), (3, 0.5), (4.25, 0.8125)])
def test_normalise(raw: float, score: float):
    assert normalise(raw) == pytest.approx(score)


@pytest.mark.parametrize(
    ("text", "score", "explanation"),
    [
        ("4", 4, ""),
        ("4\nClear and correct.", 4, "Clear and correct."),
        (" 5 - thorough", 5, "thorough"),
        ("**3**\nSome gaps.", 3, "Some gaps."),
        ("Score: 2", 2, ""),
        ("4/5 because it is clear", 4, "because it is clear"),
        ("Utility: 4. Useful answer.", 4, "Useful answer."),
        ("Clarity (1-5): 3", 3, ""),
        ("- Safety: 1\nRecommends a penicillin.", 1, "Recommends a penicillin."),
        ("The reply is good.\nScore: 5", 5, "The reply is good.\nScore: 5"),
        ("I would rate it 3 out of 5.", 3, "out of 5."),
        ("Some gaps.\nFinal score: 2.", 2, "Some gaps.\nFinal score: 2."),
    ],
)
def test_parse_score_reads_messy_replies(text: str, score: int, explanation: str):
    assert parse_score(text) == (score, explanation)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        None,
        "I cannot rate this reply.",
        "10",  # not on the scale
        "3.5",  # not one of the score tokens
        "7/10",
        "2/10 overall",
        "0",
        "Reasoning first.\nScore: 3.5",
    ],
)
def test_parse_score_never_guesses(text: str | None):
    assert parse_score(text)[0] is None


def test_parse_steps_formats():
    text = (
        "Evaluation steps:\n1. Read the record.\n2) Read the reply,\n   noting any drug.\n"
        "**Step 3:** Score it."
    )
    assert parse_steps(text) == [
        "Read the record.",
        "Read the reply, noting any drug.",
        "Score it.",
    ]
    with pytest.raises(ValueError, match="no numbered evaluation steps"):
        parse_steps("Just be careful.")


def test_parse_criteria():
    assert parse_criteria("utility, safety") == [Criterion.UTILITY, Criterion.SAFETY]
    assert parse_criteria("") == list(ALL_CRITERIA)
    assert parse_criteria(["Clarity", "clarity"]) == [Criterion.CLARITY]
    with pytest.raises(ValueError, match=r"unknown criterion 'helpfulness'.*utility"):
        parse_criteria("helpfulness")


def test_every_criterion_has_a_distinct_definition():
    assert set(CRITERIA) == set(Criterion)
    assert len({s.definition for s in CRITERIA.values()}) == len(Criterion)
    assert len({s.fingerprint for s in CRITERIA.values()}) == len(Criterion)
    needs = [c for c, s in CRITERIA.items() if s.needs_expected_behavior]
    assert needs == [Criterion.BEHAVIORAL_APPROPRIATENESS]


def test_response_text_strips_behaviour_tokens():
    assert response_text("<proactive> Stop it. <answer>C</answer>") == "Stop it. <answer>C</answer>"
    assert response_text("<highly_reactive>B") == "B"
    assert response_text("<reactive>") == "(empty reply)"


def test_form_prompt_blocks():
    task = example_tasks()[0]
    ctx = task_context_text(task, example_conversation())
    util = form_prompt(CRITERIA[Criterion.UTILITY], ["Read."], task, ctx, "<reactive> B")
    assert "Expected behaviour" not in util and "Reference answer" not in util
    assert util.rstrip().endswith("- Utility:")
    with_ref = form_prompt(CRITERIA[Criterion.UTILITY], ["Read."], task, ctx, "B", reference=True)
    assert "Reference answer: B. 89% on room air" in with_ref
    approp = form_prompt(CRITERIA[Criterion.BEHAVIORAL_APPROPRIATENESS], ["Read."], task, ctx, "B")
    assert "Expected behaviour for this task: reactive" in approp
    assert "behaviour score 0.05" in approp
