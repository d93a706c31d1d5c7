"""The value, kinetics, timing, onset and report rules (build/lint_values.py).

Each defect test is a minimal hand-made case (or conversation) reproducing an item of the
session-7 clinician review (its id in the test name's docstring); the generated tests check
that synthetic records pass by construction.
"""

from __future__ import annotations

from typing import Any

import pytest

from behaviorsft.build import lint_plan, lint_severity
from behaviorsft.build.conversation import render
from behaviorsft.build.lint import LintFinding, lint_records
from behaviorsft.build.lint_values import (
    VALUE_RULES,
    ambiguous_report,
    calculated_osmolality,
    ckd_epi_2021,
    henderson_hasselbalch_ph,
)
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case, synthesize_cases

KB = load_kb()
EGFR = "Estimated GFR (CKD-EPI 2021)"


def _lab(name: str, value: float | None = None, text: str | None = None, day: float = 0) -> dict:
    return {"name": name, "kind": "lab", "value": value, "value_text": text, "day": day}


def _case(
    findings: list[dict[str, Any]],
    *,
    age: int = 60,
    sex: str = "male",
    condition: str = "sepsis",
    onset_days: float = 2,
    medications: list[dict[str, Any]] = (),  # type: ignore[assignment]
    timeline: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    return {
        "id": "synthetic:11-000000",
        "demographics": {"age_years": age, "sex": sex},
        "conditions": [{"name": condition, "code_system": "behaviorsft-kb", "code": condition}],
        "findings": findings,
        "medications": list(medications),
        "timeline": [
            {"day": -onset_days, "kind": "symptom", "text": "Symptoms began."},
            *timeline,
        ],
    }


SEVERITY_RULES = lint_severity.RULES


def _lint(case: dict[str, Any], conv: dict[str, Any] | None = None) -> list[LintFinding]:
    # these minimal cases have no plan: the plan and reasoning rules (lint_plan, tested in
    # test_lint_plan.py) and the care the severity requires (lint_severity, test_severity.py)
    # rightly flag that, and are left out here
    found = lint_records([(1, case)], [(1, conv)] if conv is not None else [], kb=KB)
    return [f for f in found if f.rule not in lint_plan.RULES and f.rule not in SEVERITY_RULES]


def _only(findings: list[LintFinding], *rules: str) -> list[LintFinding]:
    others = [f for f in findings if f.rule not in rules]
    assert not others, [f"{f.rule}: {f.message}" for f in others]
    for rule in rules:
        assert any(f.rule == rule for f in findings), f"no {rule} finding"
    return findings


# --------------------------------------------------------------------------- formulas


def test_ckd_epi_2021_for_the_92_year_old_man():
    """11-000012: creatinine 3.43 mg/dL, 92-year-old man -> about 16, not 27."""
    assert round(ckd_epi_2021(3.43, 92, "male")) == 16
    # a woman of 50 with creatinine 0.7 sits on the knot: 142 x 0.9938^50 x 1.012
    assert ckd_epi_2021(0.7, 50, "female") == pytest.approx(142 * 0.9938**50 * 1.012)


def test_osmolality_and_henderson_hasselbalch():
    assert calculated_osmolality(146, 995, 71) == pytest.approx(372.6, abs=0.1)
    assert henderson_hasselbalch_ph(65, 35) == pytest.approx(7.34, abs=0.01)


# --------------------------------------------------------------------------- derived values


@pytest.mark.parametrize(
    ("findings", "extra"),
    [
        # 11-000265: haematocrit 52.2% with haemoglobin 14.5 g/dL (3.6 x)
        ([_lab("Hematocrit", 52.2), _lab("Hemoglobin", 14.5)], {}),
        # 11-000012: eGFR 27 with creatinine 3.43 in a 92-year-old man (CKD-EPI 2021: 16)
        (
            [_lab("Creatinine", 3.43), _lab(EGFR, 27)],
            {"age": 92, "sex": "male"},
        ),
        # 11-000328: Na 146, glucose 995, BUN 71 (calculated ~373) with measured 328
        (
            [
                _lab("Sodium", 146),
                _lab("Glucose (serum/plasma)", 995),
                _lab("Blood urea nitrogen", 71),
                _lab("Serum osmolality (measured)", 328),
            ],
            {},
        ),
        # 11-000143: PaCO2 65 with HCO3 35 gives pH 7.34, reported 7.30
        (
            [
                _lab("pH (arterial)", 7.30),
                _lab("PaCO2", 65),
                _lab("Bicarbonate (arterial, calculated)", 35),
            ],
            {},
        ),
        # 11-000079: capillary glucose 172 with serum glucose 77 at the same time
        ([_lab("Capillary (fingerstick) glucose", 172), _lab("Glucose (serum/plasma)", 77)], {}),
        # DKA: pH 6.91 with bicarbonate 16 and no PaCO2 shown implies a PaCO2 of 81
        ([_lab("pH (arterial)", 6.91), _lab("Bicarbonate (total CO2)", 16)], {}),
        # an anion gap that is not Na - (Cl + HCO3)
        (
            [
                _lab("Sodium", 140),
                _lab("Chloride", 100),
                _lab("Bicarbonate (total CO2)", 24),
                _lab("Anion gap", 25),
            ],
            {},
        ),
    ],
)
def test_a_derived_value_that_disagrees_with_its_inputs(findings, extra):
    names = {lab.name for lab in KB.labs.values()}
    assert all(f["name"] in names for f in findings)  # the KB's display names
    hits = _only(_lint(_case(findings, **extra)), "derived-value-mismatch")
    assert len(hits) == 1


def test_consistent_derived_values_pass():
    findings = [
        _lab("Hematocrit", 43.5),
        _lab("Hemoglobin", 14.5),
        _lab("Creatinine", 3.43),
        _lab(EGFR, 16),
        _lab("Sodium", 146),
        _lab("Glucose (serum/plasma)", 995),
        _lab("Blood urea nitrogen", 71),
        _lab("Serum osmolality (measured)", 376),
        _lab("Capillary (fingerstick) glucose", 1010),
    ]
    assert _lint(_case(findings, age=92)) == []


# --------------------------------------------------------------------------- kinetics


@pytest.mark.parametrize(
    ("name", "day0", "day1"),
    [
        ("Hemoglobin", 8.1, 10.7),  # 11-000308: +2.6 g/dL overnight, no transfusion
        ("C-reactive protein", 44, 23),  # 11-000192: CRP halves in 24 h
        ("Thyroid-stimulating hormone", 0.01, 0.159),  # 11-000330: TSH within a day
        ("Sodium", 118, 131),  # +13 mmol/L in 24 h: past the correction limit
        ("Serum tryptase", 41.2, 25.8),  # 11-000097: still raised a day later (t1/2 ~2 h)
    ],
)
def test_a_day_over_day_change_faster_than_the_kinetics(name, day0, day1):
    case = _case([_lab(name, day0, day=0), _lab(name, day1, day=1)])
    hits = _only(_lint(case), "kinetics-implausible")
    assert name in hits[0].message


def test_troponin_falling_the_day_after_a_stemi_that_began_hours_ago():
    name = "High-sensitivity troponin T"
    falling = [_lab(name, 900, day=0), _lab(name, 500, day=1)]
    hits = _only(
        _lint(_case(falling, condition="stemi", onset_days=3 / 24)), "kinetics-implausible"
    )
    assert "peaks at 12-24 h" in hits[0].message
    rising = [_lab(name, 900, day=0), _lab(name, 2400, day=1)]
    assert _lint(_case(rising, condition="stemi", onset_days=3 / 24)) == []


def test_a_haemoglobin_rise_after_a_transfusion_is_allowed():
    case = _case(
        [_lab("Hemoglobin", 6.8, day=0), _lab("Hemoglobin", 8.9, day=1)],
        timeline=[{"day": 0, "kind": "procedure", "text": "Two units of red cells transfused."}],
    )
    assert _lint(case) == []


# --------------------------------------------------------------------------- result timing


def test_a_blood_culture_resulted_in_the_admission_bloods():
    """11-000064 / 11-000387: a culture flagging on day 0; pending, then day 1, passes."""
    early = _case([_lab("Blood culture", text="gram-positive cocci in clusters")])
    _only(_lint(early), "result-timing")
    timed = _case(
        [
            _lab("Blood culture", text="pending"),
            _lab("Blood culture", text="gram-positive cocci in clusters", day=1),
        ]
    )
    assert _lint(timed) == []


def test_positive_blood_cultures_cited_while_they_are_pending():
    """11-000568: the attending argues from positive blood cultures on day 0; with the
    cultures pending (as generated now) that argument comes before its result."""
    rows = [["Blood culture", "pending", "", ""]]
    table = {"kind": "table", "title": "microbiology (day 0)", "rows": rows}
    texts = [
        ("medical resident", "The first results are in.", [table]),
        (
            "attending physician",
            "Sepsis fits best given fever and hypotension. Haemorrhagic shock is less likely "
            "given fever, leukocytosis and positive blood cultures.",
            [],
        ),
        ("attending physician", "Repeat blood cultures if the fever persists.", []),
    ]
    turns = [
        {"index": i, "speaker": "Dr. A", "role": role, "text": text, "attachments": att}
        for i, (role, text, att) in enumerate(texts)
    ]
    conv = {"case_id": "synthetic:11-000000", "turns": turns}
    hits = _only(_lint(_case([]), conv), "result-timing")
    assert [h.turn for h in hits] == [1]
    rows[0][1] = "gram-negative rods"  # resulted: it may be cited
    assert _lint(_case([]), conv) == []


def _conv(*texts: str, table_at: int) -> dict[str, Any]:
    turns = []
    for i, text in enumerate(texts):
        rows = [["Ascitic fluid neutrophil (PMN) count", "308", "/uL", "0-250"]]
        attachments = [{"kind": "table", "title": "body_fluid (day 0)", "rows": rows}]
        turns.append(
            {
                "index": i,
                "speaker": "Dr. A",
                "role": "medical resident",
                "text": text,
                "attachments": attachments if i == table_at else [],
            }
        )
    return {"case_id": "synthetic:11-000000", "turns": turns}


def test_an_ascitic_count_with_no_tap_done():
    """11-000387: the PMN count is back; the paracentesis is only 'documented' later."""
    untapped = _conv(
        "Bloods please.",
        "The first results are in.",
        "Documented: diagnostic paracentesis.",
        table_at=1,
    )
    case = _case([], condition="spontaneous_bacterial_peritonitis")
    _only(_lint(case, untapped), "sample-not-taken")
    tapped = _conv(
        "Admission bloods and a diagnostic paracentesis please.",
        "The first results are in.",
        table_at=1,
    )
    assert _lint(case, tapped) == []


# --------------------------------------------------------------------------- onset and windows


def test_anaphylaxis_with_three_days_of_symptoms():
    """11-000265 / 11-000097 / 11-000391."""
    _only(_lint(_case([], condition="anaphylaxis", onset_days=3)), "onset-implausible")
    assert _lint(_case([], condition="anaphylaxis", onset_days=2 / 24)) == []


def test_weight_loss_that_began_four_days_ago():
    """11-000244: 'weight loss' in a 4-day history."""
    case = _case([], condition="thyroid_storm", onset_days=4)
    case["presentation"] = "4 days of palpitations, tremor and weight loss."
    hits = _only(_lint(case), "onset-implausible")
    assert "weight loss" in hits[0].message
    case["timeline"][0]["day"] = -21
    assert _lint(case) == []


def test_alteplase_for_a_stroke_that_began_two_days_ago():
    """11-000079 / 11-000457: alteplase is inside 4.5 h of onset or not given."""
    alteplase = [{"name": KB.drug("alteplase").name, "dose": "0.9 mg/kg"}]
    late = _case([], condition="ischemic_stroke", onset_days=2, medications=alteplase)
    _only(_lint(late), "onset-implausible", "outside-time-window")
    six_h = _case([], condition="ischemic_stroke", onset_days=6 / 24, medications=alteplase)
    _only(_lint(six_h), "outside-time-window")
    early = _case([], condition="ischemic_stroke", onset_days=3 / 24, medications=alteplase)
    assert _lint(early) == []


# --------------------------------------------------------------------------- reports


def test_an_ecg_that_is_two_findings_at_once():
    """11-000330: 'sinus tachycardia or atrial fibrillation with rapid ventricular response'."""
    ecg = {
        "name": "12-lead ECG",
        "kind": "imaging",
        "value_text": "sinus tachycardia or atrial fibrillation with rapid ventricular response",
        "day": 0,
    }
    # lint_text's hedged-wording also reads a report's alternatives as a hedge
    _only(_lint(_case([ecg])), "report-ambiguous", "hedged-wording")
    assert not ambiguous_report("hyperinflation with no consolidation or pneumothorax")
    assert not ambiguous_report("no mass lesion or midline shift")
    assert not ambiguous_report("no haemorrhage, infarct or mass lesion")
    assert not ambiguous_report("Non-contrast CT head (after a seizure, injury or focal signs)")
    assert ambiguous_report("Chest X-ray or CT chest")


# --------------------------------------------------------------------------- generated records


@pytest.mark.parametrize("seed", [7, 11])
def test_generated_records_pass_the_value_rules(seed):
    """Two cases of every KB condition, rendered: no finding of these rules."""
    n = 2 * len(KB.conditions)
    cases = [c.model_dump(mode="json") for c in synthesize_cases(n, seed=seed, kb=KB)]
    convs = [
        render(synthesize_case(i, seed=seed, kb=KB), KB, seed=seed).conversation.model_dump(
            mode="json"
        )
        for i in range(n)
    ]
    findings = lint_records(enumerate(cases, 1), enumerate(convs, 1), kb=KB)
    mine = [f"{f.record_id} {f.rule}: {f.message}" for f in findings if f.rule in VALUE_RULES]
    assert mine == []


def test_generated_hyperacute_cases_present_within_hours():
    for i in range(3 * len(KB.conditions)):
        case = synthesize_case(i, seed=11, kb=KB)
        if case.conditions[0].code in ("anaphylaxis", "stemi", "ischemic_stroke"):
            assert case.presentation.split(" ", 2)[1] in ("hour", "hours"), case.presentation
