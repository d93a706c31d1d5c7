"""Defects the second clinician-style review found (session 7; build `cases synth --n 600
--seed 13`, `build --seed 13`), each pinned to its reviewed item."""

from __future__ import annotations

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import case_tasks
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import kb_condition_id, synthesize_case
from behaviorsft.taxonomy import TaskType as T

SEED = 13


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _tasks(kb, index: int):
    case = synthesize_case(index, seed=SEED, kb=kb)
    rendered = render(case, kb, seed=SEED)
    return case, rendered, {t.id: t for t in case_tasks(case, rendered, kb, seed=SEED)}


@pytest.mark.parametrize(
    ("index", "claimed"),
    [
        (19, "bp targets"),  # the plan (turn 21) states the targets and their timeline
        (37, "contact precautions"),  # the plan (turn 21) orders contact precautions
    ],
)
def test_an_item_naming_nothing_checkable_is_never_the_missing_one(kb, index, claimed):
    _, _, tasks = _tasks(kb, index)
    for t in tasks.values():
        if t.task_type in (T.OMISSION_DETECTION, T.STANDARD_OF_CARE) and not t.restraint_control:
            assert claimed not in t.answer_text.lower(), t.id


def test_no_checklist_lists_a_one_word_fragment(kb):
    """13-000163: 'Team note: test; ...' (a KB item cut to its first word by its clause)."""
    for index in range(40):
        _, _, tasks = _tasks(kb, index)
        for t in tasks.values():
            if t.task_type in (T.OMISSION_DETECTION, T.STANDARD_OF_CARE) and t.context.excerpt:
                listed = t.context.excerpt.split(": ", 1)[1].split(". ")[0].split("; ")
                assert "test" not in [x.strip(" .").lower() for x in listed], t.id


def test_the_next_step_is_one_of_this_admission(kb):
    """13-000240: 'individualised decision on elective colectomy' keyed on day 0."""
    found = 0
    for index in range(300):
        case = synthesize_case(index, seed=SEED, kb=kb)
        if kb_condition_id(case) != "diverticulitis":
            continue
        found += 1
        rendered = render(case, kb, seed=SEED)
        for t in case_tasks(case, rendered, kb, seed=SEED):
            if t.task_type is T.PREDICTIVE_NEXT_ACTION:
                assert "colectomy" not in t.answer_text.lower(), t.id
    assert found


def test_no_wrong_next_step_is_a_differentials_own(kb):
    """13-000513: a step of a differential (an echocardiogram) may be due for this patient
    too, so it is never offered as a wrong option."""
    checked = 0
    for index in range(60):
        case, _, tasks = _tasks(kb, index)
        cond = kb.conditions[kb_condition_id(case)]
        theirs = {
            a.lower()
            for d in cond.differentials
            if d.condition_id in kb.conditions
            for a in kb.conditions[d.condition_id].next_actions
        }
        for t in tasks.values():
            if t.task_type is T.PREDICTIVE_NEXT_ACTION:
                wrong = [o.text.lower() for o in t.options if o.label != t.answer]
                assert not theirs & set(wrong), t.id
                checked += 1
    assert checked


def test_hypoglycaemia_glucose_stays_below_54_on_both_meters(kb):
    """Six lint findings of the full build: 'less likely given glucose below 54 mg/dL' beside
    a serum glucose of 54-56 derived from the capillary one."""
    seen = 0
    for index in range(400):
        case = synthesize_case(index, seed=SEED, kb=kb)
        if kb_condition_id(case) != "hypoglycemia":
            continue
        for f in case.findings:
            if f.day == 0 and f.value is not None and "glucose" in f.name.lower():
                assert f.value < 54, (case.id, f.name, f.value)
                seen += 1
    assert seen
