"""Real sources read as real encounters (round-10 review of the real-source items).

MEDEC and MediQ vignettes were chopped one sentence per turn between two physicians, after
a "Summary:" turn repeating the whole note; lab headers ("Serum", "Laboratory studies
showed:") stood alone as turns, and MediQ's atomic facts ("Patient is sexually active.")
were read out one per turn. Now the resident presents the vignette to the attending in
section-sized turns (build/vignette_turns.py), and the linter reports the old defects
(build/lint_encounter.py): ``turn-fragment``, ``sentence-split``, ``summary-duplicate``
and ``vital-impossible``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from behaviorsft.build import vignette_turns
from behaviorsft.build.conversation import render
from behaviorsft.build.lint import lint_records
from behaviorsft.records import Case, Section
from behaviorsft.sources import medec, mediq
from behaviorsft.sources._common import make_source
from behaviorsft.sources.kb import load_kb

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

NOTE = [
    "A 39-year-old woman comes to the physician because of fever and chills for 1 week.",
    "She has had dull right-sided abdominal pain during this period.",
    "She has type 1 diabetes mellitus.",
    "Current medications include insulin.",
    "Her temperature is 40 C (104 F), pulse is 118/min, and blood pressure is 106/70 mm Hg.",
    "The liver is palpated 2 cm below the right costal margin and is tender.",
    "Laboratory studies showed:",
    "Hemoglobin 14.1 g/dL",
    "Leukocyte count 17,100/mm3",
    "Serum",
    "Glucose 79 mg/dL",
    "Alkaline phosphatase 180 U/L",
    "A right upper quadrant ultrasound shows a hypoechoic lesion in the liver.",
    "Intravenous metronidazole is started.",
]


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _medec_case(lines: list[str]) -> Case:
    return Case(
        id="medec:hand-1",
        source=make_source("medec", "hand-1", Path("hand-made.csv")),
        presentation=" ".join(lines),
        sections=[
            Section(
                title=medec.SENTENCES_TITLE, text="\n".join(f"{i} {s}" for i, s in enumerate(lines))
            )
        ],
    )


def test_sections_keep_order_and_never_split_a_header_from_its_values():
    got = vignette_turns.sections(NOTE)
    assert [k for k, _ in got] == ["presenting", "background", "exam", "results", "plan"]
    assert [s for _, body in got for s in body] == NOTE  # every sentence once, in order
    results = vignette_turns.joined(got[3][1])
    assert results.startswith("Laboratory studies showed: Hemoglobin 14.1 g/dL; Leukocyte")
    assert "; Serum Glucose 79 mg/dL; Alkaline phosphatase 180 U/L. A right upper" in results


def test_presentation_is_the_resident_speaking_with_the_attendings_prompts(kb):
    rendered = render(_medec_case(NOTE), kb, seed=3)
    turns = rendered.conversation.turns
    assert not any(t.text.startswith("Summary:") for t in turns)
    by_resident = [t for t in turns if t.role == "medical resident"]
    prompts = [t for t in turns if t.role == "physician"]
    assert len(by_resident) == 5 and len(prompts) == 5  # an opener, then one per section
    assert [t.role for t in turns[:2]] == ["physician", "medical resident"]
    assert all(len(t.text.split()) <= 8 for t in prompts)
    spoken = " ".join(t.text for t in by_resident)
    for sentence in NOTE:
        assert spoken.count(sentence) == 1, sentence
    assert not any(t.text in ("Serum", "Laboratory studies showed:") for t in turns)


def test_past_treatment_is_history_not_the_plan():
    assert (
        vignette_turns.kind(
            "One week ago, she was diagnosed with a genitourinary infection and started on "
            "antimicrobial therapy."
        )
        != vignette_turns.PLAN
    )
    assert vignette_turns.kind("Intravenous metronidazole is started.") == vignette_turns.PLAN


def test_split_sentences_keeps_decimals_and_units():
    text = "Her temperature is 37.8 C (100 F). Blood pressure is 110/70 mm Hg. She is well."
    assert vignette_turns.split_sentences(text) == [
        "Her temperature is 37.8 C (100 F).",
        "Blood pressure is 110/70 mm Hg.",
        "She is well.",
    ]


def test_mediq_case_is_told_from_its_vignette_not_its_atomic_facts(kb):
    case = Case(
        id="mediq:hand-1",
        source=make_source("mediq", "hand-1", Path("hand-made.jsonl")),
        presentation="A 21-year-old sexually active man complains of fever and knee pain. "
        "A culture of the joint fluid shows gram-negative diplococci.",
        facts=["Patient is a 21-year-old male.", "Patient is sexually active."],
    )
    turns = render(case, kb, seed=0).conversation.turns
    texts = [t.text for t in turns]
    assert "Patient is sexually active." not in texts
    assert any(t.startswith("A 21-year-old sexually active man") for t in texts)
    assert not any(t.startswith("Summary:") for t in texts)


# ----------------------------------------------------------------------------- linter


def _lint(turns: list[tuple[str, str]], attachments: list | None = None) -> dict[str, list]:
    conv = {
        "case_id": "x:1",
        "turns": [
            {"index": i, "speaker": role, "role": role, "text": text, "attachments": []}
            for i, (role, text) in enumerate(turns)
        ],
    }
    if attachments:
        conv["turns"][-1]["attachments"] = attachments
    found: dict[str, list] = {}
    for f in lint_records(iter(()), iter([(1, conv)])):
        found.setdefault(f.rule, []).append(f.turn)
    return found


def test_lint_turn_fragment_and_sentence_split():
    found = _lint(
        [
            ("physician", "Her pulse is"),
            ("medical resident", "106/min and blood pressure is 102/73 mm Hg."),
            ("physician", "Serum"),
            ("medical resident", "Laboratory studies showed:"),
            ("patient", "Yes"),
            ("physician", "Okay"),
        ]
    )
    assert found.get("sentence-split") == [0]
    assert found.get("turn-fragment") == [2, 3]


def test_sentence_split_reads_open_ends_as_the_medec_importer_joins_them():
    """One pattern (sources/_common.OPEN_END) for a line cut mid-sentence: the linter flags
    a turn ending on any word after which the MEDEC importer joins the next line ('and',
    'in', 'as' were missing from the linter's own copy)."""
    for previous in ("Her pulse is", "She has had fever and", "A mass in", "It is described as"):
        assert medec.continues(previous, "106/min at rest.")
        found = _lint([("physician", previous), ("medical resident", "106/min at rest.")])
        assert found.get("sentence-split") == [0], previous
    # a finished sentence is neither joined nor flagged
    assert not medec.continues("Her pulse is fast.", "106/min at rest.")
    assert "sentence-split" not in _lint(
        [("physician", "Her pulse is fast."), ("medical resident", "106/min at rest.")]
    )


def test_lint_summary_duplicate():
    a = "She has had a fever and chills for one week now."
    b = "Her temperature is 40 C and her pulse is 118 per minute."
    summary = f"Summary: {a} {b} " + "The liver is tender on palpation today. " * 4
    found = _lint([("physician", summary), ("medical resident", a), ("physician", b)])
    assert found.get("summary-duplicate") == [0]
    assert "summary-duplicate" not in _lint([("medical resident", a), ("physician", b)])


def test_lint_impossible_vitals_in_text_and_tables():
    found = _lint(
        [
            ("medical resident", "Blood pressure is 102/98 mm Hg and pulse is 97/min."),
            ("nurse", "Blood pressure is 124/78 mm Hg, pulse is 260/min."),
            ("nurse", "Results from 2003-01-08."),
        ],
        attachments=[
            {
                "title": "2003-01-08",
                "columns": ["Test", "Value", "Unit", "Reference"],
                "rows": [
                    ["Systolic blood pressure", "186", "mmHg", ""],
                    ["Diastolic blood pressure", "167", "mmHg", ""],
                    ["Oxygen saturation", "45", "%", ""],
                ],
            }
        ],
    )
    assert found.get("vital-impossible") == [0, 1, 2, 2]
    assert "vital-impossible" not in _lint([("nurse", "Blood pressure is 186/100 mm Hg.")])


# ----------------------------------------------------------------------------- shared data


@pytest.fixture(scope="module")
def medec_cases():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    [path] = sorted((SHARED_DATA / "medec").glob("*.csv"))
    return {i.case.id: i.case for i in medec.read(path) if i.case is not None}


@pytest.mark.shared_data
@pytest.mark.parametrize("cid", ["medec:ms-val-295", "medec:ms-val-431", "medec:ms-val-0"])
def test_reviewed_medec_notes_read_as_a_presentation(kb, medec_cases, cid):
    """ms-val-295 (round 10): "Laboratory studies showed: Hemoglobin 14.1 g/dL" split over
    two speakers, "Serum" a turn of its own, a summary turn repeating the note."""
    case = medec_cases[cid]
    conv = render(case, kb, seed=7).conversation
    texts = [t.text for t in conv.turns]
    assert not any(t.startswith("Summary:") for t in texts)
    assert not any(t in ("Serum", "Laboratory studies showed:") for t in texts)
    if cid == "medec:ms-val-295":
        assert any("Laboratory studies showed: Hemoglobin 14.1 g/dL" in t for t in texts)
    assert len(conv.turns) <= 14  # sections, not sentences
    assert {t.role for t in conv.turns} == {"physician", "medical resident"}
    raw = conv.model_dump(mode="json")
    assert lint_records(iter(()), iter([(1, raw)])) == []


@pytest.mark.shared_data
def test_real_mediq_first_case_has_no_fact_turns(kb):
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    first = next(mediq.read(SHARED_DATA / "mediq" / "all_dev_good.jsonl"))
    assert first.case is not None
    texts = [t.text for t in render(first.case, kb, seed=7).conversation.turns]
    assert "Patient is sexually active." not in texts
    assert any("sexually active male complains of fever" in t for t in texts)


def test_prompts_are_drawn_from_the_seed():
    a = vignette_turns.presentation(NOTE, random.Random(1))
    b = vignette_turns.presentation(NOTE, random.Random(1))
    assert a == b
