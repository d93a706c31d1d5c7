"""Real vignettes told in clinical order (round-12 review of the real-source items).

Round 12 found the vignette-to-dialogue scaffold at odds with the content: MEDEC's
diagnosis or treatment sentence told before the examination and results it rests on
(ms-val-454 diltiazem before the ECG, ms-val-431 drainage scheduled before the exam and
CT, ms-val-207 treated "based on PCR" before the PCR); "What did you find on examination?"
answered with vitals or a past blood pressure (ms-val-431, ms-val-215), "So what's the
plan?" answered with a diagnosis and "And on examination?" asked twice (ms-val-89), a
return visit inside the plan turn (ms-val-87); images cited and never shown (ms-val-454,
ms-val-276, mediq:595); an empty ACI-Bench turn (D2N072); a stray quote closing a MediQ
question (mediq:420); and a MEDEC key giving ciprofloxacin in pregnancy (ms-val-331).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from behaviorsft.build import vignette_turns as vt
from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import case_tasks
from behaviorsft.build.tasks.sources import contraindicated_in_pregnancy
from behaviorsft.records import Case, Section
from behaviorsft.sources import aci_bench, medec, mediq
from behaviorsft.sources._common import make_source, parse_turns
from behaviorsft.sources.kb import load_kb
from behaviorsft.taxonomy import TaskType
from tests.build.test_real_encounters import _lint

T = TaskType
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# ms-val-431's order: the decision MEDEC inserted sits before the examination and the CT.
DRAINAGE = [
    "A 49-year-old man comes to the emergency department because of abdominal pain for 1 week.",
    "He was hospitalized twice for acute pancreatitis during the past year.",
    "His only medication is a vitamin supplement.",
    "His temperature is 37.1 C (98.8 F), pulse is 98/min and blood pressure 110/70 mm Hg.",
    "Laparoscopic surgical drainage is scheduled.",
    "He appears uncomfortable.",
    "Examination shows epigastric tenderness to palpation; there is no guarding or rebound.",
    "A CT scan of the abdomen shows a 6-cm collection contiguous with the body of the pancreas.",
]
# ms-val-89's shape: a decision, a reassessment ten minutes later, then the diagnosis.
NEWBORN = [
    "Thirty minutes after delivery, a male newborn develops respiratory distress.",
    "His temperature is 36.8C (98.2F), pulse is 140/min, and respirations are 64/min.",
    "Examination shows pale extremities.",
    "Supplemental oxygen is administered.",
    "Ten minutes later, his pulse is 148/min and respirations are 66/min.",
    "Pulse oximetry on 60% oxygen shows an oxygen saturation of 90%.",
    "Patient is diagnosed with respiratory distress syndrome.",
]


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _case(source: str, lines: list[str], cid: str = "hand-1") -> Case:
    return Case(
        id=f"{source}:{cid}",
        source=make_source(source, cid, Path("hand-made")),
        presentation=" ".join(lines),
        sections=[
            Section(
                title=medec.SENTENCES_TITLE, text="\n".join(f"{i} {s}" for i, s in enumerate(lines))
            )
        ]
        if source == "medec"
        else [],
    )


def _prompts_and_sections(lines: list[str], source: str = "medec") -> list[tuple[str, str]]:
    """(the attending's question, the resident's answer) for each section after the first."""
    told = vt.vignette_sentences(_case(source, lines))
    turns = vt.presentation(told, random.Random(0))
    return [(turns[i][1], turns[i + 1][1]) for i in range(2, len(turns) - 1, 2)]


def test_medec_decision_is_told_after_the_exam_and_results_it_rests_on():
    told = vt.clinical_order(DRAINAGE)
    assert sorted(told) == sorted(DRAINAGE)  # every sentence once
    assert told[-1] == "Laparoscopic surgical drainage is scheduled."
    assert told.index("He appears uncomfortable.") < told.index(told[-1])
    # the plan is asked for once, last, after the workup
    pairs = _prompts_and_sections(DRAINAGE)
    assert pairs[-1][1] == "Laparoscopic surgical drainage is scheduled."
    assert pairs[-1][0] in vt.PROMPTS[vt.DECISION]
    assert pairs[-2][1].startswith("A CT scan")


def test_mediq_keeps_the_source_order():
    """MedQA vignettes are told in their order (a treatment then a later reassessment);
    only MEDEC's inserted sentence moves."""
    told = vt.vignette_sentences(_case("mediq", DRAINAGE))
    assert told == DRAINAGE


def test_a_decision_never_moves_across_a_later_reassessment():
    told = vt.clinical_order(NEWBORN)
    assert told == NEWBORN


def test_prompt_fits_what_the_section_holds():
    vitals = ["Her pulse is 88/min and blood pressure is 150/96 mm Hg."]
    exam = ["Cardiopulmonary examination is unremarkable."]
    assert vt.prompt(vt.EXAM, vitals) == vt.VITALS
    assert vt.prompt(vt.EXAM, exam) == vt.EXAMINATION
    assert vt.prompt(vt.EXAM, vitals + exam) == vt.VITALS_EXAM
    assert vt.prompt(vt.PLAN, ["Diagnosis is liver hematoma."]) == vt.DIAGNOSIS
    assert vt.prompt(vt.PLAN, ["Oral acyclovir is prescribed."]) == vt.DECISION
    both = ["She is diagnosed with cystitis and nitrofurantoin is prescribed."]
    assert vt.prompt(vt.PLAN, both) == vt.ASSESSMENT


def test_reassessment_gets_its_time_and_no_question_is_asked_twice():
    pairs = _prompts_and_sections(NEWBORN)
    asked = [q for q, _ in pairs]
    assert ("Ten minutes later?", " ".join(NEWBORN[4:6])) in pairs
    assert asked[-1] in vt.PROMPTS[vt.DIAGNOSIS]  # not "So what's the plan?"
    assert len(set(asked)) == len(asked)
    assert sum(q in vt.PROMPTS[vt.EXAMINATION] for q in asked) <= 1


def test_a_past_blood_pressure_is_history_not_the_examination():
    """ms-val-215: "What did you find on examination?" answered with last week's BP."""
    past = "She had a blood pressure recording of 148/94 mm Hg on her previous visit one week ago."
    assert vt.kind(past) is None
    assert vt.kind("Her pulse is 88/min and blood pressure is 150/96 mm Hg.") == vt.EXAM


def test_what_a_sentence_is_decides_its_question():
    """mediq:282: another patient's reason for admission answered "How was it managed?";
    MEDEC's "Urinalysis was ordered" answered "Any results back?"."""
    assert vt.kind("The source patient was admitted for hemoptysis and night sweats.") is None
    assert vt.kind("She is admitted to the hospital.") == vt.PLAN
    assert vt.kind("Urinalysis was ordered for the patient.") == vt.PLAN
    assert vt.kind("On examination, she pulls at her ECG leads.") == vt.EXAM
    assert vt.kind("Two days after admission, her temperature is 37.6 C.") == vt.FOLLOW_UP
    assert vt.kind("She has a broad-based gait and takes short steps.") != vt.BACKGROUND


def test_a_medqa_step_before_more_findings_is_not_the_plan():
    """A MedQA vignette keeps its order; a treatment that more findings follow is asked
    for as a step ("What was done first?"), the plan being what comes last."""
    lines = [
        "A 30-year-old man is brought to the emergency department because of vomiting.",
        "He is given 2 L of Ringer lactate.",
        "Laboratory studies show a serum potassium concentration of 2.9 mEq/L.",
    ]
    pairs = _prompts_and_sections(lines, source="mediq")
    assert pairs[0] == ("What was done first?", lines[1])
    assert pairs[1][1] == lines[2]
    assert vt.kind("She was recently diagnosed with breast cancer and treated.") != vt.PLAN


# ----------------------------------------------------------------------------- images

LESIONS = [
    "A 28-year-old man comes to the physician because of skin lesions around his anus.",
    "A photograph of the perianal region is shown.",
    "The lesions turn white after application of a dilute acetic acid solution.",
    "There are white patches over her tongue (as seen in the image) that scrape off.",
    "Oral acyclovir is prescribed.",
]


def test_image_citations_are_cut_and_a_bare_one_left_out(kb):
    told = vt.without_images(LESIONS)
    assert "A photograph of the perianal region is shown." not in told
    assert "There are white patches over her tongue that scrape off." in told
    assert len(told) == len(LESIONS) - 1
    assert vt.image_unshown(_case("medec", LESIONS))
    assert not vt.image_unshown(_case("medec", [LESIONS[0], LESIONS[3]]))
    # a table that follows its "are shown." is shown
    table = ["Results of his arterial blood gas analysis are shown.", "Pco2 16 mm Hg", "pH 7.1"]
    assert vt.without_images(table) == table
    assert not vt.image_unshown(_case("mediq", ["A 30-year-old man has vomiting.", *table]))
    # mediq:926: a closed sentence after "... is shown." is no table
    eye = ["Fundoscopic examination of the right eye is shown.", "His CD4+ count is 46/mm3."]
    assert vt.without_images(eye) == eye[1:]
    texts = [t.text for t in render(_case("medec", LESIONS), kb, seed=1).conversation.turns]
    assert not any(vt.cites_image(s) for t in texts for s in vt.split_sentences(t))


def _mediq_case(
    tmp_path: Path, context: list[str], question: str, patient: dict | None = None
) -> Case:
    entry = {
        "id": 7,
        "question": question,
        "context": context,
        "options": {"A": "Hookworm", "B": "Trichuris", "C": "Giardia", "D": "Ascaris"},
        "answer": "Hookworm",
        "answer_idx": "A",
        "facts": [],
        "patient": patient or {"gender": "Male", "age": "6 years old"},
    }
    path = tmp_path / "mediq.jsonl"
    path.write_text(json.dumps(entry) + "\n")
    [item] = list(mediq.read(path))
    assert item.case is not None
    return item.case


def test_mediq_item_resting_on_an_unshown_image_is_left_out(kb, tmp_path):
    """mediq:595: the photomicrograph told hookworm from Trichuris; mediq:420: the question
    closed with a stray quotation mark."""
    context = [
        "A 6-year-old boy is brought to the physician because of irritability.",
        "He is markedly lethargic and has conjunctival pallor.",
        "A photomicrograph of a wet stool mount is shown.",
    ]
    question = 'Which of the following is the most likely diagnosis?"'
    case = _mediq_case(tmp_path, context, question)
    assert [t for t in case_tasks(case, render(case, kb, seed=0), kb, seed=0)] == []
    case = _mediq_case(tmp_path, context[:2], question)
    [task] = [
        t
        for t in case_tasks(case, render(case, kb, seed=0), kb, seed=0)
        if t.task_type is T.DDX_REASONING
    ]
    assert task.question == "Which of the following is the most likely diagnosis?"


def test_mediq_question_without_a_patient_is_left_out(kb, tmp_path):
    """mediq:1016 (round 15): a ribosome question ("An investigator is developing a new
    vaccine") was presented as the next case of a ward round, with no patient."""
    context = ["An investigator is developing a new vaccine.", "Eukaryote ribosomes are used."]
    question = "Which of the following is the next step in protein formation?"
    study = _mediq_case(tmp_path, context, question, {"gender": "study", "age": "study"})
    assert list(case_tasks(study, render(study, kb, seed=0), kb, seed=0)) == []
    person = _mediq_case(tmp_path, ["A 6-year-old boy has a fever.", *context], question)
    assert [t.task_type for t in case_tasks(person, render(person, kb, seed=0), kb, seed=0)] == [
        T.PREDICTIVE_NEXT_ACTION
    ]


# ----------------------------------------------------------------------------- KB check


def test_a_key_giving_a_drug_contraindicated_in_the_notes_pregnancy(kb):
    note = ["A 23-year-old woman gravida 2, para 1 at 12 weeks' gestation comes to the physician."]
    assert contraindicated_in_pregnancy(kb, note, "Ciprofloxacin is administered.")
    assert not contraindicated_in_pregnancy(kb, note, "Nitrofurantoin is administered.")
    newborn = ["A male newborn was born at 30 weeks' gestation."]
    assert not contraindicated_in_pregnancy(kb, newborn, "Ciprofloxacin is administered.")


# ----------------------------------------------------------------------------- transcripts


def test_an_empty_transcript_turn_is_no_turn():
    """ACI-Bench D2N072: a bare "[doctor]" line was a blank physician turn."""
    dialogue = "[doctor] how are you\n[patient] fine\n[doctor]\n[patient] my knee hurts\n"
    turns = parse_turns(dialogue, aci_bench._match)
    assert [t.text for t in turns] == ["how are you", "fine", "my knee hurts"]
    assert [t.index for t in turns] == [0, 1, 2]


# ----------------------------------------------------------------------------- linter


def test_lint_image_unshown_and_turn_empty():
    found = _lint(
        [
            ("physician", "What did the workup show?"),
            ("medical resident", "An ECG is performed as seen in Figure A."),
            ("medical resident", "He appears well. A photograph of the lesion is shown."),
            ("medical resident", "Results are shown. Pco2 16 mm Hg; pH 7.1."),
            ("medical resident", "Fundoscopy is shown. His CD4+ count is 46/mm3."),
            ("physician", ""),
            ("patient", "It was shown to me by the nurse."),
        ]
    )
    assert found.get("image-unshown") == [1, 2, 4]
    assert found.get("turn-empty") == [5]


# ----------------------------------------------------------------------------- shared data


@pytest.fixture(scope="module")
def medec_cases():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    [path] = sorted((SHARED_DATA / "medec").glob("*.csv"))
    return {i.case.id: i.case for i in medec.read(path) if i.case is not None}


def _said(kb, case: Case) -> list[str]:
    return [t.text for t in render(case, kb, seed=7).conversation.turns]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("cid", "decision", "after"),
    [
        ("ms-val-431", "Laparoscopic surgical drainage is scheduled.", "A CT scan of the abdomen"),
        (
            "ms-val-207",
            "Patient was treated with topical erythromycin",
            "Polymerase chain reaction",
        ),
        ("ms-val-276", "Oral acyclovir is prescribed.", "An HIV test is negative."),
        ("ms-val-454", "Diltiazem is administered", "albuterol-ipratropium"),
    ],
)
def test_reviewed_medec_decisions_come_after_what_they_rest_on(
    kb, medec_cases, cid, decision, after
):
    texts = _said(kb, medec_cases[f"medec:{cid}"])
    whole = "\n".join(texts)
    assert whole.index(decision) > whole.index(after), texts
    asked = [t for t in texts[::2]]  # the attending's turns
    assert len(set(asked)) == len(asked), asked
    assert not any(vt.cites_image(s) for t in texts for s in vt.split_sentences(t))


@pytest.mark.shared_data
def test_reviewed_medec_prompts_fit_their_answers(kb, medec_cases):
    texts = _said(kb, medec_cases["medec:ms-val-87"])
    follow = next(i for i, t in enumerate(texts) if t.startswith("Four days later,"))
    assert texts[follow - 1] == "Four days later?"
    assert "Four days later" not in texts[follow - 2]  # not inside the plan turn
    assert texts[-2] in vt.PROMPTS[vt.DIAGNOSIS] and texts[-1] == "Diagnosis is liver hematoma."
    texts = _said(kb, medec_cases["medec:ms-val-215"])
    past = next(i for i, t in enumerate(texts) if "on her previous visit" in t)
    assert past == 1  # the history, not an answer to "on examination?"
    texts = _said(kb, medec_cases["medec:ms-val-89"])
    asked = texts[::2]
    assert sum(q in vt.PROMPTS[vt.EXAMINATION] for q in asked) <= 1
    assert texts[-1] == "Patient is diagnosed with respiratory distress syndrome."
    assert texts[-2] in vt.PROMPTS[vt.DIAGNOSIS]


@pytest.mark.shared_data
def test_reviewed_real_items_left_out(kb, medec_cases):
    """ms-val-454 rests on an ECG in "Figure A", ms-val-331 (and its twin 330) keys
    ciprofloxacin at 12 weeks' gestation: no item."""
    for cid in ("ms-val-454", "ms-val-331", "ms-val-330"):
        case = medec_cases[f"medec:{cid}"]
        tasks = case_tasks(case, render(case, kb, seed=0), kb, seed=0)
        assert [t for t in tasks if t.task_type is T.EXPLICIT_ERROR_CORRECTION] == [], cid


@pytest.mark.shared_data
def test_real_aci_bench_has_no_empty_turn():
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    for path in sorted((SHARED_DATA / "aci-bench").glob("*.csv")):
        for item in aci_bench.read(path):
            if item.conversation is not None:
                turns = item.conversation.turns
                assert all(t.text.strip() for t in turns), item.case.id
                assert [t.index for t in turns] == list(range(len(turns)))
