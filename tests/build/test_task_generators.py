"""Task generators: all 13 types from synthetic cases, answers known by construction."""

from __future__ import annotations

from collections import Counter

import pytest

from behaviorsft.build.audit import audit
from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import (
    BASE_SCORE,
    NO_ACTION,
    NOTHING_MISSING,
    PROCEED,
    case_tasks,
    pick_distractors,
)
from behaviorsft.records import PerturbationKind
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_cases
from behaviorsft.taxonomy import Category, TaskType


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@pytest.fixture(scope="module")
def built(kb):
    out = []
    for case in synthesize_cases(420, seed=1, kb=kb):
        rendered = render(case, kb, seed=1)
        out.append((case, rendered, case_tasks(case, rendered, kb, seed=1)))
    return out


@pytest.fixture(scope="module")
def tasks(built):
    return [t for _, _, ts in built for t in ts]


def test_all_13_types_and_about_21_tasks_per_case(tasks, built):
    counts = Counter(t.task_type for t in tasks)
    assert set(counts) == set(TaskType)
    # the paper has 142,496 tasks from 6,876 cases (20.7 per case)
    assert len(tasks) / len(built) >= 20.7


def test_generation_is_deterministic(kb, built):
    case, _rendered, first = built[5]
    again = case_tasks(case, render(case, kb, seed=1), kb, seed=1)
    assert [t.model_dump_json() for t in again] == [t.model_dump_json() for t in first]
    other = case_tasks(case, render(case, kb, seed=2), kb, seed=2)
    assert [t.options for t in other] != [t.options for t in first]


def test_permutation_points_back_to_the_canonical_answer(tasks):
    for t in tasks:
        assert t.option_permutation is not None
        # canonical position 0 holds the right answer before the shuffle
        assert t.answer == "ABCDEF"[t.option_permutation.index(0)]


def test_contexts_lie_inside_the_conversation(built):
    for _, rendered, ts in built:
        n = len(rendered.conversation.turns)
        for t in ts:
            assert 0 <= t.context.turn_start <= t.context.turn_end < n, t.id


def test_fact_retrieval_answers_are_the_recorded_values(built):
    for case, _, ts in built:
        values = {f"{f.name.lower()}" for f in case.findings}
        for t in ts:
            if t.task_type is TaskType.FACT_RETRIEVAL:
                assert any(v in t.question.lower() for v in values)
                number = t.answer_text.split()[0]
                assert any(
                    f.value is not None and float(number) == f.value for f in case.findings
                ), t.id


def test_injected_errors_and_restraint_controls(tasks):
    eec = [t for t in tasks if t.task_type is TaskType.EXPLICIT_ERROR_CORRECTION]
    for t in eec:
        if t.restraint_control:
            assert t.answer_text == PROCEED and t.perturbation is None
        else:
            assert t.perturbation.kind is PerturbationKind.ERROR
            assert t.answer_text != PROCEED and PROCEED in [o.text for o in t.options]
            if t.perturbation.description == "Tenfold dosing error.":
                usual = t.answer_text.rsplit("usual dose is ", 1)[1]
                amount, unit = usual.split(" ", 1)
                assert f"{float(amount) * 10:g} {unit}" in t.context.excerpt
            else:
                assert "allergic" in t.answer_text
    omission = [t for t in tasks if t.task_type is TaskType.OMISSION_DETECTION]
    for t in omission:
        if t.restraint_control:
            assert t.answer_text == NOTHING_MISSING
        else:
            # the missing item is the answer and is absent from the checklist shown
            listed = t.context.excerpt.split("done: ", 1)[1].rstrip(".").split("; ")
            assert t.perturbation.original not in listed
            assert t.answer_text.lower() == t.perturbation.original.lower()
    pna = [t for t in tasks if t.task_type is TaskType.PREDICTIVE_NEXT_ACTION]
    assert any(t.restraint_control and t.answer_text == NO_ACTION for t in pna)


def test_every_proactive_type_has_controls_at_the_documented_ratio(tasks):
    for ttype in TaskType:
        of_type = [t for t in tasks if t.task_type is ttype]
        controls = sum(t.restraint_control for t in of_type)
        if ttype.value in {"fact_retrieval", "timeline_sequence", "ddx_reasoning",
                           "treatment_decision", "reasoning_differential_evolution",
                           "integrity_missing_turn_inference"}:
            assert controls == 0
        else:
            assert of_type[0].category is Category.PROACTIVE
            cases = len({t.case_id for t in of_type})
            # one control per CONTROL_EVERY (= 2) cases, by a hash of the case id
            assert 0.35 < controls / cases < 0.65, (ttype, controls, cases)


def test_scores_follow_the_documented_rule(tasks):
    for t in tasks:
        base = BASE_SCORE[t.task_type]
        low = base - (0.10 if t.restraint_control else 0.0)
        assert low - 1e-9 <= t.behavior_score <= base + 0.10 + 1e-9, t.id


def test_audit_targets_met_on_generated_items(tasks):
    report = audit(tasks, option_only=False)
    for row in report.shortcuts:
        print(row.task_type, f"chance={row.chance:.3f} longest={row.longest:.3f} "
              f"overlap={row.overlap:.3f}")
        assert row.longest <= row.chance + 0.05, row
        assert row.overlap <= row.chance + 0.05, row
    assert not report.duplicate_groups and not report.leaked


def test_pick_distractors_spreads_the_answer_length_rank():
    import random

    rng = random.Random(0)
    correct = "x" * 20
    pool = ["y" * n for n in range(5, 40)]
    longest = 0
    for _ in range(2000):
        picked = pick_distractors(correct, pool, 4, rng, [])
        assert len(picked) == 4 and len(set(picked)) == 4
        longest += all(len(p) <= 20 for p in picked)
    assert 0.12 < longest / 2000 < 0.28  # about 1 in 5, as for a uniform guess
