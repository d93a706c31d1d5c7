"""Real-source artefacts of the round-15 review (session 12).

* ACI-Bench D2N034: the transcript's "[doctor]" and "[patient]" tags are swapped (and its
  lines cut half a turn late), so the "doctor" has the shoulder pain and the "patient"
  examines it. Such encounters are skipped and counted (``swapped_speakers``), now with
  ACI-Bench's spoken clinician phrases; the linter's ``speaker-swap`` finds them.
* MEDEC ms-val-491: "At that time, her HbA1c was ..." (three months back) was moved after
  the new prescription by ``clinical_order``; a sentence whose time is the one before it now
  stays there; the linter's ``backref-moved`` finds it.
* MediQ 130: the vignette was split inside the daughter's quoted words, so the resident
  said "Your neighbor saw you fall"; a quotation's sentences now stay together; the
  linter's ``quote-split`` finds it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from behaviorsft.build import vignette_turns
from behaviorsft.build.conversation import render
from behaviorsft.records import Case, Section
from behaviorsft.sources import aci_bench, medec, mediq
from behaviorsft.sources._common import make_source, parse_turns, swapped_speakers
from behaviorsft.sources.kb import load_kb
from tests.build.test_real_encounters import _lint

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

SWAPPED = "\n".join(
    [
        "[doctor] yeah i've been having a lot of pain of my shoulder okay when did it start",
        "[patient] i ca n't recall falling on it",
        "[doctor] i'm having a lot of pain when i reach for something",
        "[patient] okay so i'm gon na go ahead and do a quick physical exam of your shoulder",
        "[doctor] okay",
        "[patient] so i'm going to refer you to physical therapy",
    ]
)


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def test_spoken_clinician_phrases_make_a_swap():
    turns = parse_turns(SWAPPED, aci_bench._match)
    why = swapped_speakers(turns)
    assert why is not None and "turn 2 (Doctor)" in why
    right = SWAPPED.replace("[doctor]", "[x]").replace("[patient]", "[doctor]")
    assert (
        swapped_speakers(parse_turns(right.replace("[x]", "[patient]"), aci_bench._match)) is None
    )


def test_swapped_encounter_is_skipped_with_its_reason(tmp_path):
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "encounter_id", "dialogue", "note"])
        w.writerow(["virtassist", "D1", SWAPPED, "CHIEF COMPLAINT\n\nShoulder pain."])
    [got] = list(aci_bench.read(path))
    assert got.case is None and got.error is not None
    assert "speaker labels swapped" in str(got.error)


def test_lint_speaker_swap():
    turns = [
        ("patient" if t.role == "patient" else "physician", t.text)
        for t in parse_turns(SWAPPED, aci_bench._match)
    ]
    assert "speaker-swap" in _lint(turns)
    flipped = [("patient" if r == "physician" else "physician", x) for r, x in turns]
    assert "speaker-swap" not in _lint(flipped)


QUOTED = (
    "A 64-year-old man is brought by his daughter for forgetfulness. She says, \u201cHe "
    "missed the party. Your neighbor saw you fall last week.\u201d His history includes "
    "atrial fibrillation. He takes warfarin."
)


def test_split_sentences_keeps_a_quotation_whole():
    got = vignette_turns.split_sentences(QUOTED)
    assert got[1] == (
        "She says, \u201cHe missed the party. Your neighbor saw you fall last week.\u201d His "
        "history includes atrial fibrillation."
    )
    # a quotation the text never closes is split as before
    assert vignette_turns.split_sentences('She says, "He fell. He is fine.') == [
        'She says, "He fell.',
        "He is fine.",
    ]


def test_lint_quote_split():
    found = _lint(
        [
            ("medical resident", "His daughter says, \u201cHe missed the party."),
            ("physician", "Anything else?"),
            ("medical resident", "Your neighbor saw you fall.\u201d He takes warfarin."),
            ("medical resident", 'She said "he fell" twice.'),
        ]
    )
    assert found.get("quote-split") == [0]
    # a stray mark in one turn is a source's typo, not a quotation split over turns
    assert "quote-split" not in _lint([("medical resident", '"A 25-year-old woman.')])


MEDEC_491 = [
    "A 43-year-old woman presents to her endocrinologist.",
    "She first presented three months ago with a new diagnosis of type 2 diabetes.",
    "At that time, her HbA1c was 8.8%, and she was started on metformin.",
    "Her metformin was uptitrated to the maximum dose.",
    "At the same visit, she was counseled on diet and exercise.",
    "Her HbA1c today is 7.6%, and her BMI is stable.",
    "Patient was prescribed sitagliptin in addition to metformin.",
]


def test_medec_closing_quote_goes_back_to_its_sentence():
    case = Case(
        id="medec:hand-q",
        source=make_source("medec", "hand-q", Path("hand-made.csv")),
        sections=[
            Section(
                title=medec.SENTENCES_TITLE,
                text='0 She wishes to pass "as naturally as possible.\n1 " Dilation is advised.',
            )
        ],
    )
    assert vignette_turns.source_sentences(case) == [
        'She wishes to pass "as naturally as possible."',
        "Dilation is advised.",
    ]


def test_clinical_order_keeps_a_back_referring_sentence_in_place():
    assert vignette_turns.clinical_order(MEDEC_491) == MEDEC_491
    # a decision of the visit still moves after the results it rests on
    moved = ["A man has chest pain.", "Aspirin is given.", "An ECG shows ST elevation."]
    assert vignette_turns.clinical_order(moved) == [moved[0], moved[2], moved[1]]


def test_lint_backref_moved():
    found = _lint(
        [
            ("physician", "So what's the plan?"),
            ("medical resident", " ".join(MEDEC_491[-1:] + MEDEC_491[2:3])),
            ("medical resident", " ".join(MEDEC_491[1:3])),
            (
                "medical resident",
                "She is given captopril; 1 week later she presents to the ED. "
                "At that point captopril is stopped.",
            ),
        ]
    )
    assert found.get("backref-moved") == [1]


# ----------------------------------------------------------------------------- shared data


def _need_data() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")


@pytest.mark.shared_data
def test_real_aci_d2n034_is_skipped():
    _need_data()
    got = [i for i in aci_bench.read(SHARED_DATA / "aci-bench" / "train.csv")]
    ids = {i.case.id for i in got if i.case is not None}
    assert "aci-bench:D2N033" in ids and "aci-bench:D2N034" not in ids
    assert any("speaker labels swapped" in str(i.error) for i in got if i.error is not None)


@pytest.mark.shared_data
def test_real_medec_491_keeps_its_history_before_the_plan(kb):
    _need_data()
    [path] = sorted((SHARED_DATA / "medec").glob("*.csv"))
    case = next(i.case for i in medec.read(path) if i.case and i.case.id == "medec:ms-val-491")
    texts = [t.text for t in render(case, kb, seed=7).conversation.turns]
    plan = next(t for t in texts if "sitagliptin" in t)
    assert "At that time" not in plan
    assert "backref-moved" not in _lint([("medical resident", t) for t in texts])


@pytest.mark.shared_data
def test_real_mediq_130_keeps_the_daughters_words_in_one_turn(kb):
    _need_data()
    case = next(
        i.case
        for i in mediq.read(SHARED_DATA / "mediq" / "all_dev_good.jsonl")
        if i.case is not None and i.case.id == "mediq:130"
    )
    texts = [t.text for t in render(case, kb, seed=7).conversation.turns]
    assert not any(t.startswith("Your neighbor saw you fall") for t in texts)
    assert "quote-split" not in _lint([("medical resident", t) for t in texts])
