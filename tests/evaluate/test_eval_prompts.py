"""Prompt templates, their parsers, few-shot selection and training targets."""

from __future__ import annotations

import pytest

from behaviorsft import prompts
from behaviorsft.examples import example_tasks
from behaviorsft.prompts import (
    STRATEGIES,
    PromptTemplate,
    behaviorsft_target,
    build_messages,
    parse_answer,
    parse_behavior_label,
    parse_behavior_token,
    select_few_shot,
)
from behaviorsft.records import Task
from behaviorsft.taxonomy import BehaviorLabel
from tests.conftest import make_task_dict

LETTERS = ("A", "B", "C", "D")


# --------------------------------------------------------------------------
# Answer extraction on messy outputs
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the format we ask for
        ("<answer>B</answer>", "B"),
        ("Reasoning first.\n<answer> (C) </answer>", "C"),
        ("<ANSWER>d</ANSWER>", "D"),
        ("<answer>B: No, the patient is allergic.</answer>", "B"),
        ("<answer>B</answer> ... on reflection <answer>B</answer>", "B"),
        # phrases
        ("Answer: (c)", "C"),
        ("The best option is **A**", "A"),
        ("**Final Answer:** D", "D"),
        ("The correct answer is B, not A.", "B"),
        ("Option C is correct because the potassium is high.", "C"),
        ("I would say the answer is (b).", "B"),
        # a bare letter, possibly with its text
        ("B", "B"),
        ("  (D)  ", "D"),
        ("**A**", "A"),
        ("C) Start IV fluids", "C"),
        ("A.", "A"),
        # two letters: ambiguous, invalid
        ("A and C", None),
        ("Answer: A or C", None),
        ("<answer>A, C</answer>", None),
        ("<answer>A</answer> then <answer>C</answer>", None),
        ("answer: B/C", None),
        # none
        ("", None),
        (None, None),
        ("I am not sure.", None),
        ("The answer is a drug interaction.", None),  # the article "a" is not option A
        ("<answer></answer>", None),
        ("<answer>E</answer>", None),  # not one of this task's letters
        ("E", None),
    ],
)
def test_parse_answer_messy_outputs(text: str | None, expected: str | None) -> None:
    assert parse_answer(text, LETTERS) == expected


def test_parse_answer_respects_the_task_letters() -> None:
    assert parse_answer("<answer>F</answer>", "ABCDEF") == "F"
    assert parse_answer("<answer>F</answer>", "ABCD") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<proactive> Warning: allergy. <answer>B</answer>", "<proactive>"),
        ("<reactive> SpO2 89%", "<reactive>"),
        ("text <reactive> then <proactive>", "<reactive>"),  # the first one
        ("<highly_proactive> flag it", "<highly_proactive>"),
        ("proactive without brackets", None),
        (None, None),
    ],
)
def test_parse_behavior_token(text: str | None, expected: str | None) -> None:
    assert parse_behavior_token(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<behavior>primarily_proactive</behavior> <answer>A</answer>", "primarily_proactive"),
        ("<behavior>Highly Reactive</behavior>", "highly_reactive"),
        ("<behaviour>balanced</behaviour>", "balanced"),
        ("Behaviour: primarily-reactive. Option A is ...", "primarily_reactive"),
        ("H_PR", "highly_proactive"),
        ("<primarily_proactive> ...", "primarily_proactive"),
        # the tag decides even when the reasoning names another label
        ("balanced at first sight... <behavior>highly_proactive</behavior>", "highly_proactive"),
        ("<behavior>proactive</behavior>", None),  # not a 5-class label
        ("proactive", None),
        ("", None),
    ],
)
def test_parse_behavior_label(text: str, expected: str | None) -> None:
    got = parse_behavior_label(text)
    assert (got.value if got else None) == expected


# --------------------------------------------------------------------------
# Templates and messages
# --------------------------------------------------------------------------


def test_template_placeholders_are_validated_when_built() -> None:
    with pytest.raises(ValueError, match="do not match declared fields"):
        PromptTemplate("bad", "Hello {name} {other}", frozenset({"name"}))
    t = PromptTemplate("ok", "Hello {name}", frozenset({"name"}))
    assert t.render(name="x") == "Hello x"
    with pytest.raises(ValueError, match=r"missing fields \['name'\]"):
        t.render()
    with pytest.raises(ValueError, match=r"unexpected fields \['typo'\]"):
        t.render(name="x", typo="y")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_renders_task_and_answer_format(strategy: str) -> None:
    task = example_tasks()[2]
    msgs = build_messages(task, "CONTEXT-TEXT", strategy)
    assert [m.role for m in msgs] == ["system", "user"]
    user = msgs[-1].content
    assert "CONTEXT-TEXT" in user
    assert task.question in user
    for o in task.options:
        assert f"{o.label}. {o.text}" in user
    assert "<answer>X</answer>" in user
    assert "A, B, C, D" in user
    # deterministic: the trainer relies on the same task rendering the same way
    assert build_messages(task, "CONTEXT-TEXT", strategy) == msgs


def test_strategies_differ_as_the_paper_describes() -> None:
    reactive, _, proactive, _ = example_tasks()
    user = {s: build_messages(proactive, "ctx", s)[-1].content for s in STRATEGIES}
    assert "step by step" in user["cot"]
    assert "proactive response" in user["explicit"]
    assert "reactive response" in build_messages(reactive, "ctx", "explicit")[-1].content
    assert "<reactive>" in user["behaviorsft"] and "<proactive>" in user["behaviorsft"]
    # behaviour-classification variants: steps in the order their names give
    order = {
        "bt_oc_op": ["<behavior>", "each option", "<answer>"],
        "bt_op": ["<behavior>", "<answer>"],
        "bt_bc_oc_op": ["<behavior>", "how reactive or proactive", "each option", "<answer>"],
        "bt_bc_op": ["<behavior>", "how reactive or proactive", "<answer>"],
        "bc_bt_oc_op": ["how reactive or proactive", "<behavior>", "each option", "<answer>"],
    }
    for strategy, marks in order.items():
        positions = [user[strategy].index(m) for m in marks]
        assert positions == sorted(positions), strategy
    assert "each option" not in user["bt_op"]
    assert "how reactive" not in user["bt_oc_op"]


def test_unknown_strategy_and_misused_examples_are_errors() -> None:
    task = example_tasks()[0]
    with pytest.raises(ValueError, match="unknown strategy 'zeroshot'; choose one of"):
        build_messages(task, "", "zeroshot")
    with pytest.raises(ValueError, match="only used by 'few_shot'"):
        build_messages(task, "", "cot", examples=[(example_tasks()[1], "")])


def _pool() -> list[Task]:
    pool = []
    for i in range(10):
        pool.append(
            Task.model_validate(
                make_task_dict(id=f"train-{i}", case_id=f"case-{i % 4}", split="train")
            )
        )
    pool.append(
        Task.model_validate(
            make_task_dict(
                id="other-type",
                case_id="case-9",
                task_type="fact_retrieval",
                behavior_score=0.1,
                perturbation=None,
                split="train",
            )
        )
    )
    return pool


def test_few_shot_selection_same_type_other_case_seeded() -> None:
    task = Task.model_validate(make_task_dict(id="q", case_id="case-0", split="test"))
    pool = _pool()
    picked = select_few_shot(task, pool, k=3, seed=0)
    assert len(picked) == 3
    assert all(t.task_type == task.task_type and t.case_id != "case-0" for t in picked)
    assert select_few_shot(task, list(reversed(pool)), k=3, seed=0) == picked  # order-free
    assert any(select_few_shot(task, pool, k=3, seed=s) != picked for s in range(1, 6))
    assert len(select_few_shot(task, pool[:2], k=3, seed=0)) == 1  # only train-1 qualifies


def test_few_shot_messages_show_solved_examples_first() -> None:
    task = Task.model_validate(make_task_dict(id="q", case_id="case-0", split="test"))
    examples = [(t, f"ctx of {t.id}") for t in select_few_shot(task, _pool(), seed=1)]
    msgs = build_messages(task, "main ctx", "few_shot", examples=examples)
    assert [m.role for m in msgs] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    for (ex, ctx), user, reply in zip(examples, msgs[1:-1:2], msgs[2:-1:2], strict=True):
        assert ctx in user.content
        assert reply.content == f"<answer>{ex.answer}</answer>"
    assert "main ctx" in msgs[-1].content


# --------------------------------------------------------------------------
# Training targets
# --------------------------------------------------------------------------


def test_behaviorsft_target_modes_and_inventories() -> None:
    reactive, balanced, proactive, _ = example_tasks()
    assert behaviorsft_target(proactive, mode="behavior") == (
        f"<proactive> {proactive.rationale} <answer>C</answer>"
    )
    assert behaviorsft_target(reactive, mode="behavior").startswith("<reactive> ")
    # balanced with score 0.55 -> <proactive> by the taxonomy rule
    assert behaviorsft_target(balanced, mode="behavior").startswith("<proactive> ")
    assert behaviorsft_target(proactive, mode="general") == (
        f"{proactive.rationale} <answer>C</answer>"
    )
    fine = behaviorsft_target(proactive, mode="behavior", inventory="fine")
    assert fine.startswith("<highly_proactive> ")
    # the target parses back to its own token and answer
    assert parse_behavior_token(fine) == "<highly_proactive>"
    assert parse_answer(fine, "ABCD") == "C"
    assert parse_behavior_label(fine) is BehaviorLabel.HIGHLY_PROACTIVE
    no_rationale = proactive.model_copy(update={"rationale": ""})
    assert behaviorsft_target(no_rationale, mode="behavior") == "<proactive> <answer>C</answer>"
    with pytest.raises(ValueError, match="unknown target mode"):
        behaviorsft_target(proactive, mode="other")  # type: ignore[arg-type]


def test_explicit_instruction_follows_the_task_token_not_the_inventory() -> None:
    task = Task.model_validate(make_task_dict(token_inventory="fine", behavior_token=None))
    assert task.behavior_token == "<highly_proactive>"
    assert prompts.binary_token_of(task) == "<proactive>"
    assert "proactive response" in build_messages(task, "", "explicit")[-1].content
