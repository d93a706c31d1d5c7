"""The record index: names, groups, drugs, who said what and when, on hand-made records."""

from __future__ import annotations

import pytest

from behaviorsft.build.record_index import (
    NEGATIVE,
    RecordIndex,
    condition_holds,
    split_condition,
    tokens,
)
from behaviorsft.records import Attachment, Case, Event, Medication, Source, Turn
from behaviorsft.sources.kb import load_kb


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _case(meds: list[str]) -> Case:
    return Case(
        id="hand-1",
        source=Source(name="synthetic", licence="CC0"),
        timeline=[
            Event(day=-3, kind="symptom", text="Rectal bleeding began."),
            Event(day=0, kind="presentation", text="Presented to the emergency department."),
            Event(day=1, kind="lab", text="Repeat Hemoglobin checked."),
        ],
        medications=[Medication(name=m) for m in meds],
    )


def _turns() -> list[Turn]:
    def t(i: int, role: str, text: str, rows: list[list[str]] | None = None) -> Turn:
        cols = ["Test", "Result", "Unit", "Reference"]
        att = [Attachment(kind="table", title="day 0", columns=cols, rows=rows)] if rows else []
        return Turn(index=i, speaker=f"S{i}", role=role, text=text, attachments=att)

    return [
        t(0, "triage nurse", "74-year-old with 3 days of rectal bleeding."),
        t(1, "patient", "I take Aspirin 81 mg PO once daily and Warfarin 5 mg PO once daily."),
        t(2, "patient", "Penicillins. It gave me a rash."),
        t(3, "emergency physician", "Let's send bloods and request: CT angiography."),
        t(
            4,
            "medical resident",
            "Admission bloods are back.",
            [
                ["International normalized ratio", "2.8", "ratio", "0.8-1.1"],
                ["CSF glucose", "60", "mg/dL", ""],
            ],
        ),
        t(5, "radiologist", "CT angiography: active contrast extravasation."),
        t(6, "attending physician", "Ischaemic colitis is less likely given painless bleeding."),
        t(
            7,
            "attending physician",
            "Plan: hold anticoagulants; give vitamin K antagonist reversal.",
        ),
        t(8, "gastroenterology consultant", "From our side: colonoscopy once settled."),
    ]


def test_a_test_is_found_under_every_name(kb):
    idx = RecordIndex.build(_case([]), _turns(), kb)
    where = [r.turn for r in idx.mentions("International normalized ratio")]
    assert where == [4]
    for name in ("INR", "international normalised ratio", "6301-6", "inr"):
        assert [r.turn for r in idx.mentions(name)] == where, name
    assert idx.has_test("INR") and idx.has_test("coagulation screen")  # a group via a member
    assert not idx.has_test("aPTT") and not idx.has_test("LFTs")


def test_longest_name_wins(kb):
    idx = RecordIndex.build(_case([]), _turns(), kb)
    assert idx.has_test("CSF glucose")
    assert not idx.has_test("serum glucose")  # "CSF glucose" is not a serum glucose
    assert not idx.has_test("potassium")  # nor is "vitamin K antagonist" a potassium


def test_a_group_name_covers_its_members(kb):
    turns = [Turn(index=0, speaker="A", role="medical resident", text="U&E sent and back.")]
    idx = RecordIndex.build(_case([]), turns, kb)
    assert idx.has_test("creatinine") and idx.has_test("renal function")
    assert not idx.has_test("INR")


def test_drugs_taken_not_drugs_named(kb):
    turns = _turns()
    on_aspirin = RecordIndex.build(_case(["Aspirin"]), turns, kb)
    # "hold anticoagulants" in a plan and an allergy to penicillins put no one on those drugs
    assert not on_aspirin.has_drug_group("anticoagulants")
    assert not on_aspirin.has_drug_group("penicillins")
    assert on_aspirin.has_drug("aspirin") and not on_aspirin.has_drug("warfarin")
    on_warfarin = RecordIndex.build(_case(["Aspirin", "Warfarin"]), turns, kb)
    assert on_warfarin.has_drug("warfarin") and on_warfarin.has_drug_group("anticoagulants")
    assert on_warfarin.has_drug_group("vitamin K antagonist")
    # a medicine counts only where the record shown names it
    early = RecordIndex.build(_case(["Aspirin", "Warfarin"]), turns, kb, turn_end=0)
    assert not early.has_drug("warfarin")


def test_who_said_what_and_when(kb):
    idx = RecordIndex.build(_case([]), _turns(), kb, excerpt="Checklist, done: INR.")
    assert idx.turns_by_role("radiologist") == [5]
    assert idx.turns_by_role("attending physician") == [6, 7]
    assert [r.turn for r in idx.consults()] == [8]
    assert idx.mentions("colonoscopy")[0].role == "gastroenterology consultant"
    assert not idx.shows_done(idx.concept("colonoscopy"))  # recommended, not done
    refs = idx.mentions("INR")
    assert [r.turn for r in refs] == [4, None] and refs[1].role == "note"
    assert refs[0].role == "medical resident"
    # the day of the event, not of its mention (the bleeding began three days before)
    assert idx.event_time("symptom") == -3
    assert idx.event_time("repeat hemoglobin") == 1
    assert idx.event_time("discharge") is None


def test_a_request_is_not_a_result(kb):
    idx = RecordIndex.build(_case([]), _turns(), kb, turn_end=3)
    cta = idx.concept("CT angiography")
    assert cta is not None and idx.has(cta) and not idx.shows_done(cta)
    reported = RecordIndex.build(_case([]), _turns(), kb)
    assert reported.shows_done(cta)
    assert reported.shows_done(reported.concept("INR"))


def test_negated_and_affirmed_sentences(kb):
    idx = RecordIndex.build(_case([]), _turns(), kb)
    assert [r.turn for r in idx.negated("ischaemic colitis")] == [6]
    assert idx.phrase_refs("ischaemic colitis", affirmed=True) == []
    assert [r.turn for r in idx.phrase_refs("contrast extravasation", affirmed=True)] == [5]


@pytest.mark.parametrize(
    ("item", "core", "clause"),
    [
        ("INR in patients on warfarin", "INR", "in patients on warfarin"),
        ("blood cultures if septic", "blood cultures", "if septic"),
        ("serum lipase (or amylase)", "serum lipase (or amylase)", None),
        (
            "fingerstick glucose before thrombolysis (the only test required before alteplase)",
            "fingerstick glucose before thrombolysis",
            "only test required before alteplase",
        ),
        (
            "escalate to ICU for high-flow oxygen failure",
            "escalate to ICU",
            "for high-flow oxygen failure",
        ),
        ("renal function for oseltamivir dosing", "renal function for oseltamivir dosing", None),
        ("discharge low-risk patients for outpatient colonoscopy", None, "low-risk"),
    ],
)
def test_split_condition(item, core, clause):
    got_core, got_clause = split_condition(item)
    assert got_clause == clause
    assert got_core == (item if core is None else core)


def test_condition_holds_only_when_the_record_shows_it(kb):
    aspirin = RecordIndex.build(_case(["Aspirin"]), _turns(), kb)
    warfarin = RecordIndex.build(_case(["Aspirin", "Warfarin"]), _turns(), kb)
    assert condition_holds("in patients on warfarin", aspirin) is False
    assert condition_holds("in patients on warfarin", warfarin) is True
    assert condition_holds("in patients on anticoagulants", warfarin) is True
    # a judgement the record cannot settle
    assert condition_holds("if septic", warfarin) is None
    assert condition_holds("if necrotising infection is suspected", warfarin) is None
    # ruled out by the attending
    assert condition_holds("if ischaemic colitis is suspected", warfarin) is False
    assert condition_holds("for active contrast extravasation", warfarin) is True


def test_tokens_drop_plurals_and_punctuation():
    assert tokens("Blood Cultures (x2)") == ("blood", "culture", "x2")
    assert tokens("glass") == ("glass",)


def test_a_hypothetical_answer_is_not_a_result(kb):
    turns = [
        Turn(index=0, speaker="R", role="medical resident", text="What would make you reconsider?"),
        Turn(index=1, speaker="A", role="attending physician", text="A normal TEE."),
        Turn(index=2, speaker="A", role="attending physician", text="Plan: ICU admission."),
    ]
    idx = RecordIndex.build(_case([]), turns, kb)
    tee = idx.concept("transoesophageal echocardiogram")
    assert idx.has(tee) and not idx.shows_done(tee)
    # "ICU" and "intensive care unit" are one place
    assert [r.turn for r in idx.mentions("admission to an intensive care unit")] == [2]


def test_recommendations_against_something_are_recognised():
    assert NEGATIVE.search("no test of cure after treatment")
    assert NEGATIVE.search("dexamethasone not given to patients who do not need oxygen")
    assert NEGATIVE.search("Do not use nitrofurantoin for pyelonephritis")
    assert not NEGATIVE.search("serum lipase (or amylase)")


def test_a_qualifier_in_a_lab_name_is_not_a_name(kb):
    """'Serum osmolality (measured)' made every "measured" name serum osmolality, and
    'Calcium (total)' every "total" a calcium (so "PEF or FEV1 measured" could never be
    listed as done without an osmolality); an abbreviation in parentheses still names."""
    turns = [
        Turn(index=0, speaker="A", role="medical resident", text="PEF measured; total dose given."),
        Turn(index=1, speaker="B", role="medical resident", text="ALT and free T4 sent."),
    ]
    idx = RecordIndex.build(_case([]), turns, kb)
    assert not idx.mentions("Serum osmolality (measured)")
    assert not idx.mentions("Calcium (total)")
    assert [r.turn for r in idx.mentions("Alanine aminotransferase (ALT)")] == [1]
    assert [r.turn for r in idx.mentions("Free thyroxine (free T4)")] == [1]
