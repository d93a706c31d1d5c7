"""Review round 9 (seed 41): a patient who cannot give a history (grade II hepatic
encephalopathy, confusion, reduced consciousness) no longer gives one fluently; the
relative at the bedside does, in the third person (sources/collateral.py). And the
social-history question is answered by what it asks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from behaviorsft.build.lint import lint_records
from behaviorsft.sources.collateral import fluent_history
from behaviorsft.sources.kb import load_kb
from tests.build.kb_records import as_records, build_item

SEED = 41
HISTORY_ANCHORS = ("symptoms", "symptoms_more", "history", "home_meds", "allergy")


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@pytest.fixture(scope="module")
def items(kb) -> dict[int, Any]:
    return {i: build_item(kb, i, SEED) for i in (25, 64, 552)}


def _found(kb, case: dict[str, Any], conv: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(f.rule, f.turn) for f in lint_records([(1, case)], [(1, conv)], kb=kb)]


@pytest.mark.parametrize("index", [25, 64, 552])
def test_the_relative_gives_the_history_of_a_patient_who_cannot(kb, items, index) -> None:
    """41-000025 (asterixis, disorientation; her husband present), 41-000064 (confused;
    her sister present), 41-000552 (confusion, reduced level of consciousness)."""
    case, rendered, tasks = items[index]
    turns = rendered.conversation.turns
    for anchor in HISTORY_ANCHORS:
        turn = turns[rendered.anchors[anchor]]
        assert turn.role == "family member", (anchor, turn.text)
    # the patient says a few words at most before the observations
    before = turns[: rendered.anchors["vitals"]]
    said = [t.text for t in before if t.role == "patient"]
    assert said and all(not fluent_history(t) for t in said), said
    # the relative is asked, and speaks of the patient in the third person
    history = turns[rendered.anchors["history"]].text
    assert history.startswith(("She ", "He ", "Nothing major"))
    # the facts are the same: each past-history condition of the case is told
    records = as_records(case, rendered, tasks)
    rules = [r for r, _ in _found(kb, records[0], records[1])]
    assert "history-from-incapable-patient" not in rules
    assert "answer-off-question" not in rules


def test_41_000025_history_facts_are_kept(items) -> None:
    _, rendered, _ = items[25]
    turns = rendered.conversation.turns
    history = turns[rendered.anchors["history"]].text
    for item in ("cirrhosis", "constipation", "hypertension"):
        assert item in history
    meds = turns[rendered.anchors["home_meds"]].text
    assert "Lisinopril 10 mg PO once daily" in meds and "Propranolol" in meds


def test_41_000552_what_she_drank_answers_a_question_about_drinking(items) -> None:
    """41-000552 (and 41-000006): asked 'Where are you living ... how do you manage?' the
    patient answered 'I couldn't get enough to drink'."""
    _, rendered, _ = items[552]
    turns = rendered.conversation.turns
    answer = turns[rendered.anchors["exposures"]]
    question = turns[rendered.anchors["exposures"] - 1].text
    assert "couldn't get enough to drink" in answer.text
    assert "living" not in question and "drinking" in question


def test_lint_finds_a_fluent_history_from_a_confused_patient(kb, items) -> None:
    """A hand-made bad record: 41-000025's history given by the patient again, in the
    first person, as it was in round 9."""
    case, rendered, tasks = items[25]
    case_j, conv, _ = as_records(case, rendered, tasks)
    bad = copy.deepcopy(conv)
    at = rendered.anchors["history"]
    bad["turns"][at].update(
        speaker="Patient", role="patient", text="I have cirrhosis, constipation and hypertension."
    )
    assert ("history-from-incapable-patient", at) in _found(kb, case_j, bad)
    # a patient who can give a history may
    lucid = copy.deepcopy(case_j)
    lucid["facts"] = [f for f in lucid["facts"] if not f.startswith("Reports ")]
    lucid["findings"] = [f for f in lucid["findings"] if f["kind"] != "exam"]
    assert "history-from-incapable-patient" not in [r for r, _ in _found(kb, lucid, bad)]


def test_lint_finds_a_social_history_answer_to_another_question(kb, items) -> None:
    """A hand-made bad record: 41-000552's round-9 turns ('Where are you living?' - 'I
    couldn't get enough to drink.')."""
    case, rendered, tasks = items[552]
    case_j, conv, _ = as_records(case, rendered, tasks)
    bad = copy.deepcopy(conv)
    at = rendered.anchors["exposures"]
    bad["turns"][at - 1]["text"] = (
        "Where are you living at the moment, and how do you manage there?"
    )
    bad["turns"][at]["text"] = "I couldn't get enough to drink."
    found = _found(kb, case_j, bad)
    assert ("answer-off-question", at) in found
    assert ("answer-off-question", at) not in _found(kb, case_j, conv)


@pytest.mark.parametrize(("seed", "index"), [(7, 3), (7, 14), (41, 25)])
def test_missing_turn_options_keep_the_speakers_voice(kb, seed, index) -> None:
    """In a history told by a relative, a lay turn's wrong options are the same speaker's:
    the patient's few words ("I don't know... what day is it?") are no wrong option for
    the relative's turn, nor the relative's "She takes ..." for the patient's (7-000003
    and 7-000014 mixed them before)."""
    _, rendered, tasks = build_item(kb, index, seed)
    role_of = {t.text: t.role for t in rendered.conversation.turns}

    def answer(t: Any) -> str:
        return next(o.text for o in t.options if o.label == t.answer)

    lay = [
        t
        for t in tasks
        if t.task_type == "integrity_missing_turn_inference"
        and role_of.get(answer(t)) in ("patient", "family member")
    ]
    assert lay
    for t in lay:
        roles = {role_of[o.text] for o in t.options}
        assert roles == {role_of[answer(t)]}, [o.text for o in t.options]


@pytest.mark.parametrize("index", [17, 125, 384, 506, 576])
def test_round_10_items_take_the_history_from_the_relative(kb, index) -> None:
    """Round 10 (seed 43): 43-000017 (confused), 43-000125 (drowsy but rousable), 43-000384
    (disoriented; a partner present), 43-000506 (confusion, seizure), 43-000576 (tongue
    angioedema, SpO2 88%) gave a fluent first-person history."""
    from behaviorsft.build.conversation import render
    from behaviorsft.sources.synthetic import synthesize_case

    case = synthesize_case(index, seed=43, kb=kb)
    rendered = render(case, kb, seed=43)
    turns = rendered.conversation.turns
    assert all(turns[rendered.anchors[a]].role == "family member" for a in HISTORY_ANCHORS)
    before = turns[: rendered.anchors["vitals"]]
    assert not any(fluent_history(t.text) for t in before if t.role == "patient")


def test_lint_finds_an_exposure_the_relative_gives_as_past_history(kb, items) -> None:
    """history-misfiled covers the relative's words too: 41-000552's 'She couldn't get
    enough to drink.' said in answer to the past-medical-history question."""
    case, rendered, tasks = items[552]
    case_j, conv, _ = as_records(case, rendered, tasks)
    bad = copy.deepcopy(conv)
    at = rendered.anchors["history"]
    bad["turns"][at]["text"] += " She couldn't get enough to drink."
    assert ("history-misfiled", at) in _found(kb, case_j, bad)
    assert ("history-misfiled", at) not in _found(kb, case_j, conv)
