"""Planted errors a clinician could make: every new order of explicit_error_correction has
the indication it was written for, one the record gives (session-8 review, seed 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.lint import lint_bench
from behaviorsft.build.lint_errors import indication_problem, order_indication
from behaviorsft.build.tasks import case_tasks
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.planted_orders import (
    VTE_PROPHYLAXIS,
    Patient,
    allergy_orders,
    indication,
    orderable_group,
    ward_orders,
)
from behaviorsft.sources.synthetic import allergy_group_of, synthesize_case
from behaviorsft.taxonomy import TaskType as T
from tests.build.kb_records import kb_record

SEED = 17


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _tasks(kb, index: int, seed: int = SEED, *, with_turns: bool = False):
    case = synthesize_case(index, seed=seed, kb=kb)
    rendered = render(case, kb, seed=seed)
    tasks = {t.id: t for t in case_tasks(case, rendered, kb, seed=seed)}
    if with_turns:
        return case, tasks, [turn.text for turn in rendered.conversation.turns]
    return case, tasks


def _ordered_drug(kb, order: str):
    return next(d for d in kb.drugs.values() if order.startswith(d.name + " "))


@pytest.mark.parametrize(
    ("index", "key"),
    [
        # (148-x0, lisinopril on day 2 of thyroid storm, is gone: its patient's fallback
        # allergy was a past HIT, now drawn for one patient in four: history.py)
        (213, "x0"),  # IV vancomycin for improving cellulitis
        (187, "x1"),  # tenfold insulin in a hyperosmolar state
        # (201-x2, levofloxacin every 2 hours, is gone: levofloxacin is the alternative for
        # a penicillin allergy, whose dose no "usual" dose pool holds)
        (243, "x2"),  # ceftriaxone every 2 hours for pneumonia
    ],
)
def test_reviewed_orders_state_an_indication_the_record_gives(kb, index, key):
    case, tasks, turns = _tasks(kb, index, with_turns=True)
    t = tasks[f"{case.id}:explicit_error_correction:{key}"]
    parsed = order_indication(t.context.excerpt or "")
    assert parsed is not None, t.context.excerpt
    order, why = parsed
    assert why is not None, t.context.excerpt
    assert indication_problem(case.model_dump(mode="json"), why) is None, t.context.excerpt
    # ... and the conversation shows it: the team's working diagnosis, or the pneumonia
    # the chest film found
    if why.startswith("Pneumonia precipitating"):
        assert any("consolidation" in x for x in turns)
    elif why == case.conditions[0].name:
        said = [x.lower() for x in turns if "working diagnosis" in x.lower()]
        assert any(why.lower() in x for x in said), said
    drug = _ordered_drug(kb, order)
    if key == "x0":
        # the slip is the allergy group of a drug this patient needs, not a stray order
        group = allergy_group_of(kb, case.allergies[0].substance)
        assert group in drug.allergy_groups
    else:
        # the dose and frequency errors are in a drug of the plan, written for its reason
        assert any(m.name == drug.name for m in case.medications)


def test_every_order_of_forty_cases_has_a_supported_indication(kb):
    seen = {"x0": 0, "x1": 0, "x2": 0, "xc": 0}
    for index in range(40):
        case, tasks = _tasks(kb, index)
        record = case.model_dump(mode="json")
        for t in tasks.values():
            if t.task_type is not T.EXPLICIT_ERROR_CORRECTION:
                continue
            parsed = order_indication(t.context.excerpt or "")
            assert parsed is not None and parsed[1] is not None, t.id
            assert indication_problem(record, parsed[1]) is None, (t.id, t.context.excerpt)
            seen[t.id.rsplit(":", 1)[1]] += 1
    assert all(seen.values()), seen


# ------------------------------------------------------------------ the kinds of order


def _patient(age=50.0, complaints=(), gfr=90.0, sbp=130.0, potassium=4.2):
    return Patient(age, tuple(complaints), gfr, sbp, potassium)


def test_a_group_drug_the_guideline_gives_for_the_diagnosis(kb):
    cap = kb.conditions["community_acquired_pneumonia"]
    orders = allergy_orders(kb, cap, "penicillins", _patient())
    assert [o.drug.id for o in orders] == ["amoxicillin"]
    assert orders[0].indication == cap.name


def test_a_conditional_drug_alone_is_no_indication(kb):
    # vancomycin is cellulitis's MRSA add-on ("if SIRS with MRSA risk"): the record never
    # gives that reason, so a glycopeptide allergy has no order to clash with there
    cellulitis = kb.conditions["cellulitis"]
    no_pain = _patient(complaints=("spreading redness of the leg",))
    assert allergy_orders(kb, cellulitis, "glycopeptides", no_pain) == []


def test_no_orphan_order_of_an_unrelated_group(kb):
    # 17-000148: an ACE inhibitor in thyroid storm with no hypertension
    storm = kb.conditions["thyroid_storm"]
    assert allergy_orders(kb, storm, "ace_inhibitors", _patient()) == []


def test_vte_prophylaxis_where_the_record_allows_it(kb):
    storm = kb.conditions["thyroid_storm"]
    (o,) = allergy_orders(kb, storm, "heparins", _patient())
    assert (o.text, o.indication) == ("Enoxaparin 40 mg SC once daily", VTE_PROPHYLAXIS)
    (low,) = allergy_orders(kb, storm, "heparins", _patient(gfr=20.0))
    assert low.text == "Enoxaparin 30 mg SC once daily"  # the KB's dose at CrCl < 30
    for bleed in ("upper_gi_bleed", "lower_gi_bleed"):
        assert allergy_orders(kb, kb.conditions[bleed], "heparins", _patient()) == []
    # already anticoagulated: no prophylaxis on top
    assert not [o for o in ward_orders(kb, kb.conditions["atrial_fibrillation_rvr"], _patient())]
    # a short stay of a young, mobile patient: none
    assert allergy_orders(kb, kb.conditions["anaphylaxis"], "heparins", _patient(age=30)) == []


def test_an_nsaid_only_for_a_reported_pain_where_one_is_safe(kb):
    cellulitis = kb.conditions["cellulitis"]
    pain = ("pain and tenderness",)
    (o,) = allergy_orders(kb, cellulitis, "nsaids", _patient(complaints=pain))
    assert o.drug.id == "naproxen" and o.indication == "Pain (pain and tenderness)"
    assert allergy_orders(kb, cellulitis, "nsaids", _patient(complaints=pain, age=70)) == []
    assert allergy_orders(kb, cellulitis, "nsaids", _patient(complaints=pain, gfr=45)) == []
    assert allergy_orders(kb, cellulitis, "nsaids", _patient()) == []


def test_after_an_infarction_gastric_protection_and_an_ace_inhibitor(kb):
    stemi = kb.conditions["stemi"]
    (ppi,) = allergy_orders(kb, stemi, "proton_pump_inhibitors", _patient())
    assert ppi.text == "Pantoprazole 40 mg PO once daily"
    (acei,) = allergy_orders(kb, stemi, "ace_inhibitors", _patient())
    assert acei.text == "Lisinopril 2.5 mg PO once daily"
    assert allergy_orders(kb, stemi, "ace_inhibitors", _patient(sbp=90)) == []
    assert allergy_orders(kb, stemi, "ace_inhibitors", _patient(potassium=5.6)) == []


def test_the_antibacterial_of_a_hyperosmolar_state_is_for_its_pneumonia(kb):
    hhs = kb.conditions["hhs"]
    assert indication(kb, hhs, "Ceftriaxone") == (
        "Pneumonia precipitating the hyperosmolar hyperglycaemic state"
    )
    assert indication(kb, hhs, "Insulin regular (human)") == hhs.name


def test_an_allergy_no_order_could_clash_with_is_redrawn(kb):
    storm = kb.conditions["thyroid_storm"]
    fitting = ["ace_inhibitors", "heparins", "nitrofurans"]
    group = orderable_group(kb, storm, "ace_inhibitors", fitting, _patient(), "17:148")
    assert group == "heparins"
    assert orderable_group(kb, storm, "heparins", fitting, _patient(), "x") == "heparins"
    # nothing orderable: the drawn group stays
    assert orderable_group(kb, storm, "nitrofurans", ["nitrofurans"], _patient(), "x") == (
        "nitrofurans"
    )


def test_most_allergies_of_a_synthetic_stream_allow_an_indicated_order(kb):
    allergic = orderable = 0
    for index in range(120):
        case = synthesize_case(index, seed=7, kb=kb)
        if not case.allergies:
            continue
        allergic += 1
        _, tasks = _tasks(kb, index, seed=7)
        orderable += f"{case.id}:explicit_error_correction:x0" in tasks
    # many allergies allow an indicated order: the stop stays the key of about one item
    # in six (main: one in five), enough for the options to stay balanced (38 of 62, then
    # 37 of 62 once home medicines the history bars were dropped; 23 of 62 once a past HIT,
    # which an enoxaparin order fits in almost any admission, became the fallback allergy of
    # one patient in four instead of all: round 12 found it a stamp; the audit measures the
    # balance itself)
    assert orderable >= 0.35 * allergic, (orderable, allergic)


# ------------------------------------------------------------------------- the linter


def _task(case: dict, excerpt: str, key: str = "x0") -> dict:
    return {
        "id": f"{case['id']}:explicit_error_correction:{key}",
        "case_id": case["id"],
        "task_type": "explicit_error_correction",
        "context": {"turn_start": 0, "turn_end": 3, "excerpt": excerpt},
    }


def _lint(tmp_path: Path, case: dict, tasks: list[dict]):
    (tmp_path / "cases.jsonl").write_text(json.dumps(case) + "\n")
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return [f for f in lint_bench(tmp_path) if f.rule == "order-no-indication"]


def test_linter_flags_an_order_with_no_indication(tmp_path):
    case, _ = kb_record("thyroid_storm")
    diagnosis = case["conditions"][0]["name"]
    bad = [
        _task(case, "Dr. A: New order: Lisinopril 10 mg PO once daily."),  # as in 17-000148
        _task(case, "Dr. A: New order: Lisinopril 10 mg PO once daily. Indication: Hypertension."),
        _task(case, "Dr. A: New order: Naproxen 500 mg PO q12h. Indication: Pain (toothache)."),
    ]
    good = _task(case, f"Dr. A: New order: Propranolol 60 mg PO q4h. Indication: {diagnosis}.")
    findings = _lint(tmp_path, case, [*bad, good])
    assert [f.line for f in findings] == [1, 2, 3]
    assert findings[0].location == f"{tmp_path / 'tasks.jsonl'}:1"
    assert "no indication" in findings[0].message
    assert "Hypertension" in findings[1].message


def test_linter_flags_vte_prophylaxis_in_a_bleed(tmp_path):
    case, _ = kb_record("upper_gi_bleed")
    order = "Dr. A: New order: Enoxaparin 40 mg SC once daily. Indication: VTE prophylaxis."
    (finding,) = _lint(tmp_path, case, [_task(case, order)])
    assert "VTE prophylaxis" in finding.message


def test_linter_flags_vte_prophylaxis_for_a_young_mobile_patient(tmp_path):
    case, _ = kb_record("anaphylaxis")
    case["demographics"]["age_years"] = 30
    order = "Dr. A: New order: Enoxaparin 40 mg SC once daily. Indication: VTE prophylaxis."
    (finding,) = _lint(tmp_path, case, [_task(case, order)])
    assert "at 30" in finding.message


def test_linter_passes_a_supported_ward_order(tmp_path):
    case, _ = kb_record("thyroid_storm")
    order = "Dr. A: New order: Enoxaparin 40 mg SC once daily. Indication: VTE prophylaxis."
    assert _lint(tmp_path, case, [_task(case, order, "xc")]) == []


def test_error_items_only_on_doses_the_usual_dose_pool_holds(kb):
    """A planted error's drug is a first-line drug at the dose the wrong "usual" doses are
    drawn from: a severity-changed dose (IV potassium at 10 mEq/h) or the second member of
    a choice (prednisone for gout) was the key of every dose query quoting it (10 mEq/h:
    37 of 61 items offering it, 1,500 cases)."""
    from behaviorsft.build.tasks.errors import _pooled_doses

    seen = 0
    for index in range(80):
        case = synthesize_case(index, seed=7, kb=kb)
        _, tasks = _tasks(kb, index, seed=7)
        for t in tasks.values():
            p = t.perturbation
            if t.task_type.value != "explicit_error_correction" or p is None or not p.original:
                continue
            if "Tenfold" not in (p.description or ""):
                continue
            name = kb.conditions[case.conditions[0].code].name
            med = next(
                m
                for m in case.medications
                if p.original.startswith(m.name) and m.indication == name
            )
            assert (med.dose_value, med.dose_unit) in _pooled_doses(kb, case.conditions[0].code)
            seen += 1
    assert seen >= 20
