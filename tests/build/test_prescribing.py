"""Prescribing coherence (sources/prescribing.py) and its plan-linter rules (lint_plan.py).

The regression tests rebuild the cases the session-8 clinician review named (seed 17, ids
17-000NNN) and assert the defect is gone; the unit tests give each rule a minimal
hand-made bad record, and a generated sample gives none of these findings.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.lint import lint_records
from behaviorsft.build.lint_plan import cockcroft_gault, egfr
from behaviorsft.build.tasks import case_tasks
from behaviorsft.sources import prescribing
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.patient import record_weight
from behaviorsft.sources.synthetic import antibacterial, synthesize_case
from behaviorsft.taxonomy import TaskType

KB = load_kb()
RULES = {
    "plan-overlap",
    "conditional-unmet",
    "drug-too-late",
    "sick-day-continued",
    "hold-not-taken",
    "step-without-indication",
}


def _built(index: int) -> tuple[Any, Any]:
    case = synthesize_case(index, seed=17, kb=KB)
    return case, render(case, KB, seed=17).conversation


def _plan(case: Any) -> list[str]:
    by_name = {d.name: d.id for d in KB.drugs.values()}
    return [by_name[m.name] for m in case.medications if m.indication == case.final_diagnosis]


def _lint(case: Any, conv: Any | None = None) -> list[str]:
    convs = [(1, conv.model_dump(mode="json"))] if conv is not None else []
    found = lint_records([(1, case.model_dump(mode="json"))], convs, kb=KB)
    return [f.rule for f in found if f.rule in RULES]


def _turn(conv: Any, anchor_text: str) -> str:
    return next(t.text for t in conv.turns if t.text.startswith(anchor_text))


# ----------------------------------------------------------------------------- rebuilt cases


def test_17_000201_fluoroquinolone_given_alone():
    case, conv = _built(201)
    assert [a.substance for a in case.allergies] == ["Cephalosporins"]
    plan = _plan(case)
    assert "levofloxacin" in plan  # monotherapy for a cephalosporin allergy
    assert [d for d in plan if antibacterial(KB.drug(d))] == ["levofloxacin"]
    assert "azithromycin" not in plan
    assert _lint(case, conv) == []


def test_17_000285_macrolide_allergy_keeps_beta_lactam_with_doxycycline():
    case, conv = _built(285)
    assert [a.substance for a in case.allergies] == ["Macrolides"]
    plan = _plan(case)
    assert "ceftriaxone" in plan and "doxycycline" in plan
    assert "levofloxacin" not in plan  # no dual beta-lactam + fluoroquinolone, none at 89
    assert _lint(case, conv) == []


def test_fluoroquinolone_caution_in_older_adults():
    """17-000285 (review): levofloxacin 750 mg at 89 with its risks unaddressed."""
    plan = [("Levofloxacin", "fluoroquinolone")]
    said = prescribing.cautions(plan, 89)
    assert len(said) == 1 and "tendon rupture" in said[0] and "89 years" in said[0]
    assert prescribing.cautions(plan, 46) == []
    assert prescribing.cautions([("Ceftriaxone", "third-generation cephalosporin")], 89) == []


def test_17_000027_no_listeria_cover_at_28():
    case, conv = _built(27)
    assert case.demographics.age_years == 28
    plan = _plan(case)
    assert "ampicillin" not in plan
    assert "meropenem" in plan  # for ceftriaxone in the cephalosporin allergy
    assert "conditional-unmet" not in _lint(case, conv)


def test_listeria_cover_added_over_50():
    """The other half of the condition: meningitis over 50 gets ampicillin (unless its
    allergy bars it or a carbapenem already covers Listeria)."""
    seen = 0
    for i in range(0, 1500, 42):  # bacterial meningitis recurs every 42 cases of a seed
        case = synthesize_case(i + 27, seed=17, kb=KB)
        if case.conditions[0].code != "bacterial_meningitis":
            continue
        plan = _plan(case)
        over = (case.demographics.age_years or 0) > 50
        barred = any(a.substance in ("Penicillins",) for a in case.allergies)
        if over and not barred and "meropenem" not in plan:
            assert "ampicillin" in plan, case.id
            seen += 1
        need = prescribing.CONDITIONAL[("bacterial_meningitis", "ampicillin")]
        if not need.met(case.demographics.age_years, " ".join(case.facts)):
            assert "ampicillin" not in plan, case.id  # 28 and well (17-000027)
    assert seen


def test_metformin_held_in_aki():
    """17-000440 (rhabdomyolysis, creatinine 1.97) had metformin continued; since the
    histories changed that case takes lisinopril (held, see below): the first seed-17 case
    on metformin with a kidney injury is checked instead."""
    for i in range(600):
        case = synthesize_case(i, seed=17, kb=KB)
        if any(m.name.startswith("Metformin") for m in case.medications) and any(
            f.startswith("Held: Metformin") and "kidney" in f for f in case.facts
        ):
            break
    else:
        raise AssertionError("no seed-17 case holds metformin for a kidney injury")
    conv = render(case, KB, seed=17).conversation
    plan = next(t.text for t in conv.turns if t.text.startswith("Plan:"))
    assert re.search(r"\bhold [^;]*\bmetformin\b", plan), plan  # (with lisinopril, say)
    recon = next(t.text for t in conv.turns if "medicines reconciliation done" in t.text)
    assert "metformin held" in recon
    assert _lint(case, conv) == []


def test_17_000592_lisinopril_held_with_aki_and_vomiting():
    case, conv = _built(592)
    assert any(m.name == "Lisinopril" for m in case.medications)
    assert any(f.startswith("Held: Lisinopril") for f in case.facts)
    assert "hold lisinopril" in _turn(conv, "Plan:")
    assert _lint(case, conv) == []


def test_17_000277_hold_names_only_taken_drugs():
    case, conv = _built(277)
    taken = " ".join(m.name.lower() for m in case.medications)
    assert "metformin" not in taken and "lisinopril" not in taken
    plan = _turn(conv, "Plan:")
    assert "hold ACE inhibitor" not in plan and "metformin" not in plan
    # Since histories carry their treatment, this diabetic patient takes glipizide: the
    # hold names it (and nothing the patient does not take).
    held = [
        prescribing.short_name(f[len("Held: ") :].rsplit(" (", 1)[0])
        for f in case.facts
        if f.startswith("Held: ")
    ]
    if held:
        assert all(f"hold {name}" in plan for name in held), plan
    else:
        assert "no regular medicine to hold" in plan
    assert "hold-not-taken" not in _lint(case, conv)


def test_17_000341_gout_colchicine_timing_and_no_ult_without_indication():
    case, conv = _built(341)
    onset = -(case.timeline[0].day or 0)
    assert onset > 1.5
    plan = _plan(case)
    assert "colchicine" not in plan  # 4 days into the flare
    assert "prednisone" in plan  # NSAID allergy: the glucocorticoid of the same choice
    day2 = _turn(conv, "Day 2 ward round")
    assert "allopurinol" not in day2
    assert "no urate-lowering therapy yet" in day2
    # no "continue urate-lowering therapy ... if already taking it" for a patient on none
    assert "urate-lowering" not in _turn(conv, "Plan:")
    assert _lint(case, conv) == []


def test_gout_next_action_key_is_not_an_unindicated_allopurinol():
    """predictive_next_action keys no step the day-2 plan declines (17-000341: allopurinol
    with no recurrent flares, tophi or radiographic damage documented)."""
    seen = 0
    for i in range(341, 1500, 42):  # acute gout recurs every 42 cases of the seed
        case = synthesize_case(i, seed=17, kb=KB)
        if case.conditions[0].code != "acute_gout":
            continue
        seen += 1
        rendered = render(case, KB, seed=17)
        types = {TaskType.PREDICTIVE_NEXT_ACTION}
        for t in case_tasks(case, rendered, KB, seed=17, types=types):
            key = next(o.text for o in t.options if o.label == t.answer).lower()
            assert "allopurinol" not in key, case.id
            assert "when starting urate-lowering" not in key, case.id
    assert seen > 20


def test_17_000223_enoxaparin_by_creatinine_clearance():
    """eGFR 31 but Cockcroft-Gault clearance under 30 at 84 at the nominal 60 kg (the
    label's measure). The clearance is now worked out at the weight the record shows
    (sources/dosing.py): prophylaxis at the dose that clearance gives."""
    case, _ = _built(223)
    cr = next(f.value for f in case.findings if f.name == "Creatinine" and not f.day)
    assert egfr(cr, 84, "female") >= 30 > cockcroft_gault(cr, 84, "female")
    kg = record_weight(case.id, "female", [(s.title, s.text) for s in case.sections])
    enox = next(m for m in case.medications if m.name == "Enoxaparin")
    want = 30 if cockcroft_gault(cr, 84, "female", kg) < 30 else 40
    assert (enox.dose_value, enox.frequency) == (want, "once daily")
    lisinopril = next(m for m in case.medications if m.name == "Lisinopril")
    assert lisinopril.dose_value == (5 if want == 30 else 10)  # the home ACE inhibitor too


def test_renal_dose_rule_reads_creatinine_clearance():
    name = KB.conditions["acute_decompensated_heart_failure"].name
    enox = {**_med("Enoxaparin", name), "dose_value": 40, "dose_unit": "mg"}
    enox["frequency"] = "once daily"
    case = _case("acute_decompensated_heart_failure", [enox], age=84, findings=[_creatinine(1.63)])
    found = [f for f in lint_records([(1, case)], [], kb=KB) if f.rule == "renal-dose"]
    assert len(found) == 1
    kg = record_weight("hand:1", "female", [])  # the weight the record shows
    assert f"CrCl {cockcroft_gault(1.63, 84, 'female', kg):.0f}" in found[0].message


def test_generated_sample_has_no_prescribing_findings():
    cases = [synthesize_case(i, seed=7, kb=KB) for i in range(126)]
    convs = [render(c, KB, seed=7).conversation for c in cases]
    found = lint_records(
        [(i, c.model_dump(mode="json")) for i, c in enumerate(cases, 1)],
        [(i, c.model_dump(mode="json")) for i, c in enumerate(convs, 1)],
        kb=KB,
    )
    assert [str(f) for f in found if f.rule in RULES] == []


# ----------------------------------------------------------------------------- lint rules


def _med(name: str, indication: str, cls: str = "") -> dict[str, Any]:
    return {"name": name, "indication": indication, "drug_class": cls}


def _case(
    condition: str,
    meds: list[dict[str, Any]],
    *,
    age: int = 60,
    facts: list[str] = (),  # type: ignore[assignment]
    findings: list[dict[str, Any]] = (),  # type: ignore[assignment]
    onset: float = 1,
) -> dict[str, Any]:
    name = KB.conditions[condition].name
    return {
        "id": "hand:1",
        "demographics": {"age_years": age, "sex": "female"},
        "facts": list(facts),
        "sections": [],
        "medications": meds,
        "findings": list(findings),
        "timeline": [{"day": -onset, "kind": "symptom", "text": "Began."}],
        "conditions": [{"name": name, "code_system": "behaviorsft-kb", "code": condition}],
        "final_diagnosis": name,
    }


def _rules(case: dict[str, Any], turns: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    conv = {
        "case_id": case["id"],
        "turns": [
            {"index": i, "speaker": "Dr. A", "role": "attending physician", "text": t}
            for i, t in enumerate(turns)
        ],
    }
    found = lint_records([(1, case)], [(1, conv)] if turns else [], kb=KB)
    return [f.rule for f in found if f.rule in RULES]


@pytest.mark.parametrize(
    ("condition", "drugs"),
    [
        ("community_acquired_pneumonia", ["Levofloxacin", "Azithromycin"]),  # 17-000201
        ("community_acquired_pneumonia", ["Ceftriaxone", "Levofloxacin"]),  # 17-000285
        ("community_acquired_pneumonia", ["Ceftriaxone", "Azithromycin", "Doxycycline"]),
        ("acute_cholecystitis", ["Piperacillin-tazobactam", "Metronidazole"]),  # anaerobes
        ("acute_cholecystitis", ["Ceftriaxone", "Piperacillin-tazobactam"]),  # beta-lactams
        ("bacterial_meningitis", ["Ceftriaxone", "Meropenem", "Vancomycin"]),
        (
            "uncomplicated_cystitis",
            ["Nitrofurantoin (monohydrate/macrocrystals)", "Trimethoprim-sulfamethoxazole"],
        ),  # the example
    ],
)
def test_plan_overlap_rule(condition: str, drugs: list[str]):
    name = KB.conditions[condition].name
    by_name = {d.name: d for d in KB.drugs.values()}
    meds = [_med(d, name, by_name[d].drug_class) for d in drugs]
    assert _rules(_case(condition, meds)) == ["plan-overlap"]
    ok = [_med(drugs[0], name, by_name[drugs[0]].drug_class)]
    assert _rules(_case(condition, ok)) == []


def test_listeria_ampicillin_is_no_overlap():
    """Ampicillin added for Listeria with ceftriaxone is the standard pair (IDSA 2004)."""
    name = KB.conditions["bacterial_meningitis"].name
    meds = [_med(d, name) for d in ("Ceftriaxone", "Vancomycin", "Ampicillin")]
    assert _rules(_case("bacterial_meningitis", meds, age=67)) == []


def test_conditional_unmet_rule():
    name = KB.conditions["bacterial_meningitis"].name
    meds = [_med("Ceftriaxone", name), _med("Ampicillin", name)]
    assert _rules(_case("bacterial_meningitis", meds, age=28)) == ["conditional-unmet"]
    assert _rules(_case("bacterial_meningitis", meds, age=67)) == []
    immune = ["History: immunosuppression or asplenia."]
    assert _rules(_case("bacterial_meningitis", meds, age=28, facts=immune)) == []


def test_drug_too_late_rule():
    name = KB.conditions["acute_gout"].name
    meds = [_med("Colchicine", name)]
    assert _rules(_case("acute_gout", meds, onset=4)) == ["drug-too-late"]
    assert _rules(_case("acute_gout", meds, onset=1)) == []


def _creatinine(value: float) -> dict[str, Any]:
    return {"name": "Creatinine", "kind": "lab", "value": value, "day": 0}


def test_sick_day_continued_rule():
    meds = [_med("Metformin (immediate release)", "type 2 diabetes", "biguanide")]
    aki = [_creatinine(1.97)]
    assert _rules(_case("rhabdomyolysis", meds, findings=aki)) == ["sick-day-continued"]
    held = ["Held: Metformin (immediate release) (acute kidney injury)."]
    assert _rules(_case("rhabdomyolysis", meds, findings=aki, facts=held)) == []
    assert _rules(_case("rhabdomyolysis", meds, findings=[_creatinine(0.8)])) == []
    # vomiting alone (small bowel obstruction, 17-000592): the ACE inhibitor is held too
    sbo = KB.conditions["small_bowel_obstruction"].name
    ace = [_med("Lisinopril", "hypertension", "ACE inhibitor"), _med("LR", sbo)]
    vomits = ["Reports vomiting."]
    got = _rules(_case("small_bowel_obstruction", ace, facts=vomits))
    assert got == ["sick-day-continued"]


def test_sick_day_rule_follows_the_kb_hold_notes():
    """Metformin in sepsis is held (KB: 'hold in acute illness with hypoperfusion') even
    with a normal creatinine and no dehydrating complaint."""
    meds = [_med("Metformin (immediate release)", "type 2 diabetes", "biguanide")]
    assert _rules(_case("sepsis", meds, findings=[_creatinine(0.8)])) == ["sick-day-continued"]
    held = ["Held: Metformin (immediate release) (sepsis)."]
    assert _rules(_case("sepsis", meds, findings=[_creatinine(0.8)], facts=held)) == []


def test_sick_day_rule_spares_heart_failure_with_raised_creatinine():
    """ACE inhibitors are kept in decompensated heart failure (ACC/AHA/HFSA 2022)."""
    meds = [_med("Lisinopril", "hypertension", "ACE inhibitor")]
    case = _case("acute_decompensated_heart_failure", meds, findings=[_creatinine(1.63)])
    assert _rules(case) == []


def test_hold_not_taken_rule():
    name = KB.conditions["aki"].name
    meds = [_med("Atorvastatin", "hypercholesterolaemia", "HMG-CoA reductase inhibitor (statin)")]
    case = _case("aki", meds + [_med("Lactated Ringer's solution", name)])
    bad = "Plan: stop nephrotoxins (NSAIDs) and hold ACE inhibitor/ARB, diuretics and metformin."
    assert _rules(case, [bad]) == ["hold-not-taken"]
    assert _rules(case, ["Plan: stop nephrotoxins (NSAIDs); no regular medicine to hold."]) == []
    held = ["Held: Lisinopril (acute kidney injury)."]
    on_ace = _case("aki", [_med("Lisinopril", "hypertension", "ACE inhibitor")], facts=held)
    assert _rules(on_ace, ["Plan: hold ACE inhibitor."]) == []


def test_step_without_indication_rule():
    case = _case("acute_gout", [])
    day2 = "Day 2 ward round. Plan: start allopurinol at a low dose and titrate."
    assert _rules(case, [day2]) == ["step-without-indication"]
    tophi = _case("acute_gout", [], facts=["History: tophaceous gout."])
    assert _rules(tophi, [day2]) == []
    exam = [{"name": "Examination", "kind": "exam", "value_text": "no tophi"}]
    assert _rules(_case("acute_gout", [], findings=exam), [day2]) == ["step-without-indication"]


def test_hold_action_rewrites():
    action = (
        "stop nephrotoxins (NSAIDs, aminoglycosides) and hold ACE inhibitor/ARB, diuretics "
        "and metformin"
    )
    assert prescribing.hold_action(action, ["lisinopril"]) == (
        "stop nephrotoxins (NSAIDs, aminoglycosides) and hold lisinopril"
    )
    assert prescribing.hold_action(action, []) == (
        "stop nephrotoxins (NSAIDs, aminoglycosides); no regular medicine to hold"
    )


def test_no_diltiazem_for_rate_control_with_heart_failure_in_the_history():
    """29-000156 (round 6): IV diltiazem for AF in a patient with heart failure (on
    furosemide and dapagliflozin, BNP 536): the rate-control choice takes metoprolol."""
    case = synthesize_case(156, seed=29, kb=KB)
    assert any("heart failure" in f for f in case.facts if f.startswith("History"))
    plan = _plan(case)
    assert "diltiazem" not in plan and "metoprolol" in plan
    for i in range(0, 840, 2):
        case = synthesize_case(i, seed=29, kb=KB)
        if case.conditions[0].code == "atrial_fibrillation_rvr" and any(
            "heart failure" in f for f in case.facts if f.startswith("History")
        ):
            assert "diltiazem" not in _plan(case), case.id
