"""Doses fit the patient's weight, age and kidneys (docs/building.md): the named review items
of rounds 11-12 rebuilt with the defect asserted gone, sources/dosing.py's tables, and each
rule of build/lint_dose.py firing on a hand-made bad record."""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.lint_dose import lint_conversation, recorded_weight
from behaviorsft.build.lint_plan import cockcroft_gault
from behaviorsft.sources import dosing, patient
from behaviorsft.sources.kb import Dose, load_kb
from behaviorsft.sources.synthetic import synthesize_case


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@cache
def _item(index: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    kb = load_kb()
    case = synthesize_case(index, seed=seed, kb=kb)
    conv = render(case, kb, seed=seed).conversation
    return case.model_dump(mode="json"), conv.model_dump(mode="json")


def _weight(conv: dict[str, Any]) -> float:
    got = recorded_weight([(t["index"], t["text"]) for t in conv["turns"]])
    assert got is not None
    return got[1]


def _plan(case: dict[str, Any]) -> dict[str, dict[str, Any]]:
    name = case["conditions"][0]["name"]
    return {m["name"]: m for m in case["medications"] if m["indication"] == name}


class _Found:
    def __init__(self) -> None:
        self.rules: list[str] = []
        self.messages: list[str] = []

    def add(self, rule: str, message: str, turn: int | None = None) -> None:
        self.rules.append(rule)
        self.messages.append(message)


def _lint(kb: Any, case: dict[str, Any], conv: dict[str, Any]) -> _Found:
    found = _Found()
    lint_conversation(kb, found, conv, case)
    return found


# ----------------------------------------------------------------------------- review items


@pytest.mark.parametrize(("index", "seed"), [(515, 53), (179, 53), (213, 47)])
def test_round12_tb_doses_follow_the_weight_band_and_cachexia_weighs_little(kb, index, seed):
    """53-000515 and 53-000179: pyrazinamide 1000 mg and ethambutol 800 mg at 92 and 97 kg,
    with cachexia on examination (round 11, 47-000213: pyrazinamide 1000 mg at 66 kg). Now a
    cachectic patient weighs what wasting means and every TB drug is at the dose of that
    weight's band."""
    case, conv = _item(index, seed)
    assert case["conditions"][0]["code"] == "pulmonary_tuberculosis"
    kg = _weight(conv)
    exam = next(s["text"] for s in case["sections"] if s["title"] == "Examination")
    assert "cachexia" in exam and kg <= patient.WASTED_ABOVE
    plan = _plan(case)
    for name, drug in [
        ("Pyrazinamide", "pyrazinamide"),
        ("Ethambutol", "ethambutol"),
        ("Isoniazid", "isoniazid"),
        ("Rifampin (rifampicin)", "rifampin"),
    ]:
        assert plan[name]["dose_unit"] == "mg"
        assert plan[name]["dose_value"] == dosing.banded(drug, kg)
    said = " ".join(t["text"] for t in conv["turns"])
    assert f"Pyrazinamide {dosing.banded('pyrazinamide', kg):g} mg" in said
    assert _lint(kb, case, conv).rules == []


def test_round12_apixaban_reduced_at_91_years_and_54_kg(kb):
    """53-000488: apixaban 5 mg q12h for AF at 91 years and 54 kg (two label criteria):
    the plan, and so the omission item's 'original', give 2.5 mg q12h."""
    case, conv = _item(488, 53)
    assert case["demographics"]["age_years"] >= 80 and _weight(conv) <= 60
    apixaban = _plan(case)["Apixaban"]
    assert (apixaban["dose_value"], apixaban["frequency"]) == (2.5, "q12h")
    assert any(re.search(r"Apixaban 2\.5 mg PO q12h", t["text"]) for t in conv["turns"])
    assert not any(re.search(r"Apixaban 5 mg", t["text"]) for t in conv["turns"])
    # and the pharmacist's check says why (it covered only the allergy)
    check = next(t["text"] for t in conv["turns"] if t["role"] == "clinical pharmacist")
    assert "apixaban at the reduced 2.5 mg q12h (age 91 y >= 80, weight" in check.lower()


def test_round11_oseltamivir_full_dose_at_the_clearance_of_the_weight_shown():
    """47-000413: oseltamivir 30 mg q12h for a 64-year-old woman of 80 kg, creatinine 0.91
    (clearance about 79 mL/min at that weight; the nominal 60 kg gave 59). The clearance is
    worked out from the recorded weight: 75 mg q12h."""
    case, conv = _item(413, 47)
    kg = _weight(conv)
    creat = next(f["value"] for f in case["findings"] if f["name"] == "Creatinine")
    assert cockcroft_gault(creat, case["demographics"]["age_years"], "female", kg) > 60
    oseltamivir = _plan(case)["Oseltamivir"]
    assert (oseltamivir["dose_value"], oseltamivir["frequency"]) == (75, "q12h")


def test_adrenaline_adult_dose_is_one_guideline(kb):
    """Anaphylaxis: adult IM adrenaline 0.5 mg (Resuscitation Council UK 2021), not 0.3."""
    dose = kb.drug("epinephrine").dose_for("anaphylaxis")
    assert (dose.amount, dose.amount_max, dose.unit, dose.route) == (0.5, None, "mg", "IM")


# ----------------------------------------------------------------------------- dosing tables


def _kb_dose(kb: Any, drug: str) -> Dose:
    return kb.drug(drug).dose_for("pulmonary_tuberculosis")


@pytest.mark.parametrize(
    ("kg", "pza", "emb", "rif"),
    [(45, 1000, 800, 450), (55, 1000, 800, 600), (56, 1500, 1200, 600), (92, 2000, 1600, 600)],
)
def test_tb_weight_bands(kb, kg, pza, emb, rif):
    """ATS/CDC/IDSA 2016 bands (40-55, 56-75, 76-90 kg, the top one also above 90 kg);
    rifampicin 450 mg under 50 kg; isoniazid 300 mg."""
    fit = {
        d: dosing.fit_dose(d, "pulmonary_tuberculosis", _kb_dose(kb, d), kg, 40, 0.8)
        for d in ("pyrazinamide", "ethambutol", "rifampin", "isoniazid")
    }
    assert {d: (x.amount, x.unit) for d, x in fit.items()} == {
        "pyrazinamide": (pza, "mg"),
        "ethambutol": (emb, "mg"),
        "rifampin": (rif, "mg"),
        "isoniazid": (300, "mg"),
    }
    assert all(x.amount_max is None for x in fit.values())


@pytest.mark.parametrize(
    ("age", "kg", "creat", "amount"),
    [
        (91, 54, 0.9, 2.5),
        (85, 70, 1.6, 2.5),
        (70, 55, 1.5, 2.5),
        (85, 70, 1.0, 5),
        (60, 58, 1.0, 5),
    ],
)
def test_apixaban_af_reduction_needs_two_criteria(kb, age, kg, creat, amount):
    dose = kb.drug("apixaban").dose_for("atrial_fibrillation_rvr")
    fit = dosing.fit_dose("apixaban", "atrial_fibrillation_rvr", dose, kg, age, creat)
    assert (fit.amount, fit.frequency) == (amount, "q12h")
    # the VTE dose of another condition is not the AF one
    vte = kb.drug("apixaban").doses[0]
    assert dosing.fit_dose("apixaban", "dvt", vte, kg, age, creat) == vte


def test_wasted_weight_and_negation():
    assert patient.wasted("apical crackles; cachexia; regular pulse.") == "cachexia"
    assert patient.wasted("no cachexia; regular pulse") is None
    kg = patient.triage_weight("synthetic:1-000001", "male", "cachexia")
    assert 45 <= kg <= 56
    sections = [("Examination", "emaciated; apical crackles.")]
    assert patient.record_weight("synthetic:1-000001", "male", sections) == kg


def test_false_usual_doses_are_no_band_of_the_drug(kb):
    """A false 'usual' dose quoted for a pyrazinamide order is never another band's right
    dose (build/tasks/errors.py)."""
    import random

    from behaviorsft.build.tasks import errors

    class _Ctx:
        def __init__(self) -> None:
            self.kb = kb
            self.rng = random.Random(3)

    ctx = _Ctx()
    bands = dosing.band_amounts("pyrazinamide")
    for _ in range(200):
        u = errors._wrong_usual(ctx, 2000, "mg", bands)  # type: ignore[arg-type]
        assert errors._split_dose(u) not in {(b, "mg") for b in bands}


def test_planted_allergy_order_quotes_the_fitted_dose(kb):
    """A planted order of a banded drug (rifampicin in a rifamycin allergy) is written, and
    its 'usual' dose quoted, at the patient's band (sources/planted_orders.py)."""
    from behaviorsft.sources.planted_orders import Patient, condition_orders

    cond = kb.conditions["pulmonary_tuberculosis"]
    for kg, amount in ((48, 450), (80, 600)):
        orders = condition_orders(kb, cond, "rifamycins", Patient(40, (), 90, kg=kg))
        rif = next(o for o in orders if o.drug.id == "rifampin")
        assert rif.text == f"Rifampin (rifampicin) {amount} mg PO once daily"


def test_false_usual_doses_of_apixaban_are_neither_af_dose(kb):
    """An order of apixaban 2.5 mg (reduced for age and weight) never has '5 mg' quoted as a
    false usual dose, nor an order at 5 mg '2.5 mg'."""
    from behaviorsft.build.tasks import errors
    from behaviorsft.records import Medication

    m = Medication(name="Apixaban", dose="2.5 mg", dose_value=2.5, dose_unit="mg")
    assert set(errors._bands(kb, m)) == {2.5, 5.0}


# ----------------------------------------------------------------------------- lint rules


def _tb_record() -> tuple[dict[str, Any], dict[str, Any]]:
    case, conv = _item(515, 53)
    return copy.deepcopy(case), copy.deepcopy(conv)


def _reweigh(conv: dict[str, Any], kg: int) -> None:
    for t in conv["turns"]:
        t["text"] = re.sub(r"\bweight \d+ kg\b", f"weight {kg} kg", t["text"])


def test_dose_weight_band_fires_on_a_fixed_dose_of_another_band(kb):
    case, conv = _tb_record()
    assert _lint(kb, case, conv).rules == []
    for m in case["medications"]:
        if m["name"] == "Pyrazinamide":
            m["dose_value"], m["dose"] = 2000.0, "2000 mg"
    found = _lint(kb, case, conv)
    assert found.rules == ["dose-weight-band"]
    assert "Pyrazinamide 2000 mg" in found.messages[0]


def test_dose_weight_band_fires_on_a_per_kg_dose_past_its_cap(kb):
    case, conv = _tb_record()
    for m in case["medications"]:
        if m["name"] == "Isoniazid":
            m["dose_value"], m["dose_unit"], m["dose"] = 5.0, "mg/kg", "5 mg/kg"
    assert _lint(kb, case, conv).rules == ["dose-weight-band"]


def test_exam_weight_fires_on_cachexia_at_92_kg(kb):
    case, conv = _tb_record()
    _reweigh(conv, 92)
    found = _lint(kb, case, conv)
    assert "exam-weight" in found.rules
    assert "dose-weight-band" in found.rules  # 1000 mg pyrazinamide at 92 kg too


def test_dose_criteria_fires_on_full_apixaban(kb):
    case, conv = _item(488, 53)
    case, conv = copy.deepcopy(case), copy.deepcopy(conv)
    assert _lint(kb, case, conv).rules == []
    for m in case["medications"]:
        if m["name"] == "Apixaban":
            m["dose_value"], m["dose"] = 5.0, "5 mg"
    found = _lint(kb, case, conv)
    assert found.rules == ["dose-criteria"]
    assert "age 91 y >= 80" in found.messages[0]


def test_exam_weight_fires_on_obesity_in_a_light_patient(kb):
    """Round 11, 47-000118: 'obesity' in the history at 68 kg."""
    case, conv = _tb_record()
    case["facts"].append("History: obesity.")
    found = _lint(kb, case, conv)
    assert found.rules == ["exam-weight"] and "'obesity' at" in found.messages[0]


def test_round11_obesity_only_at_its_weight():
    """47-000118: obesity the only history item of a man of 68 kg. The weight is drawn
    first and obesity stays in a history only where the weight makes it credible."""
    case, conv = _item(118, 47)
    kg = _weight(conv)
    history = [f for f in case["facts"] if f.startswith("History: ")]
    assert not any(patient.obesity_unfit(h, case["demographics"]["sex"], kg) for h in history)
    assert patient.obesity_unfit("obesity", "male", 68)
    assert not patient.obesity_unfit("obesity", "male", 95)
