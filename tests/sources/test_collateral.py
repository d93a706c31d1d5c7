"""Who gives the history (sources/collateral.py): when the patient cannot, and the
relative's third-person wording of every history item the knowledge base can produce."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from behaviorsft.build import ward_turns as wt
from behaviorsft.sources import collateral
from behaviorsft.sources.history import is_exposure
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.wording import SPOKEN, complaint, history_item, spoken_history

# A subject pronoun followed by a verb in the first-person/plural form.
_DISAGREES = re.compile(
    r"\b(?:she|he|patient)\s+(?:have|haven't|do|don't|were|are|am|take|use|live|smoke|"
    r"drink|inject|need|get)\b",
    re.I,
)
_FIRST_PERSON = re.compile(r"\b(?:I|me|my|I'm|I've|myself)\b")
_MALE = re.compile(r"\b(?:he|him|his)\b", re.I)
_FEMALE = re.compile(r"\b(?:she|her|hers)\b", re.I)


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _history_items(kb) -> list[str]:
    """Every history item a KB condition's risk factors give (medicines named as taken)."""
    meds = [(d.name, d.drug_class or "") for d in kb.drugs.values()]
    items: set[str] = set()
    for cond in kb.conditions.values():
        for risk in cond.risk_factors:
            for seed in range(3):  # an "A or B" left is drawn: see several draws
                item = history_item(risk, random.Random(seed), meds)
                if item is not None:
                    items.add(item)
    return sorted(items)


def _grammatical(text: str, sex: str) -> list[str]:
    problems = []
    if "{" in text or "}" in text:
        problems.append("template left")
    if _DISAGREES.search(text):
        problems.append(f"agreement: {_DISAGREES.search(text)}")  # type: ignore[union-attr]
    # the relative speaks of the patient; "I'm not sure she ..." is the relative's own doubt
    if _FIRST_PERSON.search(re.sub(r"\bI'm not sure\b", "", text)):
        problems.append("first person")
    if _MALE.search(text) if sex == "female" else _FEMALE.search(text):
        problems.append("pronoun of the other sex")
    for sentence in re.split(r"(?<=[a-z0-9)][.?!])\s+", text):  # (not after "C." of C. diff)
        if not (sentence[:1].isupper() and sentence.endswith((".", "?", "!"))):
            problems.append(f"not a sentence: {sentence!r}")
    return problems


def test_every_item_the_patient_words_has_a_third_person_wording() -> None:
    assert set(SPOKEN) <= set(collateral.THIRD)


@pytest.mark.parametrize("sex", ["female", "male"])
def test_the_relatives_history_is_grammatical_for_every_kb_history_item(kb, sex) -> None:
    bad = {}
    for item in _history_items(kb):
        said = collateral.said_of([item], sex, "daughter")
        problems = _grammatical(said, sex)
        if problems:
            bad[item] = (said, problems)
        # the same fact: the words the patient would use for a condition are kept
        first = spoken_history([item])
        if first.startswith("I have ") and item in first:
            assert item in said
    assert not bad, bad


@pytest.mark.parametrize("sex", ["female", "male"])
def test_each_conditions_whole_history_reads_as_the_relatives(kb, sex) -> None:
    """Every condition's risk factors at once, split as the renderer asks them (past
    history, then habits and recent events), and its complaints."""
    meds = [(d.name, d.drug_class or "") for d in kb.drugs.values()]
    for cond in kb.conditions.values():
        items = [history_item(r, random.Random(0), meds) for r in cond.risk_factors]
        items = [i for i in dict.fromkeys(items) if i is not None]
        for part in (
            [i for i in items if not is_exposure(i)],
            [i for i in items if is_exposure(i)],
        ):
            said = collateral.said_of(part, sex, "son")
            assert not _grammatical(said, sex), (cond.id, said)
        symptoms = [complaint(s.name) for s in cond.symptoms]
        for pair in itertools.pairwise(symptoms):
            said = collateral.symptoms_of("3 days", list(pair), sex)
            assert not _grammatical(said, sex), (cond.id, said)
            assert not re.search(r"'s had (?:and )?unable\b", said), said


def test_a_complaint_that_is_no_noun_is_said_as_a_state() -> None:
    said = collateral.symptoms_of(
        "2 days", ["breathlessness", "unable to complete sentences"], "male"
    )
    assert said == "For about 2 days he's had breathlessness and been unable to complete sentences."


def test_the_father_is_named_as_the_relative_names_him() -> None:
    item = ["family history of premature coronary disease"]
    assert collateral.said_of(item, "female", "son") == "Her father had a heart attack at 50."
    assert collateral.said_of(item, "male", "father") == "I had a heart attack at 50."


@pytest.mark.parametrize(
    ("symptoms", "exam", "rr", "spo2", "kind"),
    [
        (["confusion", "headache"], [], 18, 97, "confused"),
        (["cough", "new confusion"], [], 22, 94, "confused"),
        (["polyuria and polydipsia"], ["reduced level of consciousness"], 20, 98, "drowsy"),
        (["nausea"], ["asterixis (flapping tremor)", "disorientation to time"], 18, 97, "confused"),
        (["sudden weakness of one arm"], ["expressive aphasia"], 16, 97, "aphasic"),
        (["breathlessness", "wheeze"], [], 30, 93, "breathless"),
        (["breathlessness"], [], 24, 87, "breathless"),
        (["breathlessness"], ["talks in phrases rather than sentences"], 26, 92, "breathless"),
        # 43-000576: anaphylaxis with tongue angioedema, SpO2 88%
        (
            ["lip and tongue swelling"],
            ["angioedema of the lips and tongue"],
            26,
            88,
            "swollen tongue",
        ),
        (["breathlessness", "cough"], [], 29, 88, None),
        (["anxiety and agitation"], ["oriented to time and place"], 20, 97, None),
    ],
)
def test_who_cannot_give_a_history(symptoms, exam, rr, spo2, kind) -> None:
    got = collateral.needed(symptoms, exam, rr, spo2)
    assert (got.kind if got else None) == kind


def test_exposure_questions_asked_of_a_relative_are_recognised() -> None:
    for items in (["reduced access to water"], ["current smoking", "recent antibiotics"]):
        kinds = wt.exposure_kinds(items)
        for sex in ("female", "male", None):
            question = collateral.exposure_question_of(kinds, sex)
            assert wt.asked_kinds(question) == kinds
    assert wt.asked_kinds(collateral.exposure_question_of([], "male")) == []


def test_where_you_live_is_not_answered_with_what_you_drank() -> None:
    """41-000006, 41-000552: 'reduced access to water' was asked 'Where are you living?'."""
    assert wt.exposure_kinds(["reduced access to water"]) == ["intake"]
    assert wt.exposure_kinds(["birth in a high-incidence country"]) == ["origin"]
    assert wt.unanswered(["living"], "I couldn't get enough to drink.") == ["living"]
    assert wt.unanswered(["intake"], "I couldn't get enough to drink.") == []
    assert wt.unanswered(["living"], "She lives in a care home.") == []
    for item, said in SPOKEN.items():
        if is_exposure(item):
            assert wt.unanswered(wt.exposure_kinds([item]), said) == [], (item, said)
