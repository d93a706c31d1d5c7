"""Clinicians speak, they do not cite (session 11, h2-speech).

Review round 9 (seed 41) found KB text said aloud as it is written in the KB: guideline
citations in plans and ward rounds ("(BTS 2017)", "(IDSA/ATS 2019)", "(AF 2023)"), KB
clauses whose condition this patient does not have ("treat the cause (vomiting, laxative
misuse)" with no laxatives, "treat predisposing tinea pedis and oedema" with no tinea),
contentless checklist lines ("Documented: antibiotic duration") and filler. Each class is
checked on the named item rebuilt from ``cases synth --seed 41`` and, for the linter, on a
hand-made bad record.
"""

from __future__ import annotations

import pytest

from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.wording import citation, spoken
from tests.build.kb_records import build_item, kb_record, lint_rules

SEED = 41


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _texts(rendered) -> list[str]:
    return [t.text for t in rendered.conversation.turns]


# ------------------------------------------------------------------ citations


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "titrate oxygen to SpO2 94-98% (88-92% if at risk of hypercapnia) (BTS 2017); "
            "treat for at least 5 days (IDSA/ATS 2019).",
            "titrate oxygen to SpO2 94-98% (88-92% if at risk of hypercapnia); "
            "treat for at least 5 days.",
        ),
        ("oxygen to SpO2 92-96% (NIH); prone", "oxygen to SpO2 92-96%; prone"),
        ("while the cancer is active (NICE NG158; ASCO 2023).", "while the cancer is active."),
        ("follow-up (ESC 2019 PE guideline)", "follow-up"),
        ("risk factors (ATS/CDC/IDSA 2016: diabetes, HIV)", "risk factors (diabetes, HIV)"),
        ("thiamine (e.g. 200-500 mg IV; EFNS 2010)", "thiamine (e.g. 200-500 mg IV)"),
        # not citations: an equation's name, a numbered list, a plain parenthesis
        ("estimated GFR (CKD-EPI 2021) 20", "estimated GFR (CKD-EPI 2021) 20"),
        ("(40-55 kg 1000 mg; 56-75 kg 1500 mg)", "(40-55 kg 1000 mg; 56-75 kg 1500 mg)"),
        ("stool test (NAAT) for C. difficile", "stool test (NAAT) for C. difficile"),
    ],
)
def test_spoken_drops_citations_only(text, said):
    assert spoken(text) == said
    assert citation(said) is None


def test_every_kb_citation_in_a_step_is_recognised(kb):
    """Every parenthesis of a KB step, advice or checklist item that names a guideline
    year is removed by ``spoken`` (a new citation style added to the KB is caught here)."""
    import re

    year = re.compile(r"\([^()]*\b(?:19|20)\d\d\b[^()]*\)")
    texts = []
    for c in kb.conditions.values():
        texts += c.treatments.actions + c.next_actions + [i.item for i in c.standard_of_care]
    left = [t for t in texts if year.search(spoken(t)) and "CKD-EPI" not in t]
    assert left == []


@pytest.mark.parametrize("index", [336, 16, 145, 64])
def test_41_reviewed_items_say_no_citation(kb, index):
    """41-000336 '(BTS 2017)', '(IDSA/ATS 2019)'; 41-000016 '(AF 2023)'; 41-000145
    '(ATS/CDC/IDSA 2016)'; 41-000064 '(ACC/AHA 2017)': the plan says the step, the KB
    keeps its source."""
    case, rendered, _ = build_item(kb, index, SEED)
    assert [t for t in _texts(rendered) if citation(t)] == []
    cond = kb.conditions[case.conditions[0].code]
    cited = [a for a in cond.treatments.actions + cond.next_actions if citation(a)]
    assert cited, "the KB keeps its citations (provenance)"


def test_41_000336_plan_keeps_the_step_without_its_source(kb):
    _, rendered, _ = build_item(kb, 336, SEED)
    plan = _texts(rendered)[rendered.anchors["plan"]]
    # (COPD in the history: the target that applies, not both)
    assert "titrate oxygen to SpO2 88-92%, as there is a risk of hypercapnia;" in plan
    assert "treat for at least 5 days and until clinically stable;" in plan
    assert "BTS" not in plan and "IDSA" not in plan


def test_lint_spoken_citation_on_a_hand_made_record(kb):
    case, conv = kb_record("community_acquired_pneumonia")
    assert "spoken-citation" not in lint_rules(kb, case, conv)
    plan = next(t for t in conv["turns"] if t["text"].startswith("Plan:"))
    plan["text"] = plan["text"].rstrip(".") + "; treat for at least 5 days (IDSA/ATS 2019)."
    assert "spoken-citation" in lint_rules(kb, case, conv)


# ------------------------------------------------------------------ causes this record lacks


def test_41_000078_plan_treats_only_the_documented_cause(kb):
    """Hypokalaemia with recurrent vomiting: 'treat the cause (vomiting, laxative
    misuse)' named laxative misuse, which the record never mentions."""
    case, rendered, _ = build_item(kb, 78, SEED)
    assert case.conditions[0].code == "hypokalemia"
    plan = _texts(rendered)[rendered.anchors["plan"]]
    assert "treat the cause (vomiting)" in plan
    assert not any("laxative" in t.lower() for t in _texts(rendered))


def test_41_000228_no_tinea_pedis_treated_where_none_was_found(kb):
    """Cellulitis with a leg ulcer: 'treat predisposing tinea pedis and oedema' with no
    tinea and no chronic oedema in the record (the ultrasound's subcutaneous oedema is the
    infection's own)."""
    case, rendered, _ = build_item(kb, 228, SEED)
    assert case.conditions[0].code == "cellulitis"
    assert not any("tinea" in t.lower() for t in _texts(rendered))
    assert "predisposing" not in _texts(rendered)[rendered.anchors["plan"]]


def test_41_000396_tinea_found_is_treated(kb):
    """The same step stays where the history has tinea pedis and venous insufficiency."""
    _, rendered, _ = build_item(kb, 396, SEED)
    assert "treat predisposing tinea pedis and oedema" in _texts(rendered)[rendered.anchors["plan"]]


@pytest.mark.parametrize(
    ("step", "record", "said"),
    [
        (
            "treat the cause (vomiting, laxative misuse)",
            "I take a lot of laxatives.",
            "treat the cause (laxative misuse)",
        ),
        (
            "treat the cause (vomiting, laxative misuse)",
            "no vomiting",
            "look for and treat the cause",
        ),
        (
            "treat predisposing tinea pedis and oedema",
            "no pedal oedema; interdigital fissuring",
            "treat predisposing tinea pedis",
        ),
        ("treat predisposing tinea pedis and oedema", "leg ulcer", None),
        (
            "treat precipitants (infection, hypovolaemia)",
            "",
            "treat precipitants (infection, hypovolaemia)",
        ),
    ],
)
def test_for_patient(step, record, said):
    from behaviorsft.sources.wording import for_patient

    assert for_patient(step, record) == said


def test_lint_cause_undocumented_on_a_hand_made_record(kb):
    case, conv = kb_record("hypokalemia")
    assert "cause-undocumented" not in lint_rules(kb, case, conv)
    plan = next(t for t in conv["turns"] if t["text"].startswith("Plan:"))
    plan["text"] = plan["text"].rstrip(".") + "; treat the cause (vomiting, laxative misuse)."
    assert "cause-undocumented" in lint_rules(kb, case, conv)


def test_dvt_plan_says_no_stockings_not_a_guideline_sentence(kb):
    """41-000337: 'compression stockings are not used to prevent post-thrombotic
    syndrome' was a guideline sentence spoken as the plan."""
    _, rendered, _ = build_item(kb, 337, SEED)
    plan = _texts(rendered)[rendered.anchors["plan"]]
    assert "no compression stockings" in plan
    assert "are not used" not in plan


# ------------------------------------------------------------------ checklist lines with content


def test_41_000396_no_duration_documented_where_none_is_stated(kb):
    """Cellulitis on clindamycin with no course length: 'Documented: antibiotic duration'
    (turns 32-34) named no duration; the line is left out."""
    _, rendered, _ = build_item(kb, 396, SEED)
    texts = _texts(rendered)
    assert not any("antibiotic duration" in t for t in texts)
    assert not any(t.startswith("Documented: ") and "days" in t for t in texts)


def test_41_000228_duration_documented_with_the_plan_s_duration(kb):
    """Cephalexin for 5 days: the checklist names the duration it documents; no
    fissuring is said treated where none was found."""
    _, rendered, _ = build_item(kb, 228, SEED)
    care = _texts(rendered)[rendered.anchors["care"] :]
    assert any(t.endswith(": antibiotic duration of five days.") for t in care)
    assert not any("fissuring" in t for t in care)
    assert any(t.endswith(": interdigital toe spaces examined.") for t in care)


@pytest.mark.parametrize(
    ("item", "record", "said"),
    [
        (
            "antibiotic duration documented",
            "Plan: Cephalexin 500 mg PO q6h for 5 days.",
            "antibiotic duration of five days",
        ),
        ("antibiotic duration documented", "Plan: Clindamycin 300 mg PO q6-8h.", None),
        ("CHA2DS2-VASc stroke risk", "anything", None),
        ("TG18 severity grade", "anything", None),
        (
            "clinical volume status",
            "On examination: clinically euvolaemic (moist mucosa)",
            "clinically euvolaemic on examination",
        ),
        (
            "door-to-balloon time",
            "primary PCI done 65 minutes after arrival (door-to-balloon time recorded)",
            "door-to-balloon time of 65 minutes",
        ),
        ("12-lead ECG to confirm the rhythm", "", "12-lead ECG to confirm the rhythm"),
    ],
)
def test_checklist_item(item, record, said):
    from behaviorsft.sources.wording import checklist_item

    assert checklist_item(item, record) == said


def test_lint_checklist_no_value_on_a_hand_made_record(kb):
    case, conv = kb_record("cellulitis")
    assert "checklist-no-value" not in lint_rules(kb, case, conv)
    care = next(t for t in conv["turns"] if t["text"].startswith(("Documented:", "Done and")))
    care["text"] = "Documented: antibiotic duration."
    assert "checklist-no-value" in lint_rules(kb, case, conv)


# ------------------------------------------------------------------ filler


@pytest.mark.parametrize("index", [396, 336])
def test_41_no_filler_claims_observations_never_shown(kb, index):
    """41-000396 / 41-000336: 'Overnight observations were stable' / 'Stable overnight'
    with no observation shown; 'we'll review progress daily'."""
    from behaviorsft.sources.wording import FILLER

    _, rendered, _ = build_item(kb, index, SEED)
    texts = _texts(rendered)
    assert [t for t in texts if FILLER.search(t)] == []
    night = next(t for t in rendered.conversation.turns if t.role == "ward nurse")
    from behaviorsft.build.ward_turns import WARD_NIGHT

    assert night.text in WARD_NIGHT


def test_lint_filler_unshown_on_a_hand_made_record(kb):
    case, conv = kb_record("cellulitis")
    assert "filler-unshown" not in lint_rules(kb, case, conv)
    night = next(t for t in conv["turns"] if t["role"] == "ward nurse")
    night["text"] = "Overnight observations were stable."
    assert "filler-unshown" in lint_rules(kb, case, conv)


def test_41_000078_severity_statement_is_said_not_quoted(kb):
    """'not a single oral dose, started 30 minutes after arrival' was the guideline's
    contrast spoken as if speech: the attending says what is done and why."""
    _, rendered, _ = build_item(kb, 78, SEED)
    said = next(t for t in _texts(rendered) if t.startswith("ECG changes with potassium"))
    assert "not a single oral dose" not in said
    assert ", so the potassium chloride goes in IV" in said


def test_checklist_lines_are_said_as_day_0_s(kb):
    """43-000469 (round 10): 'Documented:' lines after the day-2 events read as day-2
    work; the resident first says they go back over the day-0 checklist."""
    from behaviorsft.build.conversation import CHECKLIST_INTRO

    _, rendered, _ = build_item(kb, 228, SEED)
    texts = _texts(rendered)
    care = rendered.anchors["care"]
    assert texts[care] == CHECKLIST_INTRO
    assert texts[care + 1].startswith(("Documented: ", "Done and recorded: "))
    assert texts.count(CHECKLIST_INTRO) == 1


def test_tg18_grade_is_said_not_cited(kb):
    """'(TG18)' after the cholecystectomy step cited the Tokyo guideline; the plan says this
    patient's grade, and the checklist lists the grade it documents."""
    from behaviorsft.build.conversation import render
    from behaviorsft.sources.synthetic import synthesize_case

    case = next(
        c
        for c in (synthesize_case(i, seed=7, kb=kb) for i in range(200))
        if c.conditions[0].code == "acute_cholecystitis"
    )
    texts = [t.text for t in render(case, kb, seed=7).conversation.turns]
    plan = next(t for t in texts if t.startswith("Plan:"))
    assert "(TG18)" not in plan
    assert "(TG18 grade II)" in plan  # a palpable tender gallbladder: grade II
    assert all(citation(t) is None for t in texts)


@pytest.mark.parametrize(
    ("labs", "sbp", "exam", "imaging", "days", "confused", "grade"),
    [
        ({"White blood cell count": 14}, 130, "right upper quadrant tenderness", "", 1, False, "I"),
        ({"White blood cell count": 19}, 130, "", "", 1, False, "II"),
        ({}, 130, "palpable tender gallbladder", "", 1, False, "II"),
        ({}, 130, "", "", 4, False, "II"),
        ({}, 130, "", "gangrenous gallbladder wall", 1, False, "II"),
        ({"Platelet count": 80}, 130, "", "", 1, False, "III"),
        ({}, 85, "", "", 1, False, "III"),
        ({}, 130, "", "", 1, True, "III"),
    ],
)
def test_tg18_grade(labs, sbp, exam, imaging, days, confused, grade):
    from behaviorsft.sources.severity import tg18_grade

    assert tg18_grade(labs, sbp, exam, imaging, days, confused) == grade


def test_41_000016_af_duration_clause_said_for_this_patient(kb):
    """'if AF > 48 h or of unknown duration, anticoagulate ... (AF 2023)': the record gives
    the onset (2 days), so the plan says the patient's case."""
    _, rendered, _ = build_item(kb, 16, SEED)
    plan = _texts(rendered)[rendered.anchors["plan"]]
    assert "if AF > 48 h" not in plan
    assert "AF for 2 days, so anticoagulate 3 weeks before elective cardioversion" in plan


@pytest.mark.parametrize(
    ("record", "said"),
    [
        ("Complaint: 3 days of palpitations.", "AF for 3 days, so anticoagulate"),
        ("Complaint: 12 hours of palpitations.", None),
        ("no onset given", "if AF > 48 h or of unknown duration, anticoagulate"),
    ],
)
def test_for_patient_af_duration(record, said):
    from behaviorsft.sources.wording import for_patient

    got = for_patient("if AF > 48 h or of unknown duration, anticoagulate", record)
    assert got == said


@pytest.mark.parametrize(
    ("record", "target"),
    [
        ("I have COPD and hypertension.", "SpO2 88-92%, as there is a risk of hypercapnia"),
        ("I have hypertension.", "SpO2 94-98%;"),
    ],
)
def test_oxygen_target_is_this_patient_s(record, target):
    """41-000420: a COPD patient's plan restated '94-98% (88-92% if at risk of
    hypercapnia)' without committing to either target."""
    from behaviorsft.sources.wording import for_patient

    said = for_patient(
        "titrate oxygen to SpO2 94-98% (88-92% if at risk of hypercapnia); x", record
    )
    assert said is not None and target in said and "if at risk" not in said
