"""Oxygenation, acid-base and rate coherence (sources/physiology.py, build/lint_values.py).

Regression tests rebuild the session-8 review's cases (seed 17) and check the defect the
reviewers found is gone; unit tests run each linter rule on a hand-made bad record.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from behaviorsft.build import lint_plan
from behaviorsft.build.conversation import render
from behaviorsft.build.lint import LintFinding, lint_records
from behaviorsft.build.lint_values import (
    EXPECTED_ACID_BASE,
    MET_ALKALOSIS,
    NO_DISORDER,
    RESP_ACIDOSIS,
    RESP_ALKALOSIS,
    SPO2_TOLERANCE,
    acid_base_disorder,
    compensation_range,
    hco3_for,
    max_sinus_rate,
    pao2_for_saturation,
    severinghaus_saturation,
)
from behaviorsft.sources import physiology
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case

KB = load_kb()
RULES = (
    "oxygenation-mismatch",
    "acid-base-pattern",
    "rate-implausible",
    "history-result-mismatch",
    "qualitative-as-range",
    "blood-gas-partial",
)


def _values(case: Any, day: float = 0) -> dict[str, float]:
    """Day-``day`` numeric results by KB lab id (first of each)."""
    ids = {lab.name: lid for lid, lab in KB.labs.items()}
    out: dict[str, float] = {}
    for f in case.findings:
        lid = ids.get(f.name)
        if lid is not None and f.day == day and f.value is not None:
            out.setdefault(lid, f.value)
    return out


def _gas(v: dict[str, float]) -> str:
    return acid_base_disorder(
        v["ph_arterial"],
        v["paco2"],
        v.get("hco3_arterial") or hco3_for(v["ph_arterial"], v["paco2"]),
    )


# --------------------------------------------------------------------------- formulas


def test_severinghaus_curve_points():
    """The standard curve: P50 about 26.8 mmHg, 90% near 60 mmHg, 97% near 100 mmHg; the
    inverse returns the PaO2; alkalosis shifts the curve left (higher saturation)."""
    assert severinghaus_saturation(26.8) == pytest.approx(50, abs=1)
    assert severinghaus_saturation(60) == pytest.approx(91, abs=1)
    assert severinghaus_saturation(100) == pytest.approx(97.5, abs=0.5)
    assert pao2_for_saturation(severinghaus_saturation(63.0)) == pytest.approx(63.0, abs=0.01)
    assert severinghaus_saturation(60, 7.50, 30) > severinghaus_saturation(60)


@pytest.mark.parametrize(
    ("ph", "paco2", "hco3", "disorder"),
    [
        (7.49, 30, 22.5, RESP_ALKALOSIS),
        (7.49, 37, 27.9, MET_ALKALOSIS),  # 17-000404: not an asthmatic's gas
        (7.43, 39, 25.6, NO_DISORDER),  # 17-000236: a normal PaCO2 in severe asthma
        (7.33, 60, 31.0, RESP_ACIDOSIS),
    ],
)
def test_acid_base_disorder(ph, paco2, hco3, disorder):
    assert acid_base_disorder(ph, paco2, hco3) == disorder


def test_compensation_ranges():
    assert compensation_range(RESP_ALKALOSIS, 30, 24) == ("HCO3", 19.0, 22.0)
    assert compensation_range(RESP_ACIDOSIS, 60, 24) == ("HCO3", 26.0, 32.0)
    what, low, high = compensation_range("metabolic acidosis", 25, 10)
    assert (what, low, high) == ("PaCO2", 21.0, 25.0)  # Winter's 1.5 x 10 + 8 +/- 2


def test_max_sinus_rate():
    assert max_sinus_rate(68) == pytest.approx(144.4)


# --------------------------------------------------------------------------- review items


@pytest.mark.parametrize("index", [236, 380, 110])
def test_spo2_agrees_with_the_same_draws_pao2(index):
    """17-000236 (SpO2 90, PaO2 75), 17-000380 (84, 64), 17-000110 (90, 79)."""
    v = _values(synthesize_case(index, seed=17, kb=KB))
    sat = severinghaus_saturation(v["pao2"], v["ph_arterial"], v["paco2"])
    assert abs(v["spo2"] - sat) <= SPO2_TOLERANCE, (v["spo2"], v["pao2"], sat)


@pytest.mark.parametrize("index", [404, 110, 236])
def test_asthma_gas_is_an_acute_respiratory_alkalosis(index):
    """17-000404 (pH 7.49, PaCO2 37: metabolic), 17-000110 (7.48, 35), 17-000236 (7.43, 39):
    an ordinary exacerbation keeps a low PaCO2 with acute compensation."""
    case = synthesize_case(index, seed=17, kb=KB)
    assert case.conditions[0].code == "asthma_exacerbation"
    v = _values(case)
    assert v["paco2"] < 35
    assert _gas(v) == RESP_ALKALOSIS
    _, low, high = compensation_range(RESP_ALKALOSIS, v["paco2"], 24)
    assert low - 2 <= hco3_for(v["ph_arterial"], v["paco2"]) <= high + 2


def test_copd_gas_is_a_compensated_respiratory_acidosis():
    """17-000380: COPD, raised PaCO2 with a raised bicarbonate."""
    v = _values(synthesize_case(380, seed=17, kb=KB))
    assert _gas(v) == RESP_ACIDOSIS and v["hco3_arterial"] > 26


def test_sinus_rate_below_the_age_predicted_maximum():
    """17-000148: thyroid storm at 68 years, HR 175 'sinus tachycardia'."""
    case = synthesize_case(148, seed=17, kb=KB)
    assert any("sinus" in (f.value_text or "") for f in case.findings)
    age = case.demographics.age_years
    assert age is not None
    assert _values(case)["heart_rate"] <= max_sinus_rate(age)


def test_known_heart_failure_has_a_raised_bnp():
    """17-000285: CAP with chronic heart failure and BNP 21 pg/mL."""
    case = synthesize_case(285, seed=17, kb=KB)
    assert "heart failure" in case.sections[1].text
    assert _values(case)["bnp"] > KB.lab("bnp").reference("male").high  # type: ignore[arg-type]


def test_peptide_limits_are_the_kb_references():
    for lid, upper in physiology.PEPTIDE_UPPER.items():
        assert KB.lab(lid).reference("male").high == upper  # type: ignore[arg-type]
    rng = random.Random(3)
    raised = physiology.known_heart_failure(
        ["heart failure"], {"bnp": 21.0, "nt_probnp": 900.0}, rng
    )
    assert raised["bnp"] > 100 and raised["nt_probnp"] == 900.0


def test_qualitative_result_is_not_outside_a_reference_range():
    """17-000428: 'SARS-CoV-2 RNA detected' listed as outside the reference range."""
    case = synthesize_case(428, seed=17, kb=KB)
    conv = render(case, KB, seed=17).conversation
    comment = next(t.text for t in conv.turns if "reference range" in t.text)
    outside, _, also = comment.partition("Also abnormal:")
    assert "sars-cov-2 rna (naat) detected" not in outside.lower()
    assert "sars-cov-2 rna (naat) detected" in also.lower()
    found = lint_records([(1, case.model_dump(mode="json"))], [(1, conv.model_dump(mode="json"))])
    assert [f.message for f in found if f.rule in RULES] == []


def test_generated_cases_are_coherent():
    """Every condition the rules cover, over many seeds: no finding of these rules."""
    cases = []
    for i in range(0, 84 * 3):
        case = synthesize_case(i, seed=5, kb=KB)
        cases.append((i + 1, case.model_dump(mode="json")))
    found = [f for f in lint_records(cases, [], kb=KB) if f.rule in RULES]
    assert found == [], [f.message for f in found[:5]]
    covered = {c["conditions"][0]["code"] for _, c in cases}
    assert set(EXPECTED_ACID_BASE) <= covered


def test_sinus_cap_spares_atrial_fibrillation():
    """The cap applies to a sinus tachycardia only; the redrawn rate stays in the range."""
    rng = random.Random(1)
    storm = physiology.cohere(
        "thyroid_storm", {"heart_rate": 175.0}, {"heart_rate": (130, 180)}, 70, rng
    )
    assert 130 <= storm["heart_rate"] <= max_sinus_rate(70)
    af = physiology.cohere("atrial_fibrillation_rvr", {"heart_rate": 165.0}, {}, 90, rng)
    assert af["heart_rate"] == 165.0


# --------------------------------------------------------------------------- the rules


def _lab(lid: str, value: float | None = None, text: str | None = None, day: float = 0) -> dict:
    lab = KB.lab(lid)
    kind = "vital" if lab.panel == "vitals" else "lab"
    return {"name": lab.name, "kind": kind, "value": value, "value_text": text, "day": day}


def _case(
    findings: list[dict],
    *,
    condition: str = "asthma_exacerbation",
    age: int = 40,
    history: str = "None.",
) -> dict[str, Any]:
    return {
        "id": "synthetic:11-000000",
        "demographics": {"age_years": age, "sex": "male"},
        "conditions": [{"name": condition, "code_system": "behaviorsft-kb", "code": condition}],
        "sections": [
            {"title": "History of presenting illness", "text": "2 days of breathlessness."},
            {"title": "Past history", "text": history},
        ],
        "findings": findings,
        "medications": [],
        "timeline": [{"day": -2, "kind": "symptom", "text": "Symptoms began."}],
    }


def _lint(case: dict[str, Any], conv: dict[str, Any] | None = None) -> list[LintFinding]:
    found = lint_records([(1, case)], [(1, conv)] if conv is not None else [], kb=KB)
    return [f for f in found if f.rule not in lint_plan.RULES]


def _rules(found: list[LintFinding]) -> list[str]:
    return [f.rule for f in found if f.rule in RULES]


def test_rule_oxygenation_mismatch():
    bad = _case([_lab("spo2", 90), _lab("pao2", 75), _lab("paco2", 32), _lab("ph_arterial", 7.46)])
    assert _rules(_lint(bad)) == ["oxygenation-mismatch"]
    good = _case([_lab("spo2", 90), _lab("pao2", 55), _lab("paco2", 32), _lab("ph_arterial", 7.46)])
    assert _rules(_lint(good)) == []
    # another draw (day 1) is not compared with the day-0 SpO2
    day1 = [_lab("pao2", 75, day=1), _lab("paco2", 32, day=1), _lab("ph_arterial", 7.46, day=1)]
    later = _case([_lab("spo2", 90), *day1])
    assert _rules(_lint(later)) == []


def test_rule_acid_base_pattern_against_the_condition():
    metabolic = _case([_lab("paco2", 37), _lab("ph_arterial", 7.49)])  # 17-000404
    assert _rules(_lint(metabolic)) == ["acid-base-pattern"]
    normal = _case([_lab("paco2", 39), _lab("ph_arterial", 7.43)])  # 17-000236
    assert _rules(_lint(normal)) == ["acid-base-pattern"]
    good = _case([_lab("paco2", 31), _lab("ph_arterial", 7.48)])
    assert _rules(_lint(good)) == []


def test_rule_acid_base_compensation():
    # COPD with an acute-on-chronic acidosis is fine; HCO3 39 at PaCO2 70 is beyond it
    ok = [_lab("paco2", 60), _lab("ph_arterial", 7.33), _lab("hco3_arterial", 31)]
    assert _rules(_lint(_case(ok, condition="copd_exacerbation"))) == []
    bad = [_lab("paco2", 70), _lab("ph_arterial", 7.36), _lab("hco3_arterial", 39)]
    assert _rules(_lint(_case(bad, condition="copd_exacerbation"))) == ["acid-base-pattern"]
    # no expected pattern (sepsis): a respiratory alkalosis with a metabolic-sized HCO3
    odd = [_lab("paco2", 35), _lab("ph_arterial", 7.49)]
    assert _rules(_lint(_case(odd, condition="sepsis"))) == ["acid-base-pattern"]


def test_rule_rate_implausible():
    """17-000148: HR 175 in sinus tachycardia at 68."""
    ecg = {"name": "12-lead ECG", "kind": "imaging", "value_text": "sinus tachycardia", "day": 0}
    bad = _case([_lab("heart_rate", 175), ecg], condition="thyroid_storm", age=68)
    assert _rules(_lint(bad)) == ["rate-implausible"]
    good = _case([_lab("heart_rate", 140), ecg], condition="thyroid_storm", age=68)
    assert _rules(_lint(good)) == []
    af = {**ecg, "value_text": "atrial fibrillation with rapid ventricular response"}
    fast_af = _case([_lab("heart_rate", 175), af], condition="atrial_fibrillation_rvr", age=68)
    assert _rules(_lint(fast_af)) == []


def test_rule_history_result_mismatch():
    """17-000285: BNP 21 pg/mL in chronic heart failure."""
    cap = "community_acquired_pneumonia"
    bad = _case([_lab("bnp", 21)], condition=cap, history="chronic heart failure.")
    assert _rules(_lint(bad)) == ["history-result-mismatch"]
    assert _rules(_lint(_case([_lab("bnp", 21)], condition=cap))) == []
    raised = _case([_lab("bnp", 240)], condition=cap, history="chronic heart failure.")
    assert _rules(_lint(raised)) == []
    negated = _case([_lab("bnp", 21)], condition=cap, history="no heart failure.")
    assert _rules(_lint(negated)) == []


def _conv(text: str) -> dict[str, Any]:
    rows = [
        ["SARS-CoV-2 RNA (NAAT)", "detected", "", ""],
        ["C-reactive protein", "139", "mg/L", "0-10"],
    ]
    return {
        "case_id": "synthetic:11-000000",
        "turns": [
            {
                "index": 0,
                "speaker": "Dr. A",
                "role": "medical resident",
                "text": "Admission bloods are back.",
                "attachments": [{"kind": "table", "title": "t", "columns": [], "rows": rows}],
            },
            {
                "index": 1,
                "speaker": "Dr. A",
                "role": "medical resident",
                "text": text,
                "attachments": [],
            },
        ],
    }


def test_rule_qualitative_as_range():
    """17-000428: a detected virus listed as outside the reference range."""
    case = _case([], condition="covid19_pneumonia")
    bad = "Outside the reference range: sars-cov-2 rna (naat) detected and c-reactive protein 139."
    found = _lint(case, _conv(bad))
    assert _rules(found) == ["qualitative-as-range"] and found[-1].turn == 1
    good = (
        "Outside the reference range: c-reactive protein 139. "
        "Also abnormal: sars-cov-2 rna (naat) detected."
    )
    assert _rules(_lint(case, _conv(good))) == []


def test_no_lone_blood_gas_value_on_day_1():
    """17-000404: a day-1 'arterial pH 7.47' with no PaCO2 or PaO2 (a partial gas)."""
    for index in (404, 236, 380):
        day1 = _values(synthesize_case(index, seed=17, kb=KB), day=1)
        assert not day1.keys() & {"ph_arterial", "paco2", "pao2", "hco3_arterial"}, day1


def test_rule_blood_gas_partial():
    gas = [_lab("paco2", 31), _lab("ph_arterial", 7.48), _lab("pao2", 55), _lab("spo2", 90)]
    lone = _case([*gas, _lab("ph_arterial", 7.46, day=1)])
    found = [f for f in _lint(lone) if f.rule in RULES]
    assert _rules(found) == ["blood-gas-partial"] and "day 1" in found[0].message
    assert _rules(_lint(_case(gas))) == []
    # a metabolic picture: pH with the serum bicarbonate (DKA) is whole
    dka = _case([_lab("ph_arterial", 7.12), _lab("bicarbonate", 10)], condition="dka", age=30)
    assert _rules(_lint(dka)) == []
