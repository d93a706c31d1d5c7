"""Results cohere and are acted on (round-9 review, seed 41): electrolyte panels whose
implied chloride or anion gap no patient has, and flagged results left untreated."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from behaviorsft.build.lint_values import (
    ALKALOSIS_CHLORIDE,
    ALKALOSIS_HCO3,
    NA_CL_LIMITS,
    electrolyte_problem,
)
from behaviorsft.records import Case, Conversation
from behaviorsft.sources import physiology
from behaviorsft.sources.kb import load_kb
from tests.build.kb_records import case_record
from tests.build.kb_records import record_rules as _rules


def _case(index: int, seed: int = 41) -> tuple[Case, Conversation]:
    return case_record(index, seed)


def _day0(case: Case) -> dict[str, float]:
    kb = load_kb()
    ids = {lab.name: lid for lid, lab in kb.labs.items()}
    return {
        ids[f.name]: f.value
        for f in case.findings
        if f.day == 0 and f.value is not None and f.name in ids
    }


# ----------------------------------------------------------------- electrolyte panels


@pytest.mark.parametrize("index", [552, 6])
def test_hhs_panel_implies_a_plausible_chloride(index: int) -> None:
    """41-000552: Na 152, HCO3 18, anion gap 9 implied chloride 125; 41-000006: Na 143,
    HCO3 24, gap 7 implied chloride 112 in untreated HHS."""
    case, conv = _case(index)
    assert case.conditions[0].code == "hhs"
    v = _day0(case)
    implied = v["sodium"] - v["bicarbonate"] - v["anion_gap"]
    assert physiology.CHLORIDE_TARGET[0] <= implied <= physiology.CHLORIDE_TARGET[1]
    assert NA_CL_LIMITS[0] <= v["sodium"] - implied <= NA_CL_LIMITS[1]
    assert electrolyte_problem(v, "hhs") is None
    assert "electrolyte-pattern" not in _rules(case, conv)


def test_vomiting_hypokalaemia_is_a_hypochloraemic_alkalosis() -> None:
    """41-000288: recurrent vomiting, K 2.9, with chloride 99 and bicarbonate 28 (normal)."""
    case, conv = _case(288)
    assert case.conditions[0].code == "hypokalemia"
    v = _day0(case)
    assert v["bicarbonate"] >= ALKALOSIS_HCO3 and v["chloride"] <= ALKALOSIS_CHLORIDE
    assert 4 <= v["sodium"] - v["chloride"] - v["bicarbonate"] <= 16  # the implied gap
    assert "electrolyte-pattern" not in _rules(case, conv)


def test_electrolytes_keep_every_panel_coherent() -> None:
    """The generator's panel passes the linter's rule for any draw of these conditions."""
    draws = {
        "hhs": ({"anion_gap": (6, 14), "bicarbonate": (18, 27), "sodium": (130, 155)}),
        "dka": ({"anion_gap": (16, 35), "bicarbonate": (5, 17), "sodium": (125, 138)}),
        "hypokalemia": ({"chloride": (86, 97), "bicarbonate": (30, 36), "sodium": (136, 143)}),
    }
    rng = random.Random(3)
    for cond, ranges in draws.items():
        for _ in range(300):
            v = {k: float(round(rng.uniform(*r))) for k, r in ranges.items()}
            out = physiology.electrolytes(cond, v, {k: r for k, r in ranges.items()}, rng)
            assert electrolyte_problem(out, cond) is None, (cond, v, out)


def _panel_case(cond: str, values: dict[str, float]) -> dict[str, Any]:
    kb = load_kb()
    return {
        "conditions": [{"code_system": "behaviorsft-kb", "code": cond, "name": cond}],
        "demographics": {"age_years": 60, "sex": "male"},
        "findings": [
            {"name": kb.labs[lid].name, "kind": "lab", "value": v, "unit": kb.labs[lid].unit}
            | {"day": 0}
            for lid, v in values.items()
        ],
    }


@pytest.mark.parametrize(
    ("cond", "values"),
    [
        ("hhs", {"sodium": 152, "bicarbonate": 18, "anion_gap": 9}),  # chloride 125
        ("hhs", {"sodium": 143, "bicarbonate": 24, "anion_gap": 7}),  # chloride 112
        ("hypokalemia", {"sodium": 139, "chloride": 99, "bicarbonate": 28}),  # no alkalosis
        ("dka", {"sodium": 135, "bicarbonate": 10, "anion_gap": 10}),  # normal gap
        ("hypokalemia", {"sodium": 136, "chloride": 97, "bicarbonate": 38}),  # gap 1
    ],
)
def test_electrolyte_rule_flags_a_hand_made_panel(cond: str, values: dict[str, float]) -> None:
    from behaviorsft.build.lint_values import check_case

    found: list[tuple[str, str]] = []

    class Where:
        def add(self, rule: str, message: str, turn: int | None = None) -> None:
            found.append((rule, message))

    check_case(load_kb(), Where(), _panel_case(cond, values))
    assert [r for r, _ in found] == ["electrolyte-pattern"], found
    good = {
        "hhs": {"sodium": 150, "bicarbonate": 24, "anion_gap": 12},
        "dka": {"sodium": 135, "bicarbonate": 10, "anion_gap": 26},
        "hypokalemia": {"sodium": 139, "chloride": 95, "bicarbonate": 32},
    }[cond]
    found.clear()
    check_case(load_kb(), Where(), _panel_case(cond, good))
    assert found == []


def test_imported_panels_are_not_judged() -> None:
    """An imported record (no KB condition) is quoted as its source gave it."""
    from behaviorsft.build.lint_values import check_case

    found: list[str] = []

    class Where:
        def add(self, rule: str, message: str, turn: int | None = None) -> None:
            found.append(rule)

    case = _panel_case("hhs", {"sodium": 152, "bicarbonate": 18, "anion_gap": 9})
    case["conditions"] = []
    check_case(load_kb(), Where(), case)
    assert "electrolyte-pattern" not in found


# ----------------------------------------------------------------- flagged, acted on


@pytest.mark.parametrize("index", [440, 146])
def test_low_magnesium_replaced_in_alcohol_withdrawal(index: int) -> None:
    """41-000440 (Mg 1.3) and 41-000146 (Mg 1.5): flagged, never replaced."""
    case, conv = _case(index)
    assert case.conditions[0].code == "alcohol_withdrawal"
    assert _day0(case)["magnesium"] < 1.7
    plan = next(t.text for t in conv.turns if "Plan:" in t.text)
    assert "Magnesium sulfate 2 g IV" in plan
    assert "low-magnesium-unreplaced" not in _rules(case, conv)
    bad = copy.deepcopy(case.model_dump(mode="json"))
    bad["medications"] = [m for m in bad["medications"] if m["name"] != "Magnesium sulfate"]
    assert "low-magnesium-unreplaced" in _rules(bad, conv)


def test_hyperkalaemia_with_ecg_changes_gets_calcium_in_adrenal_crisis() -> None:
    """41-000515: potassium 6.4 with peaked T waves and no calcium gluconate."""
    case, conv = _case(515)
    assert case.conditions[0].code == "adrenal_crisis"
    assert _day0(case)["potassium"] > 5.5
    assert "Calcium gluconate 10%" in {m.name for m in case.medications}
    assert any("IV calcium gluconate given" in t.text for t in conv.turns)
    assert "care-below-severity" not in _rules(case, conv)
    bad = copy.deepcopy(case.model_dump(mode="json"))
    bad["medications"] = [m for m in bad["medications"] if m["name"] != "Calcium gluconate 10%"]
    assert "care-below-severity" in _rules(bad, conv)


def test_low_haemoglobin_on_antithrombotics_is_addressed() -> None:
    """41-000024: haemoglobin 11.6 flagged in an NSTEMI on DAPT and enoxaparin, unsaid."""
    case, conv = _case(24)
    assert case.conditions[0].code == "nstemi"
    assert _day0(case)["hemoglobin"] < 12.1
    said = [t.text for t in conv.turns if "bleeding risk weighed" in t.text]
    assert said and "Haemoglobin 11.6 g/dL" in said[0]
    assert _rules(case, conv) == []
    bad = copy.deepcopy(conv.model_dump(mode="json"))
    bad["turns"] = [t for t in bad["turns"] if "bleeding risk weighed" not in t["text"]]
    assert "care-below-severity" in _rules(case, bad)


# ----------------------------------------------------------------- ordered, and in time


def test_sputum_results_are_ordered_and_come_after_the_chest_x_ray() -> None:
    """41-000523: sputum AFB smear and TB NAAT back with the first bloods, before the chest
    X-ray report, with only bloods and a chest X-ray requested."""
    case, conv = _case(523)
    assert case.conditions[0].code == "pulmonary_tuberculosis"
    texts = [t.text for t in conv.turns]
    orders = next(i for i, t in enumerate(texts) if t.startswith("Let's send"))
    assert "a sputum sample" in texts[orders]
    xray = next(i for i, t in enumerate(texts) if t.startswith("Chest X-ray:"))
    rows = {i: [str(r[0]) for a in t.attachments for r in a.rows] for i, t in enumerate(conv.turns)}
    (sputum,) = [i for i, names in rows.items() if "Sputum acid-fast bacilli smear" in names]
    assert orders < xray < sputum
    assert set(rows[sputum]) == {
        "Sputum acid-fast bacilli smear",
        "Mycobacterium tuberculosis NAAT (sputum)",
    }
    found = _rules(case, conv)
    assert "sample-not-taken" not in found and "result-too-fast" not in found


def test_unordered_sputum_with_the_bloods_is_flagged() -> None:
    from behaviorsft.build.lint_values import check_conversation

    found: list[str] = []

    class Where:
        def add(self, rule: str, message: str, turn: int | None = None) -> None:
            found.append(rule)

    def conv(order: str) -> dict[str, Any]:
        return {
            "turns": [
                {"index": 0, "role": "emergency physician", "text": order},
                {
                    "index": 1,
                    "role": "resident",
                    "text": "The first results are in.",
                    "attachments": [
                        {
                            "title": "CBC (day 0)",
                            "columns": ["test", "value"],
                            "rows": [
                                ["Hemoglobin", "10.5"],
                                ["Sputum acid-fast bacilli smear", "negative"],
                                ["Mycobacterium tuberculosis NAAT (sputum)", "detected"],
                            ],
                        }
                    ],
                },
            ]
        }

    check_conversation(load_kb(), Where(), conv("Let's send admission bloods."))
    assert found.count("sample-not-taken") == 2 and found.count("result-too-fast") == 1
    found.clear()
    check_conversation(load_kb(), Where(), conv("Admission bloods and a sputum sample please."))
    assert found == ["result-too-fast"]


def test_tryptase_is_ordered_and_back_after_the_plan() -> None:
    """41-000543: serum tryptase back with the first bloods, about an hour from onset."""
    case, conv = _case(543)
    assert case.conditions[0].code == "anaphylaxis"
    texts = [t.text for t in conv.turns]
    orders = next(i for i, t in enumerate(texts) if t.startswith("Let's send"))
    assert "a serum tryptase" in texts[orders]
    plan = next(i for i, t in enumerate(texts) if t.startswith("Plan:"))
    shown = [
        i
        for i, t in enumerate(conv.turns)
        if any(str(r[0]) == "Serum tryptase" for a in t.attachments for r in a.rows)
    ]
    assert shown and min(shown) > plan
    assert "ng/mL" in texts[min(shown)]
    found = _rules(case, conv)
    assert "sample-not-taken" not in found and "result-too-fast" not in found


def test_tryptase_with_the_first_bloods_is_flagged() -> None:
    from behaviorsft.build.lint_values import check_conversation

    found: list[str] = []

    class Where:
        def add(self, rule: str, message: str, turn: int | None = None) -> None:
            found.append(rule)

    turns = [
        {"index": 0, "role": "emergency physician", "text": "Bloods and a serum tryptase."},
        {
            "index": 1,
            "role": "resident",
            "text": "Admission bloods are back.",
            "attachments": [{"rows": [["Lactate", "2.2"], ["Serum tryptase", "21.1"]]}],
        },
    ]
    check_conversation(load_kb(), Where(), {"turns": turns})
    assert found == ["result-too-fast"]
    found.clear()
    turns[1]["attachments"] = [{"rows": [["Serum tryptase", "21.1"]]}]
    check_conversation(load_kb(), Where(), {"turns": turns})
    assert found == []


# ----------------------------------------------------------------- planted slips


def test_planted_electrolyte_slip_keeps_the_panel_possible() -> None:
    """A data-conflict slip of one electrolyte stays one the rest of the panel allows (a
    chloride of 136 beside sodium 139 and bicarbonate 30 leaves a gap of -27)."""
    from types import SimpleNamespace

    from behaviorsft.build.lint_values import panel_possible
    from behaviorsft.build.tasks.conflict_pools import panel_kept
    from behaviorsft.records import Finding

    assert not panel_possible({"sodium": 139, "chloride": 136, "bicarbonate": 30})
    assert panel_possible({"sodium": 139, "chloride": 78, "bicarbonate": 30})
    assert not panel_possible({"sodium": 152, "bicarbonate": 18, "anion_gap": 2})
    kb = load_kb()

    def lab(lid: str, value: float) -> Finding:
        return Finding(name=kb.labs[lid].name, kind="lab", value=value, unit="mmol/L", day=0)

    chloride = lab("chloride", 97)
    ctx = SimpleNamespace(
        kb=kb, case=SimpleNamespace(findings=[lab("sodium", 139), chloride, lab("bicarbonate", 30)])
    )
    slips = ["78 mmol/L", "68 mmol/L", "87 mmol/L", "58 mmol/L", "121 mmol/L", "136 mmol/L"]
    # 58 leaves a gap of 51, 121 and 136 a negative one
    assert panel_kept(ctx, chloride, slips, 3) == ["78 mmol/L", "68 mmol/L", "87 mmol/L"]
    # fewer than k possible ones: all are kept (the item is still made)
    assert panel_kept(ctx, chloride, slips, 4) == slips
    potassium = lab("potassium", 2.9)
    assert panel_kept(ctx, potassium, ["4.1 mmol/L"], 5) == ["4.1 mmol/L"]


@pytest.mark.parametrize("index", [462, 420])
def test_raised_creatinine_in_gout_is_said_and_bars_the_nsaid(index: int) -> None:
    """Round 10, 43-000462 and 43-000420: creatinine 1.79 / 1.65 flagged, never addressed,
    with naproxen in the plan of the first."""
    case, conv = _case(index, seed=43)
    assert case.conditions[0].code == "acute_gout"
    assert _day0(case)["creatinine"] > 1.1
    assert "Naproxen" not in {m.name for m in case.medications}
    assert any("reduced renal function, so no NSAID" in t.text for t in conv.turns)
    assert _rules(case, conv) == []
    bad = copy.deepcopy(conv.model_dump(mode="json"))
    bad["turns"] = [t for t in bad["turns"] if "so no NSAID" not in t["text"]]
    assert "care-below-severity" in _rules(case, bad)
    bad_case = copy.deepcopy(case.model_dump(mode="json"))
    bad_case["medications"].append(
        {"name": "Naproxen", "dose_value": 500, "dose_unit": "mg", "route": "PO"}
        | {"frequency": "q12h", "indication": "Acute gout flare"}
    )
    assert "drug-barred-by-value" in _rules(bad_case, conv)


def test_outpatient_bloods_are_ordered() -> None:
    """Round 10, 43-000213: only a urine sample and urine microscopy requested, yet the
    BMP and CBC come back."""
    case, conv = _case(213, seed=43)
    assert case.conditions[0].code == "uncomplicated_cystitis"
    texts = [t.text for t in conv.turns]
    orders = next(i for i, t in enumerate(texts) if "urine sample" in t)
    assert "bloods for renal function" in texts[orders]
    assert "result-unordered" not in _rules(case, conv)


def test_blood_results_with_no_bloods_ordered_are_flagged() -> None:
    from behaviorsft.build.lint_values import check_conversation

    found: list[str] = []

    class Where:
        def add(self, rule: str, message: str, turn: int | None = None) -> None:
            found.append(rule)

    def conv(case_id: str, order: str) -> dict[str, Any]:
        rows = [["Creatinine", "0.69"], ["Urine nitrite (dipstick)", "positive"]]
        return {
            "case_id": case_id,
            "turns": [
                {"index": 0, "role": "emergency physician", "text": order},
                {"index": 1, "role": "resident", "text": "The first results are in."}
                | {"attachments": [{"rows": rows}]},
            ],
        }

    kb = load_kb()
    check_conversation(kb, Where(), conv("synthetic:43-000213", "A urine sample please."))
    assert found == ["result-unordered"]
    found.clear()
    check_conversation(kb, Where(), conv("synthetic:1-1", "A urine sample and bloods please."))
    assert found == []
    check_conversation(kb, Where(), conv("fhir:abc", "Summary of the chart."))  # imported
    assert found == []


@pytest.mark.parametrize(
    ("index", "phrases"),
    [
        (35, ("a mild rise the fast rate explains", "a failing ventricle cannot be excluded")),
        (363, ("a low-level rise, common in decompensated heart failure",)),
    ],
)
def test_flagged_cardiac_markers_are_read(index: int, phrases: tuple[str, ...]) -> None:
    """Round 10, 43-000035 (troponin 22 and BNP 446 in AF) and 43-000363 (troponin 23 in
    decompensated heart failure): flagged, never discussed."""
    case, conv = _case(index, seed=43)
    texts = [t.text for t in conv.turns]
    for phrase in phrases:
        assert any(phrase in t for t in texts), phrase
    assert "care-below-severity" not in _rules(case, conv)
    bad = copy.deepcopy(conv.model_dump(mode="json"))
    bad["turns"] = [t for t in bad["turns"] if phrases[0] not in t["text"]]
    assert "care-below-severity" in _rules(case, bad)
