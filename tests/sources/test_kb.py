"""The packaged clinical knowledge base: it loads, it says what the guidelines say, and a
broken copy is reported with the file and the field that is wrong."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib.resources import as_file
from pathlib import Path
from typing import Any

import pytest
import yaml

from behaviorsft.sources.kb import (
    MIN_SECTION_ITEMS,
    KBValidationError,
    KnowledgeBase,
    default_kb_root,
    load_kb,
)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_kb()


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    """A writable copy of the packaged KB for the corruption tests."""
    dest = tmp_path / "kb"
    with as_file(default_kb_root()) as src:
        shutil.copytree(src, dest)
    return dest


def _edit(path: Path, change: Callable[[Any], None]) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _entry(doc: dict[str, Any], section: str, entry_id: str) -> dict[str, Any]:
    return next(e for e in doc[section] if e["id"] == entry_id)


# --------------------------------------------------------------------------- the packaged KB


def test_packaged_kb_loads_with_enough_entries(kb: KnowledgeBase) -> None:
    assert len(kb.conditions) >= 40
    assert len(kb.labs) >= 50
    assert len(kb.drugs) >= 45


def test_default_kb_is_cached(kb: KnowledgeBase) -> None:
    assert load_kb() is kb


def test_explicit_path_gives_an_equal_kb(kb: KnowledgeBase, kb_copy: Path) -> None:
    assert load_kb(kb_copy) == kb


def test_packaged_kb_is_compact() -> None:
    with as_file(default_kb_root()) as root:
        total = sum(p.stat().st_size for p in root.rglob("*.yaml"))
    assert total < 400_000


@pytest.mark.parametrize("section", sorted(MIN_SECTION_ITEMS))
def test_every_condition_populates_every_section(kb: KnowledgeBase, section: str) -> None:
    for cond in kb.conditions.values():
        value: Any = cond
        for part in section.split("."):
            value = getattr(value, part)
        assert len(value) >= MIN_SECTION_ITEMS[section], (cond.id, section)


def test_conditions_cover_the_core_internal_medicine_list(kb: KnowledgeBase) -> None:
    wanted = {
        "community_acquired_pneumonia", "sepsis", "dka", "hhs", "aki", "hyperkalemia",
        "pulmonary_embolism", "stemi", "nstemi", "ischemic_stroke", "copd_exacerbation",
        "upper_gi_bleed", "acute_pancreatitis", "bacterial_meningitis", "anaphylaxis",
    }  # fmt: skip
    assert wanted <= set(kb.conditions)


def test_every_condition_cites_sources_and_care_items_name_one(kb: KnowledgeBase) -> None:
    for cond in kb.conditions.values():
        assert cond.sources
        assert all(item.source for item in cond.standard_of_care)


def test_every_condition_vital_and_lab_is_inside_its_bounds(kb: KnowledgeBase) -> None:
    # load_kb already enforces this; restated here so a loader regression is caught too.
    for cond in kb.conditions.values():
        for lab_id, finding in {**cond.vitals, **cond.labs}.items():
            lab = kb.lab(lab_id)
            if finding.range is not None:
                assert lab.bounds is not None
                assert lab.bounds.contains(finding.range), (cond.id, lab_id)


# --------------------------------------------------------------------------- spot checks


def test_potassium_reference_range(kb: KnowledgeBase) -> None:
    k = kb.lab("potassium")
    assert (k.reference().low, k.reference().high) == (3.5, 5.0)
    assert k.unit == "mmol/L"
    assert k.loinc == "2823-3"


def test_sodium_and_lactate_reference_ranges(kb: KnowledgeBase) -> None:
    assert kb.lab("sodium").reference().low == 135
    assert kb.lab("sodium").reference().high == 145
    assert kb.lab("lactate").reference().high == 2.0


def test_si_conversions(kb: KnowledgeBase) -> None:
    assert kb.lab("glucose").to_si(180) == pytest.approx(10.0, abs=0.05)  # 180 mg/dL ~ 10 mmol/L
    assert kb.lab("creatinine").to_si(1.0) == pytest.approx(88.4)
    assert kb.lab("sodium").to_si(140) == 140  # no conversion


def test_sex_specific_reference(kb: KnowledgeBase) -> None:
    hb = kb.lab("hemoglobin")
    assert hb.reference("female").low < hb.reference("male").low


def test_qualitative_lab(kb: KnowledgeBase) -> None:
    nitrite = kb.lab("urine_nitrite")
    assert nitrite.kind == "qualitative"
    assert nitrite.normal_values == ["negative"]


def test_penicillin_allergy_group(kb: KnowledgeBase) -> None:
    penicillins = {d.id for d in kb.drugs_in_allergy_group("penicillins")}
    assert {"amoxicillin", "amoxicillin_clavulanate", "piperacillin_tazobactam"} <= penicillins
    assert "ceftriaxone" not in penicillins
    widened = {d.id for d in kb.drugs_in_allergy_group("penicillins", include_cross_reactive=True)}
    assert {"ceftriaxone", "cephalexin", "meropenem"} <= widened


def test_sulfa_allergy_does_not_imply_furosemide_cross_reactivity(kb: KnowledgeBase) -> None:
    sulfa = kb.allergy_groups["sulfonamide_antibiotics"]
    assert [c.risk for c in sulfa.cross_reactivity] == ["very_low"]
    assert "trimethoprim_sulfamethoxazole" in {
        d.id for d in kb.drugs_in_allergy_group("sulfonamide_antibiotics")
    }


def test_metformin_contraindicated_below_egfr_30(kb: KnowledgeBase) -> None:
    rules = [r for r in kb.drug("metformin").renal if r.action == "contraindicated"]
    assert len(rules) == 1
    rule = rules[0]
    assert (rule.metric, rule.op, rule.value) == ("egfr", "<", 30)
    assert rule.applies(25)
    assert not rule.applies(30)
    assert any(c.condition == "dka" for c in kb.drug("metformin").contraindications)


def test_potassium_chloride_contraindicated_in_hyperkalaemia(kb: KnowledgeBase) -> None:
    lab_rules = [c for c in kb.drug("potassium_chloride").contraindications if c.lab]
    assert [(c.lab, c.op, c.value) for c in lab_rules] == [("potassium", ">", 5.0)]


def test_alteplase_stroke_exclusions(kb: KnowledgeBase) -> None:
    thresholds = {
        (c.lab, c.op, c.value) for c in kb.drug("alteplase").contraindications if c.lab is not None
    }
    assert {("inr", ">", 1.7), ("platelets", "<", 100), ("sbp", ">", 185)} <= thresholds


def test_maximum_daily_doses(kb: KnowledgeBase) -> None:
    acetaminophen = kb.drug("acetaminophen").max_daily
    assert acetaminophen is not None
    assert (acetaminophen.amount, acetaminophen.unit) == (4000, "mg")
    atorvastatin = kb.drug("atorvastatin").max_daily
    assert atorvastatin is not None
    assert atorvastatin.amount == 80


def test_condition_specific_dose(kb: KnowledgeBase) -> None:
    ceftriaxone = kb.drug("ceftriaxone")
    meningitis = ceftriaxone.dose_for("bacterial_meningitis")
    assert (meningitis.amount, meningitis.unit, meningitis.frequency) == (2, "g", "q12h")
    assert ceftriaxone.dose_for(None).frequency == "q24h"


def test_interactions_are_found_from_either_side(kb: KnowledgeBase) -> None:
    assert kb.interactions_between("warfarin", "trimethoprim_sulfamethoxazole")
    assert kb.interactions_between("trimethoprim_sulfamethoxazole", "warfarin")
    assert not kb.interactions_between("amoxicillin", "atorvastatin")


def test_dka_standard_of_care_requires_ketones_and_potassium(kb: KnowledgeBase) -> None:
    refs = {item.ref for item in kb.condition("dka").standard_of_care}
    assert "beta_hydroxybutyrate" in refs
    assert "potassium" in refs
    assert "anion_gap" in refs


def test_sepsis_cultures_before_antibiotics_and_lactate(kb: KnowledgeBase) -> None:
    care = kb.condition("sepsis").standard_of_care
    cultures = [c for c in care if c.ref == "blood_culture"]
    assert cultures
    assert cultures[0].timing is not None
    assert "before" in cultures[0].timing
    assert any(c.ref == "lactate" for c in care)


def test_chest_pain_ecg_within_ten_minutes(kb: KnowledgeBase) -> None:
    for cid in ("stemi", "nstemi"):
        timings = [c.timing for c in kb.condition(cid).standard_of_care if "ECG" in c.item]
        assert "within 10 min" in timings, cid


def test_stroke_requires_fingerstick_glucose(kb: KnowledgeBase) -> None:
    refs = {c.ref for c in kb.condition("ischemic_stroke").standard_of_care}
    assert "glucose_poc" in refs


def test_dka_lab_pattern(kb: KnowledgeBase) -> None:
    labs = kb.condition("dka").labs
    assert labs["beta_hydroxybutyrate"].low == 3.0  # consensus 2024 criterion
    assert labs["ph_arterial"].high is not None
    assert labs["ph_arterial"].high < 7.3
    assert labs["bicarbonate"].high is not None
    assert labs["bicarbonate"].high < 18


def test_cystitis_is_modelled_in_women_only(kb: KnowledgeBase) -> None:
    weights = kb.condition("uncomplicated_cystitis").sex_weights
    assert (weights.female, weights.male) == (1.0, 0.0)


def test_unknown_ids_raise_key_errors_naming_the_id(kb: KnowledgeBase) -> None:
    with pytest.raises(KeyError, match="unknown lab id 'no_such_lab'"):
        kb.lab("no_such_lab")
    with pytest.raises(KeyError, match="unknown drug id"):
        kb.drug("no_such_drug")


# --------------------------------------------------------------------------- broken copies


def _errors(root: Path) -> list[str]:
    with pytest.raises(KBValidationError) as info:
        load_kb(root)
    return info.value.errors


def test_reversed_range_names_file_and_field(kb_copy: Path) -> None:
    def reverse(doc: dict[str, Any]) -> None:
        doc["labs"]["glucose"] = {"low": 90, "high": 80}

    _edit(kb_copy / "conditions" / "dka.yaml", reverse)
    assert "conditions/dka.yaml: labs.glucose: range 90-80 is reversed" in _errors(kb_copy)


def test_reversed_reference_range_in_labs_file(kb_copy: Path) -> None:
    def reverse(doc: dict[str, Any]) -> None:
        _entry(doc, "labs", "potassium")["ref"] = {"low": 5.0, "high": 3.5}

    _edit(kb_copy / "labs.yaml", reverse)
    assert "labs.yaml: labs[potassium].ref: range 5-3.5 is reversed" in _errors(kb_copy)


def test_range_outside_physiological_bounds(kb_copy: Path) -> None:
    def widen(doc: dict[str, Any]) -> None:
        doc["labs"]["potassium"] = {"low": 4.0, "high": 25.0}

    _edit(kb_copy / "conditions" / "dka.yaml", widen)
    assert "conditions/dka.yaml: labs.potassium: range 4-25 lies outside bounds 1.5-10" in (
        _errors(kb_copy)
    )


def test_unknown_lab_id(kb_copy: Path) -> None:
    def rename(doc: dict[str, Any]) -> None:
        doc["labs"]["ketones_typo"] = doc["labs"].pop("beta_hydroxybutyrate")

    _edit(kb_copy / "conditions" / "dka.yaml", rename)
    assert "conditions/dka.yaml: labs.ketones_typo: unknown lab id 'ketones_typo'" in (
        _errors(kb_copy)
    )


def test_unknown_drug_in_treatment(kb_copy: Path) -> None:
    def swap(doc: dict[str, Any]) -> None:
        doc["treatments"]["drugs"][0]["drug"] = "insulin_typo"

    _edit(kb_copy / "conditions" / "dka.yaml", swap)
    assert "conditions/dka.yaml: treatments.drugs[0].drug: unknown drug id 'insulin_typo'" in (
        _errors(kb_copy)
    )


def test_unknown_condition_in_drug_contraindication(kb_copy: Path) -> None:
    def swap(doc: dict[str, Any]) -> None:
        _entry(doc, "drugs", "metformin")["contraindications"][0]["condition"] = "dka_typo"

    _edit(kb_copy / "drugs.yaml", swap)
    expected = (
        "drugs.yaml: drugs[metformin].contraindications[0].condition: "
        "unknown condition id 'dka_typo'"
    )
    assert expected in _errors(kb_copy)


def test_duplicate_lab_id(kb_copy: Path) -> None:
    def duplicate(doc: dict[str, Any]) -> None:
        doc["labs"].append(dict(_entry(doc, "labs", "potassium")))

    _edit(kb_copy / "labs.yaml", duplicate)
    assert "labs.yaml: labs[potassium]: duplicate id 'potassium'" in _errors(kb_copy)


def test_duplicate_condition_name(kb_copy: Path) -> None:
    text = (kb_copy / "conditions" / "dka.yaml").read_text(encoding="utf-8")
    (kb_copy / "conditions" / "dka_copy.yaml").write_text(
        text.replace("id: dka\n", "id: dka_copy\n"), encoding="utf-8"
    )
    errors = _errors(kb_copy)
    assert any(
        e.startswith("conditions/dka_copy.yaml: name: duplicate condition name") for e in errors
    )


def test_condition_id_must_match_file_name(kb_copy: Path) -> None:
    conditions = kb_copy / "conditions"
    (conditions / "dka.yaml").rename(conditions / "dka_renamed.yaml")
    errors = _errors(kb_copy)
    assert (
        "conditions/dka_renamed.yaml: id: id 'dka' does not match the file name "
        "'dka_renamed'" in errors
    )


def test_missing_required_field(kb_copy: Path) -> None:
    def drop(doc: dict[str, Any]) -> None:
        del _entry(doc, "drugs", "metformin")["name"]

    _edit(kb_copy / "drugs.yaml", drop)
    assert "drugs.yaml: drugs[metformin].name: Field required" in _errors(kb_copy)


def test_missing_condition_section(kb_copy: Path) -> None:
    def drop(doc: dict[str, Any]) -> None:
        del doc["standard_of_care"]

    _edit(kb_copy / "conditions" / "sepsis.yaml", drop)
    assert "conditions/sepsis.yaml: standard_of_care: Field required" in _errors(kb_copy)


def test_too_few_items_in_a_section(kb_copy: Path) -> None:
    def trim(doc: dict[str, Any]) -> None:
        doc["symptoms"] = doc["symptoms"][:1]

    _edit(kb_copy / "conditions" / "sepsis.yaml", trim)
    assert "conditions/sepsis.yaml: symptoms: needs at least 3 item(s), has 1" in (_errors(kb_copy))


def test_unexpected_field(kb_copy: Path) -> None:
    def add(doc: dict[str, Any]) -> None:
        doc["labs"]["glucose"]["hi"] = 900

    _edit(kb_copy / "conditions" / "dka.yaml", add)
    assert "conditions/dka.yaml: labs.glucose.hi: Extra inputs are not permitted" in (
        _errors(kb_copy)
    )


def test_bad_yaml_names_the_file(kb_copy: Path) -> None:
    (kb_copy / "labs.yaml").write_text("labs:\n  - id: [unclosed\n", encoding="utf-8")
    errors = _errors(kb_copy)
    assert any(e.startswith("labs.yaml: invalid YAML:") for e in errors)


def test_empty_file_is_an_error(kb_copy: Path) -> None:
    (kb_copy / "drugs.yaml").write_text("# nothing here\n", encoding="utf-8")
    assert "drugs.yaml: file is empty" in _errors(kb_copy)


def test_duplicate_yaml_key_is_an_error(kb_copy: Path) -> None:
    path = kb_copy / "conditions" / "dka.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("labs:\n", "labs:\n  sodium: {low: 130, high: 135}\n", 1), encoding="utf-8"
    )
    errors = _errors(kb_copy)
    assert any(
        e.startswith("conditions/dka.yaml: invalid YAML:") and "duplicate key 'sodium'" in e
        for e in errors
    )


def test_bad_loinc_check_digit(kb_copy: Path) -> None:
    def corrupt(doc: dict[str, Any]) -> None:
        _entry(doc, "labs", "potassium")["loinc"] = "2823-4"

    _edit(kb_copy / "labs.yaml", corrupt)
    assert "labs.yaml: labs[potassium]: loinc 2823-4 fails its check digit" in _errors(kb_copy)


def test_all_problems_are_reported_together(kb_copy: Path) -> None:
    def reverse(doc: dict[str, Any]) -> None:
        doc["labs"]["glucose"] = {"low": 90, "high": 80}

    def drop(doc: dict[str, Any]) -> None:
        del _entry(doc, "drugs", "metformin")["name"]

    _edit(kb_copy / "conditions" / "dka.yaml", reverse)
    _edit(kb_copy / "drugs.yaml", drop)
    with pytest.raises(KBValidationError) as info:
        load_kb(kb_copy)
    message = str(info.value)
    assert "conditions/dka.yaml: labs.glucose" in message
    assert "drugs.yaml: drugs[metformin].name" in message


def test_no_risk_factor_is_one_of_the_conditions_own_differentials() -> None:
    """23-000549 (round 5 review): 'primary hyperaldosteronism' in the history of a
    hypokalaemia whose team then calls primary hyperaldosteronism less likely."""
    import re

    kb = load_kb()
    clashes = [
        (c.id, r, d.name)
        for c in kb.conditions.values()
        for r in c.risk_factors
        for d in c.differentials
        if re.sub(r"\s*\(.*?\)", "", d.name).lower() in r.lower()
        or r.lower() in d.name.lower()
    ]
    assert clashes == []
