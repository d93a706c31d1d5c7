"""Doses, regimens and level of care (review round 8): the plan gives each drug its full
regimen, the care setting matches the severity (sources/prescribing.py, severity.py;
lint_plan.py and lint_severity.py rules).

Regression tests rebuild the cases the round-8 review named (seed 37, ids 37-000NNN =
``synthesize_case(NNN, seed=37)``) and assert the defect is gone; unit tests give each rule
a record made bad by hand.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.lint import lint_records
from behaviorsft.sources import prescribing, severity
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case

KB = load_kb()
RULES = {
    "regimen-incomplete",
    "step-against-history",
    "care-without-drug",
    "hold-not-taken",
    "plan-missing-class",
    "review-below-severity",
    "admitted-outpatient",
    "care-below-severity",
}


@cache
def _built(index: int) -> tuple[Any, Any]:
    case = synthesize_case(index, seed=37, kb=KB)
    return case, render(case, KB, seed=37).conversation


def _dumps(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    case, conv = _built(index)
    return copy.deepcopy(case.model_dump(mode="json")), copy.deepcopy(conv.model_dump(mode="json"))


def _lint(case: dict[str, Any], conv: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    convs = [(1, conv)] if conv is not None else []
    found = lint_records([(1, case)], convs, kb=KB)
    return [(f.rule, f.message) for f in found if f.rule in RULES]


def _rules(case: dict[str, Any], conv: dict[str, Any] | None = None) -> set[str]:
    return {r for r, _ in _lint(case, conv)}


def _texts(index: int) -> list[str]:
    return [t.text for t in _built(index)[1].turns]


def _turn(index: int, start: str) -> str:
    return next(t for t in _texts(index) if t.startswith(start))


def _edit(conv: dict[str, Any], start: str, text: str) -> None:
    turn = next(t for t in conv["turns"] if t["text"].startswith(start))
    turn["text"] = text


# ----------------------------------------------------------------------------- rebuilt cases


@pytest.mark.parametrize(
    ("index", "drug", "first", "then"),
    [
        (442, "Meropenem", "1 g IV", "0.5 g IV q12h"),
        (64, "Piperacillin-tazobactam", "4.5 g IV", "2.25 g IV q6h"),
    ],
)
def test_37_septic_shock_first_antibiotic_dose_is_full(
    index: int, drug: str, first: str, then: str
) -> None:
    plan = _turn(index, "Plan: ")
    said = plan[plan.index(drug) :]
    # the renal adjustment for the maintenance doses, the first dose in full
    assert said.startswith(f"{drug} {then} {prescribing.FULL_FIRST} ({first};")
    assert _lint(*_dumps(index)) == []


def test_37_000557_adrenal_crisis_hydrocortisone_has_its_regimen() -> None:
    plan = _turn(557, "Plan: ")
    assert "Hydrocortisone 100 mg IV once, then 50 mg IV q6h" in plan


def test_37_000025_thyroid_storm_loading_doses_have_their_regimen() -> None:
    plan = _turn(25, "Plan: ")
    assert "Propylthiouracil 500 mg PO once, then 250 mg PO q4h" in plan
    assert "Hydrocortisone 300 mg IV once, then 100 mg IV q8h" in plan
    assert _lint(*_dumps(25)) == []


def test_every_kb_stat_dose_with_a_regimen_says_then() -> None:
    """Every 'once' KB dose whose note continues ('then ...', 'loading') has its ``then``."""
    for drug in KB.drugs.values():
        for d in drug.doses:
            note = (d.note or "").lower()
            if d.frequency == "once" and ("then" in note or "loading" in note):
                assert d.then, (drug.id, d)


@pytest.mark.parametrize(
    ("index", "unit"),
    [
        (568, "intensive care unit"),
        (64, "intensive care unit"),
        (25, "intensive care unit"),
        (557, "high-dependency unit"),
        (465, "coronary care unit"),
    ],
)
def test_37_critical_cases_get_their_unit_and_its_review(index: int, unit: str) -> None:
    texts = _texts(index)
    family = _turn(index, "We think this is")
    assert severity.WARD_REVIEW not in family and f"in the {unit}, with" in family
    assert not any("on the ward" in t for t in texts)
    assert not any(t.role == "physiotherapist" for t in _built(index)[1].turns)
    assert not any(e.kind == "physiotherapy" for e in _built(index)[0].timeline)
    assert _lint(*_dumps(index)) == []


def test_37_000099_anaphylaxis_observed_not_reviewed_daily_and_no_physiotherapy() -> None:
    family = _turn(99, "We think this is")
    assert severity.WARD_REVIEW not in family and "12 hours" in family
    assert not any(t.role == "physiotherapist" for t in _built(99)[1].turns)


def test_37_000210_cystitis_is_treated_from_the_emergency_department() -> None:
    case, conv = _built(210)
    texts = " ".join(t.text for t in conv.turns).lower()
    for admitted in ("admission bloods", "ward round", "overnight", "consult review"):
        assert admitted not in texts, admitted
    assert "discharged home" in texts and "telephone follow-up" in texts
    assert not any(e.kind in ("consult", "reconciliation", "physiotherapy") for e in case.timeline)
    assert _lint(*_dumps(210)) == []


def test_37_000572_hypokalaemia_with_ecg_changes_is_replaced_iv() -> None:
    case, conv = _built(572)
    kcl = [m for m in case.medications if m.name == "Potassium chloride"]
    assert kcl and all(m.route == "IV" for m in kcl)
    texts = " ".join(t.text for t in conv.turns)
    assert "rechecked every 4-6 h" in texts and "magnesium" in texts
    # no diuretic advice for a patient on no diuretic
    assert "diuretic" not in texts.lower()
    assert _lint(*_dumps(572)) == []


def test_37_000432_cancer_associated_dvt_is_anticoagulated_for_6_months() -> None:
    texts = " ".join(_texts(432))
    assert "at least 3 months" not in texts and "provoked" not in texts
    assert "at least 6 months and for as long as the cancer is active" in texts
    assert _lint(*_dumps(432)) == []


@pytest.mark.parametrize("index", [206, 416])
def test_37_endocarditis_with_a_glycopeptide_allergy_gets_daptomycin(index: int) -> None:
    case, _ = _built(index)
    plan = [m.name for m in case.medications if m.indication == case.final_diagnosis]
    assert plan == ["Daptomycin"]
    check = _turn(index, "I've checked the plan")
    assert "daptomycin in place of vancomycin, keeping the MRSA cover" in check
    assert _lint(*_dumps(index)) == []


# ----------------------------------------------------------------------------- rules


def test_rule_regimen_incomplete_stat_dose() -> None:
    case, conv = _dumps(557)
    plan = _turn(557, "Plan: ")
    assert "regimen-incomplete" not in _rules(case, conv)
    _edit(conv, "Plan: ", plan.replace(", then 50 mg IV q6h (200 mg per 24 h)", ""))
    assert "regimen-incomplete" in _rules(case, conv)


def test_rule_regimen_incomplete_reduced_first_dose() -> None:
    # (37-000568 was the meropenem case until session 11's history changes redrew it)
    case, conv = _dumps(442)
    plan = _turn(442, "Plan: ")
    said = plan[plan.index("Meropenem") :].split(";")[0]
    _edit(conv, "Plan: ", plan.replace(said, "Meropenem 0.5 g IV q12h"))
    found = _lint(case, conv)
    assert ("regimen-incomplete" in {r for r, _ in found}) and any(
        "first dose is given in full" in m for _, m in found
    )


def test_rule_step_against_history() -> None:
    case, conv = _dumps(432)
    _edit(conv, "Day 1", "Day 1: From our side: anticoagulate for at least 3 months (provoked).")
    assert "step-against-history" in _rules(case, conv)
    case["facts"] = [f for f in case["facts"] if "cancer" not in f]
    for section in case["sections"]:
        section["text"] = section["text"].replace("active cancer", "recent surgery")
    assert "step-against-history" not in _rules(case, conv)


def test_rule_care_without_drug() -> None:
    case, conv = _dumps(572)
    assert any("IV potassium rate" in t["text"] for t in conv["turns"])
    assert "care-without-drug" not in _rules(case, conv)
    for m in case["medications"]:
        if m["name"] == "Potassium chloride":
            m.update(route="PO", dose="20 mEq", dose_value=20, dose_unit="mEq", frequency="once")
    assert "care-without-drug" in _rules(case, conv)


def test_rule_diuretic_advice_for_no_diuretic() -> None:
    case, conv = _dumps(572)
    _edit(conv, "Day 2", "Day 2 ward round. Plan: treat the cause (adjust diuretic).")
    assert "hold-not-taken" in _rules(case, conv)
    advice = "add or switch to a potassium-sparing diuretic if diuretic-induced and persistent"
    assert prescribing.untaken(advice, ["Metoprolol tartrate beta-blocker"]) is not None
    assert prescribing.untaken(advice, ["Hydrochlorothiazide thiazide diuretic"]) is None
    action = "treat the cause (vomiting) and adjust the diuretic if diuretic-induced"
    assert prescribing.drop_untaken([action], []) == ["treat the cause (vomiting)"]


def test_rule_endocarditis_without_mrsa_cover() -> None:
    case, _ = _dumps(206)
    for m in case["medications"]:
        if m["name"] == "Daptomycin":
            m.update(
                name="Cefazolin",
                drug_class="first-generation cephalosporin",
                dose="1 g",
                dose_value=1,
                dose_unit="g",
                frequency="q8h",
            )
    assert any("MRSA cover" in m for r, m in _lint(case) if r == "plan-missing-class")


def test_rule_review_below_severity() -> None:
    case, conv = _dumps(465)
    assert "review-below-severity" not in _rules(case, conv)
    _edit(
        conv,
        "We think this is",
        f"We think this is a heart attack; treatment has started and {severity.WARD_REVIEW}.",
    )
    assert "review-below-severity" in _rules(case, conv)


def test_rule_admitted_outpatient() -> None:
    case, conv = _dumps(210)
    assert "admitted-outpatient" not in _rules(case, conv)
    case["timeline"].append({"day": 2, "kind": "review", "text": "Ward round review of progress."})
    assert "admitted-outpatient" in _rules(case, conv)


def test_regimen_text_keeps_a_renal_regimen_with_its_own_loading_and_the_route() -> None:
    cap = "community_acquired_pneumonia"
    loaded = "Levofloxacin 750 mg PO once, then 500 mg q48h"
    said = prescribing.regimen_text(
        KB, cap, "Levofloxacin", 750, "mg", "PO", "once, then 500 mg q48h", loaded
    )
    assert said == loaded
    iv = prescribing.regimen_text(
        KB, cap, "Levofloxacin", 750, "mg", "IV", "q48h", "Levofloxacin 750 mg IV q48h"
    )
    assert iv.startswith(f"Levofloxacin 750 mg IV q48h {prescribing.FULL_FIRST} (750 mg IV;")
    usual = "Meropenem 1 g IV q8h"  # a KB dose as it stands: no renal adjustment made
    assert prescribing.regimen_text(KB, "sepsis", "Meropenem", 1, "g", "IV", "q8h", usual) == usual


def test_37_000084_a_short_course_says_its_length() -> None:
    plan = _turn(84, "Plan: ")
    assert "Nitrofurantoin (monohydrate/macrocrystals) 100 mg PO q12h for 5 days" in plan


@pytest.mark.parametrize(
    ("index", "unit"), [(8, "high-dependency unit"), (52, "high-dependency unit")]
)
def test_37_shocked_bleed_and_severe_dka_are_in_a_unit(index: int, unit: str) -> None:
    """37-000008: an upper GI bleed with SBP 88 'stable overnight'; 37-000052: severe DKA
    'reviewed daily'."""
    family = _turn(index, "We think this is")
    assert severity.WARD_REVIEW not in family and f"in the {unit}, with" in family
    assert not any("on the ward" in t for t in _texts(index))
    assert _lint(*_dumps(index)) == []


def test_37_000223_hypoglycaemia_on_a_sulfonylurea_is_monitored_not_reviewed_daily() -> None:
    family = _turn(223, "We think this is")
    assert severity.WARD_REVIEW not in family and "sulfonylurea" in family
