"""Histories with their treatment (sources/history.py; lint rules history-untreated,
history-lab-state and history-misfiled in build/lint_text.py).

The regression tests rebuild the cases of the session-7 clinician review (seed 17, ids in
the test names' docstrings) and check the defect is gone; the rule tests lint minimal
hand-made records that carry each defect.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.lint import LintFinding, lint_records
from behaviorsft.records import Case
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case

KB = load_kb()
HISTORY_RULES = ("history-untreated", "history-lab-state", "history-misfiled")
HF_GROUPS = ("loop diuretic", "ace inhibitor", "beta-blocker", "mineralocorticoid", "sglt2")


def _case(index: int) -> Case:
    return synthesize_case(index, seed=17, kb=KB)


def _history(case: Case) -> list[str]:
    return [f[len("History: ") : -1] for f in case.facts if f.startswith("History: ")]


def _home(case: Case) -> list[str]:
    """The regular medicines' "name class", lower-case (the admission plan left out)."""
    return [
        f"{m.name} {m.drug_class or ''}".lower()
        for m in case.medications
        if m.indication != case.final_diagnosis
    ]


def _history_findings(case: Case) -> list[str]:
    conv = render(case, KB, seed=17).conversation
    found = lint_records(
        [(1, case.model_dump(mode="json"))], [(1, conv.model_dump(mode="json"))], kb=KB
    )
    return [f"{f.rule}: {f.message}" for f in found if f.rule in HISTORY_RULES]


# ----------------------------------------------------------------------------- regressions


@pytest.mark.parametrize("index", [285, 433, 201, 223])
def test_heart_failure_in_the_history_has_its_standing_treatment(index: int) -> None:
    """17-000285 (89-year-old on 'no regular medication'), 17-000433 (HFrEF on nothing),
    17-000201 (no HF drug), 17-000223 (HFrEF with IHD on lisinopril alone)."""
    case = _case(index)
    assert any("heart failure" in h for h in _history(case))
    home = _home(case)
    groups = [g for g in HF_GROUPS if any(g in m for m in home)]
    assert len(groups) >= 2, (case.id, home)
    assert _history_findings(case) == []


def test_ischaemic_heart_disease_has_an_antiplatelet_or_statin() -> None:
    """17-000223: ischaemic heart disease beside heart failure, with nothing for it."""
    home = _home(_case(223))
    assert any("antiplatelet" in m or "statin" in m for m in home), home


def test_diabetes_has_a_glucose_lowering_drug_and_no_thionamide_allergy() -> None:
    """17-000277: diabetes mellitus on no glucose-lowering drug, allergic to thionamides
    with no thyroid history."""
    case = _case(277)
    assert any("diabetes" in h for h in _history(case))
    lowering = ("biguanide", "sulfonylurea", "insulin", "sglt2")
    assert any(any(w in m for w in lowering) for m in _home(case)), _home(case)
    assert all("thionamide" not in a.substance.lower() for a in case.allergies)
    assert _history_findings(case) == []


def test_immunosuppression_names_its_cause_and_drug() -> None:
    """17-000428: 'immunosuppressed' with no medication and no cause."""
    case = _case(428)
    history = _history(case)
    assert "immunosuppression" not in history
    assert any("rheumatoid arthritis" in h for h in history), history
    assert any("methotrexate" in m or "prednisone" in m for m in _home(case))


def test_copd_exacerbation_has_copd_and_an_inhaler_in_the_history() -> None:
    """17-000380: 85-year-old long-term smoker with a COPD exacerbation and no COPD."""
    case = _case(380)
    assert "COPD" in _history(case)
    assert any("muscarinic" in m or "beta2" in m for m in _home(case)), _home(case)
    assert _history_findings(case) == []


def test_hypoglycaemia_in_treated_diabetes_has_the_diabetes_and_its_drug() -> None:
    """17-000216: glucose 38 mg/dL in a non-diabetic on no medication."""
    case = _case(216)
    assert any("diabetes" in h for h in _history(case))
    assert any("sulfonylurea" in m or "insulin" in m for m in _home(case)), _home(case)


def test_a_chronically_raised_creatinine_comes_with_chronic_kidney_disease() -> None:
    """17-000216: creatinine 2.87 in a 50-year-old with no history."""
    case = _case(216)
    creatinine = next(f.value for f in case.findings if f.name == "Creatinine")
    assert creatinine is not None and creatinine > 1.3
    assert "chronic kidney disease" in _history(case)


@pytest.mark.parametrize(("index", "state"), [(440, "hypokalaemia"), (177, "hypomagnesaemia")])
def test_no_laboratory_state_as_a_past_condition(index: int, state: str) -> None:
    """17-000440 'hypokalaemia' in the history with potassium 6.2; 17-000177
    'hypomagnesaemia' as a chronic condition with no treatment."""
    case = _case(index)
    assert all(state not in h for h in _history(case))
    assert _history_findings(case) == []


@pytest.mark.parametrize(
    ("index", "said"),
    [
        # (the operation is named since round 8: sources/history.py SURGERY)
        (148, "I had an inguinal hernia repair 4 days ago."),
        # 17-000027's meningococcal contact is gone (its Gram stain shows pneumococci:
        # test_record_agreement); its remaining exposure is the alcohol use, told by his
        # wife since he is confused (sources/collateral.py)
        (27, "He has an alcohol problem."),
        (216, "had done much more exercise than usual."),  # (told by a relative)
        (197, "I use cocaine."),
    ],
)
def test_habits_and_recent_events_are_not_past_medical_history(index: int, said: str) -> None:
    """17-000148 recent surgery, 17-000027 meningococcal contact, 17-000216 exercise and
    alcohol, 17-000197 cocaine: said under their own question, not as past history."""
    case = _case(index)
    rendered = render(case, KB, seed=17)
    turns = rendered.conversation.turns
    assert said not in turns[rendered.anchors["history"]].text
    assert said in turns[rendered.anchors["exposures"]].text
    question = turns[rendered.anchors["exposures"] - 1].text
    assert re.search(r"smoke|drink|recent|set this off", question)
    assert _history_findings(case) == []


def test_a_trigger_is_not_reported_as_a_symptom() -> None:
    """17-000083: 'Yes, also onset after a fatty meal'."""
    case = _case(83)
    assert not any(f.startswith("Reports onset") for f in case.facts)
    assert any("after a fatty meal" in f for f in case.facts)


# ----------------------------------------------------------------------------- rules


def _record(
    history: list[str],
    *,
    condition: str = "community_acquired_pneumonia",
    diagnosis: str = "Community-acquired pneumonia",
    medications: list[dict[str, Any]] = (),  # type: ignore[assignment]
    findings: list[dict[str, Any]] = (),  # type: ignore[assignment]
    complaints: list[str] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    return {
        "id": "synthetic:17-000001",
        "demographics": {"age_years": 70, "sex": "female"},
        "conditions": [{"name": diagnosis, "code_system": "behaviorsft-kb", "code": condition}],
        "sections": [{"title": "Past history", "text": "; ".join(history) + "."}],
        "facts": [
            *(f"Reports {c}." for c in complaints),
            *(f"History: {h}." for h in history),
        ],
        "findings": list(findings),
        "medications": list(medications),
        "final_diagnosis": diagnosis,
    }


def _med(name: str, drug_class: str, indication: str) -> dict[str, Any]:
    return {"name": name, "drug_class": drug_class, "indication": indication}


def _rules(
    case: dict[str, Any], conv: dict[str, Any] | None = None, rule: str = ""
) -> list[LintFinding]:
    found = lint_records([(1, case)], [(1, conv)] if conv else [], kb=KB)
    return [f for f in found if f.rule == rule]


def test_history_untreated_flags_heart_failure_on_no_medicine() -> None:
    case = _record(["chronic heart failure"])
    hits = _rules(case, rule="history-untreated")
    assert len(hits) == 1 and "chronic heart failure" in hits[0].message
    case["medications"] = [
        _med("Furosemide", "loop diuretic", "chronic heart failure"),
        _med("Lisinopril", "ACE inhibitor", "chronic heart failure"),
    ]
    assert _rules(case, rule="history-untreated") == []


def test_history_untreated_wants_two_heart_failure_drugs() -> None:
    """One ACE inhibitor is not a heart-failure regimen (17-000223)."""
    case = _record(
        ["heart failure with reduced ejection fraction"],
        medications=[_med("Lisinopril", "ACE inhibitor", "hypertension")],
    )
    assert len(_rules(case, rule="history-untreated")) == 1


def test_history_untreated_does_not_count_the_admission_plan_for_another_disease() -> None:
    """17-000428: dexamethasone for COVID-19 does not explain 'immunosuppression'."""
    case = _record(
        ["immunosuppression"],
        condition="covid19_pneumonia",
        diagnosis="COVID-19 pneumonia",
        medications=[_med("Dexamethasone", "systemic glucocorticoid", "COVID-19 pneumonia")],
    )
    assert len(_rules(case, rule="history-untreated")) == 1


def test_history_untreated_flags_diabetes_on_no_glucose_lowering_drug() -> None:
    case = _record(["diabetes mellitus"], medications=[_med("Aspirin", "antiplatelet", "coronary")])
    assert len(_rules(case, rule="history-untreated")) == 1
    case["medications"].append(_med("Metformin", "biguanide", "diabetes mellitus"))
    assert _rules(case, rule="history-untreated") == []


def test_history_untreated_flags_an_admission_whose_chronic_disease_is_missing() -> None:
    """17-000380: a COPD exacerbation in a smoker with no COPD in the history."""
    case = _record(
        ["long smoking history"], condition="copd_exacerbation", diagnosis="COPD exacerbation"
    )
    hits = _rules(case, rule="history-untreated")
    assert len(hits) == 1 and "COPD" in hits[0].message


def test_history_lab_state_flags_hypokalaemia_with_a_high_potassium() -> None:
    """17-000440: 'hypokalaemia' as a past condition while potassium is 6.2."""
    potassium = {
        "name": "Potassium",
        "kind": "lab",
        "value": 6.2,
        "day": 0,
        "reference_range": {"low": 3.5, "high": 5.0},
    }
    case = _record(["hypokalaemia"], findings=[potassium])
    hits = _rules(case, rule="history-lab-state")
    assert len(hits) == 1 and "6.2" in hits[0].message
    potassium["value"] = 3.1
    assert _rules(case, rule="history-lab-state") == []


def _conv(*turns: tuple[str, str]) -> dict[str, Any]:
    return {
        "case_id": "synthetic:17-000001",
        "turns": [
            {"index": i, "speaker": role, "role": role, "text": text, "attachments": []}
            for i, (role, text) in enumerate(turns)
        ],
    }


def test_history_misfiled_flags_cocaine_as_past_medical_history() -> None:
    """17-000197: 'I use cocaine.' in answer to the past medical history question."""
    case = _record(["chronic kidney disease", "cocaine use"])
    said = _conv(
        ("emergency physician", "What about your past medical history?"),
        ("patient", "I have chronic kidney disease. I use cocaine."),
    )
    hits = _rules(case, said, rule="history-misfiled")
    assert len(hits) == 1 and hits[0].turn == 1
    asked_apart = _conv(
        ("emergency physician", "What about your past medical history?"),
        ("patient", "I have chronic kidney disease."),
        ("emergency physician", "Do you smoke, drink or use drugs?"),
        ("patient", "I use cocaine."),
    )
    assert _rules(case, asked_apart, rule="history-misfiled") == []


def test_history_misfiled_flags_a_trigger_reported_as_a_symptom() -> None:
    """17-000083: 'onset after a fatty meal' reported as a symptom."""
    case = _record(["obesity"], complaints=["fever", "onset after a fatty meal"])
    hits = _rules(case, rule="history-misfiled")
    assert len(hits) == 1 and "fatty meal" in hits[0].message


@pytest.mark.parametrize("index", [498, 750, 3942])
def test_a_history_medicine_is_dosed_by_the_clearance_rule_too(index: int) -> None:
    """7-000498/750/3942 (full seed-7 build): a hypertension history got lisinopril 10 mg at a
    Cockcroft-Gault clearance of 24-28 mL/min, which the KB's 'CrCl 10-30: start 5 mg' rule
    reduces: the history's renal check read the eGFR only. (The clearance is now worked out
    at the weight the record shows, sources/dosing.py: the dose follows that clearance.)"""
    from behaviorsft.build.lint_plan import cockcroft_gault
    from behaviorsft.sources.patient import record_weight

    case = synthesize_case(index, seed=7, kb=KB)
    found = lint_records([(1, case.model_dump(mode="json"))], [], kb=KB)
    assert [f.message for f in found if f.rule == "renal-dose"] == []
    assert case.demographics is not None
    age, sex = float(case.demographics.age_years or 0), case.demographics.sex
    kg = record_weight(case.id, sex, [(s.title, s.text) for s in case.sections])
    cr = next(f.value for f in case.findings if f.name == "Creatinine" and not f.day)
    assert cr is not None
    want = "5 mg" if cockcroft_gault(cr, age, sex, kg) < 30 else "10 mg"
    assert [m.dose for m in case.medications if m.name == "Lisinopril"] == [want]


def test_hypoglycaemia_comes_with_a_drug_that_can_cause_it() -> None:
    """23-000176 (round 5): severe hypoglycaemia blamed on 'treated diabetes' in a patient
    on metformin alone, which does not cause it: a sulfonylurea or insulin is on the list."""
    names = " ".join(m.name.lower() for m in synthesize_case(176, seed=23, kb=KB).medications)
    assert "glipizide" in names or "insulin" in names, names
    for i in range(0, 600, 3):
        case = synthesize_case(i, seed=23, kb=KB)
        if case.conditions[0].code == "hypoglycemia":
            names = " ".join(m.name.lower() for m in case.medications)
            assert "glipizide" in names or "insulin" in names, (case.id, names)


def test_a_known_diabetes_is_not_also_new_onset() -> None:
    """23-000466 (round 5): 'I have type 1 diabetes ... I've never been told I have
    diabetes' (DKA's risk factors 'type 1 diabetes' and 'new-onset diabetes' both drawn)."""
    from behaviorsft.sources.history import duplicates

    history = [f for f in synthesize_case(466, seed=23, kb=KB).facts if f.startswith("History")]
    assert "History: type 1 diabetes." in history
    assert not any("new-onset" in h for h in history)
    assert duplicates(["type 1 diabetes", "new-onset diabetes"], []) == ["new-onset diabetes"]
    assert duplicates(["new-onset diabetes", "hypertension"], []) == []
