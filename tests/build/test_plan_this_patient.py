"""Round-12 review (seed 53): plan lines that are this patient's. A plan clause naming a
drug group names the patient's own drug or is left out; a care item meant for the people
on a drug is recorded only for a patient on it; and the rule that reports either."""

from __future__ import annotations

import re

import pytest

from behaviorsft.sources import prescribing, severity
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.patient import TARGET_SAID, oxygen_started, oxygen_target
from tests.build.kb_records import as_records, build_item, lint_rules

SEED = 53


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _said(rendered) -> str:
    return " ".join(t.text for t in rendered.conversation.turns)


def test_53_000128_rhabdomyolysis_plan_names_no_statin_for_metoprolol_alone(kb):
    """'stop causative drugs (e.g. statins)' with only metoprolol taken (turn 23)."""
    case, rendered, tasks = build_item(kb, 128, SEED)
    assert case.conditions[0].code == "rhabdomyolysis"
    assert not any("statin" in (m.drug_class or "").lower() for m in case.medications)
    assert "statins" not in _said(rendered)
    assert "causative drugs" not in _said(rendered)
    assert "plan-untaken-drug" not in lint_rules(kb, *as_records(case, rendered, tasks))


def test_53_000503_aki_plan_holds_lisinopril_without_template_nephrotoxins(kb):
    """'stop nephrotoxins (NSAIDs, aminoglycosides)' with only lisinopril named."""
    case, rendered, _ = build_item(kb, 503, SEED)
    assert case.conditions[0].code == "aki"
    plan = rendered.conversation.turns[rendered.anchors["plan"]].text
    assert "NSAIDs" not in plan and "aminoglycosides" not in plan
    assert "hold lisinopril" in plan


def test_53_000553_sulfonylurea_hypoglycaemia_has_no_insulin_plan_or_glucagon(kb):
    """Day-2 'reduce insulin doses' and 'Documented: glucagon prescribed' for a patient on
    glipizide and metformin, no insulin."""
    case, rendered, tasks = build_item(kb, 553, SEED)
    assert case.conditions[0].code == "hypoglycemia"
    assert not any("insulin" in (m.drug_class or "").lower() for m in case.medications)
    said = _said(rendered)
    assert "reduce insulin doses" not in said
    assert "glucagon prescribed" not in said
    day2 = rendered.conversation.turns[rendered.anchors["next_steps"]].text
    assert "insulin secretagogues (glipizide)" in day2
    # the 15-minute recheck recorded as done is shown with its value; no hourly checks promised
    assert re.search(r"capillary glucose rechecked 15 minutes later: \d+ mg/dL", said)
    assert "every hour" not in said
    assert "plan-untaken-drug" not in lint_rules(kb, *as_records(case, rendered, tasks))


@pytest.mark.parametrize(
    ("action", "meds", "expected"),
    [
        ("stop causative drugs (e.g. statins)", [("Metoprolol", "beta-blocker")], []),
        (
            "stop causative drugs (e.g. statins)",
            [("Atorvastatin", "HMG-CoA reductase inhibitor (statin)")],
            ["stop causative drugs (atorvastatin)"],
        ),
        (
            "stop nephrotoxins (NSAIDs, aminoglycosides) and hold ACE inhibitor/ARB",
            [("Lisinopril", "ACE inhibitor")],
            ["hold ACE inhibitor/ARB"],
        ),
        (
            "stop nephrotoxins (NSAIDs, aminoglycosides) and hold ACE inhibitor/ARB",
            [("Ibuprofen", "NSAID")],
            ["stop nephrotoxins (ibuprofen) and hold ACE inhibitor/ARB"],
        ),
        (
            "adjust or stop insulin secretagogues and reduce insulin doses",
            [("Insulin glargine", "long-acting insulin")],
            ["reduce insulin doses (insulin glargine)"],
        ),
        ("adjust or stop insulin secretagogues and reduce insulin doses", [], []),
        ("stop sedatives; protect the airway", [], ["protect the airway"]),
    ],
)
def test_own_drugs_names_the_drug_taken_or_leaves_the_clause_out(action, meds, expected):
    assert prescribing.own_drugs([action], meds) == expected


def test_care_item_for_people_on_a_drug_applies_only_to_them():
    item = "glucagon prescribed for people on insulin at risk of level 2 or 3 hypoglycaemia"
    assert not prescribing.care_applies(item, ["Glipizide sulfonylurea"])
    assert prescribing.care_applies(item, ["Insulin glargine long-acting insulin"])
    assert prescribing.care_applies("serial CK", [])


def test_template_group_clause_is_reported(kb):
    """The old rhabdomyolysis plan (metoprolol alone, 'stop causative drugs (e.g.
    statins)') is a plan-untaken-drug finding."""
    case, rendered, tasks = build_item(kb, 128, SEED)
    c, conv, ts = as_records(case, rendered, tasks)
    plan = conv["turns"][rendered.anchors["plan"]]
    plan["text"] = plan["text"].rstrip(".") + "; stop causative drugs (e.g. statins)."
    assert "plan-untaken-drug" in lint_rules(kb, c, conv, ts)


def test_care_item_for_another_population_is_reported(kb):
    """The old checklist line 'Documented: glucagon prescribed.' on glipizide alone."""
    case, rendered, tasks = build_item(kb, 553, SEED)
    c, conv, ts = as_records(case, rendered, tasks)
    care = conv["turns"][rendered.anchors["care"]]
    care["text"] = "Documented: glucagon prescribed."
    assert "plan-untaken-drug" in lint_rules(kb, c, conv, ts)


def test_53_000477_asthma_plan_keeps_one_oxygen_target_and_no_second_magnesium(kb):
    """Triage oxygen 'target 94-98%' against the plan's 'SpO2 93-95%', and 'Magnesium
    sulfate 2 g IV once' ordered after the severity turn gave IV magnesium 2 g."""
    case, rendered, tasks = build_item(kb, 477, SEED)
    assert case.conditions[0].code == "asthma_exacerbation"
    said = [t.text for t in rendered.conversation.turns]
    targets = {m["range"] for t in said for m in TARGET_SAID.finditer(t)}
    assert targets == {"93-95"}
    assert any("magnesium sulfate 2 g given" in t for t in said)
    plan = said[rendered.anchors["plan"]]
    mg = next(p for p in plan.split("; ") if p.startswith("Magnesium sulfate"))
    assert mg.endswith("already given, not repeated")
    rules = lint_rules(kb, *as_records(case, rendered, tasks))
    assert "target-inconsistent" not in rules and "reorder-given" not in rules


def test_oxygen_target_is_the_condition_range():
    assert oxygen_target(["controlled oxygen to SpO2 93-95% (GINA 2024)"]) == "93-95"
    assert oxygen_target(["oxygen to SpO2 92-96% (NIH)"]) == "92-96"
    # the BTS pair is settled per patient elsewhere (wording.py): no single range
    bts = "titrate oxygen to SpO2 94-98% (88-92% if at risk of hypercapnia) (BTS 2017)"
    assert oxygen_target([bts]) is None
    assert oxygen_started(90, ["asthma"], [], "93-95").endswith("target 93-95%.")
    assert oxygen_started(90, ["pneumonia"], []).endswith("target 94-98%.")


def test_differing_oxygen_targets_and_a_reordered_dose_are_reported(kb):
    """The old asthma record: 94-98% at triage, and magnesium ordered again in the plan."""
    case, rendered, tasks = build_item(kb, 477, SEED)
    c, conv, ts = as_records(case, rendered, tasks)
    for turn in conv["turns"]:
        turn["text"] = turn["text"].replace("target 93-95%", "target 94-98%")
        turn["text"] = turn["text"].replace(": already given, not repeated", "")
    rules = lint_rules(kb, c, conv, ts)
    assert "target-inconsistent" in rules and "reorder-given" in rules


def test_after_given_marks_a_dose_given_before_the_plan():
    said = ["Life-threatening features: prednisone 40 mg PO and IV magnesium sulfate 2 g given."]
    assert severity.after_given(
        "Magnesium sulfate 2 g IV once", "Magnesium sulfate", "once", said
    ) == ("Magnesium sulfate 2 g IV once: already given, not repeated")
    assert severity.after_given("Prednisone 40 mg PO", "Prednisone", "once daily", said).endswith(
        "continuing from the dose already given"
    )
    assert severity.after_given("Ceftriaxone 2 g IV", "Ceftriaxone", "once", said) == (
        "Ceftriaxone 2 g IV"
    )


def test_53_000128_hyperkalaemia_the_plan_treats_is_treated(kb):
    """Potassium 6.5 with the plan 'treat hyperkalaemia' and nothing given: insulin with
    glucose is charted and the plan says so."""
    case, rendered, tasks = build_item(kb, 128, SEED)
    k = next(f.value for f in case.findings if f.name == "Potassium" and f.day == 0)
    assert k >= prescribing.INSULIN_GLUCOSE_FROM
    names = [m.name for m in case.medications]
    assert "Insulin regular (human)" in names and "Dextrose 50% injection" in names
    plan = rendered.conversation.turns[rendered.anchors["plan"]].text
    assert "treat hyperkalaemia" not in plan
    assert f"hyperkalaemia (potassium {k:g}) treated with the insulin and glucose" in plan
    assert "treat-without-order" not in lint_rules(kb, *as_records(case, rendered, tasks))


@pytest.mark.parametrize(
    ("potassium", "expected"),
    [
        (4.9, "avoid calcium for asymptomatic hypocalcaemia"),
        (5.8, "mild hyperkalaemia (potassium 5.8): no insulin-glucose below 6.0; avoid calcium"),
        (6.2, "hyperkalaemia (potassium 6.2) treated with the insulin and glucose; avoid calcium"),
    ],
)
def test_potassium_action_says_this_patients_potassium(potassium, expected):
    action = "treat hyperkalaemia; avoid calcium for asymptomatic hypocalcaemia"
    assert prescribing.potassium_action(action, potassium).startswith(expected)


def test_53_000449_low_phosphate_in_withdrawal_is_replaced(kb):
    """Phosphate 2.1 flagged in alcohol withdrawal and never replaced."""
    case, rendered, tasks = build_item(kb, 449, SEED)
    assert case.conditions[0].code == "alcohol_withdrawal"
    phosphate = next(f.value for f in case.findings if f.name == "Phosphate" and f.day == 0)
    assert phosphate < 2.5
    assert any(m.name.startswith("Oral phosphate") for m in case.medications)
    assert "Oral phosphate" in rendered.conversation.turns[rendered.anchors["plan"]].text
    assert "treat-without-order" not in lint_rules(kb, *as_records(case, rendered, tasks))


def test_untreated_values_are_reported(kb):
    """The old records: rhabdomyolysis 'treat hyperkalaemia' with no insulin, and alcohol
    withdrawal with phosphate 2.1 and no phosphate given."""
    case, rendered, tasks = build_item(kb, 128, SEED)
    c, conv, ts = as_records(case, rendered, tasks)
    c["medications"] = [m for m in c["medications"] if "Insulin" not in m["name"]]
    plan = conv["turns"][rendered.anchors["plan"]]
    plan["text"] = plan["text"].rstrip(".") + "; treat hyperkalaemia."
    assert "treat-without-order" in lint_rules(kb, c, conv, ts)
    case, rendered, tasks = build_item(kb, 449, SEED)
    c, conv, ts = as_records(case, rendered, tasks)
    c["medications"] = [m for m in c["medications"] if "phosphate" not in m["name"]]
    assert "treat-without-order" in lint_rules(kb, c, conv, ts)


def test_53_000469_confused_diabetic_has_a_bedside_glucose_before_the_ct_head(kb):
    """A confused diabetic on a sulfonylurea had a CT head requested before any bedside
    glucose; the capillary glucose (49) came only with the admission bloods."""
    case, rendered, tasks = build_item(kb, 469, SEED)
    turns = rendered.conversation.turns
    orders = rendered.anchors["orders"]
    first = next(
        i
        for i, t in enumerate(turns)
        for a in t.attachments or []
        for r in a.rows
        if r[0] == "Capillary (fingerstick) glucose"
    )
    assert first < orders and first < rendered.anchors["exam"]
    assert "bedside glucose at triage" in turns[first].text
    assert "glucose-after-study" not in lint_rules(kb, *as_records(case, rendered, tasks))


def test_glucose_after_the_study_is_reported(kb):
    """The old order: the bedside glucose table moved after the CT head request."""
    case, rendered, tasks = build_item(kb, 469, SEED)
    c, conv, ts = as_records(case, rendered, tasks)
    turns = conv["turns"]
    first = next(i for i, t in enumerate(turns) if "bedside glucose at triage" in t["text"])
    moved = turns[first]["attachments"]
    turns[first]["attachments"] = []
    turns[rendered.anchors["labs"]]["attachments"] += moved
    assert "glucose-after-study" in lint_rules(kb, c, conv, ts)


def test_53_000477_potassium_plan_promises_no_recheck_the_record_lacks(kb):
    """'guided by serum potassium rechecked within 4-6 h' with the first repeat potassium
    on day 1 at 11:30."""
    case, rendered, tasks = build_item(kb, 477, SEED)
    said = " ".join(t.text for t in rendered.conversation.turns)
    assert "Potassium chloride 20 mEq PO once, then" in said
    assert "rechecked within" not in said
    assert "recheck-not-done" not in lint_rules(kb, *as_records(case, rendered, tasks))


def test_recheck_within_hours_not_shown_is_reported(kb):
    """The old plan text: a recheck within 4-6 h, the next potassium on day 1."""
    case, rendered, tasks = build_item(kb, 477, SEED)
    c, conv, ts = as_records(case, rendered, tasks)
    plan = conv["turns"][rendered.anchors["plan"]]
    plan["text"] = plan["text"].replace(
        "adjusted to the serum potassium", "guided by serum potassium rechecked within 4-6 h"
    )
    assert "rechecked within 4-6 h" in plan["text"]
    assert "recheck-not-done" in lint_rules(kb, c, conv, ts)


def test_53_000525_tongue_angioedema_brings_an_airway_assessment(kb):
    """Tongue and lip angioedema with falling saturation and no airway assessment or
    anaesthetic call; the day-2 plan offered glucagon 'in patients taking beta-blockers'
    to a patient on none."""
    case, rendered, tasks = build_item(kb, 525, SEED)
    assert case.conditions[0].code == "anaphylaxis"
    said = [t.text for t in rendered.conversation.turns]
    airway = next(i for i, t in enumerate(said) if "airway assessed by the on-call" in t)
    assert airway < rendered.anchors["plan"]
    assert "tongue" in said[airway]
    assert not any("beta-blocker" in (m.drug_class or "") for m in case.medications)
    assert "in patients taking beta-blockers" not in " ".join(said)
    rules = lint_rules(kb, *as_records(case, rendered, tasks))
    assert "care-below-severity" not in rules and "plan-untaken-drug" not in rules


def test_airway_left_unassessed_is_reported(kb):
    """The old record: tongue angioedema and no airway statement; the glucagon step."""
    case, rendered, tasks = build_item(kb, 525, SEED)
    c, conv, ts = as_records(case, rendered, tasks)
    conv["turns"] = [t for t in conv["turns"] if "airway assessed" not in t["text"]]
    assert "care-below-severity" in lint_rules(kb, c, conv, ts)
    step = conv["turns"][rendered.anchors["next_steps"] - 1]
    step["text"] += (
        " Glucagon for epinephrine-refractory anaphylaxis in patients taking beta-blockers."
    )
    assert "plan-untaken-drug" in lint_rules(kb, c, conv, ts)


def test_own_drugs_keeps_every_action_after_a_named_one():
    """An action after one naming the patient's drug is judged on the medicines, not on
    the words of the clause before it."""
    meds = [("Atorvastatin", "HMG-CoA reductase inhibitor (statin)"), ("Warfarin", "VKA")]
    actions = ["stop causative drugs (e.g. statins)", "INR in patients on warfarin"]
    assert prescribing.own_drugs(actions, meds) == [
        "stop causative drugs (atorvastatin)",
        "INR in patients on warfarin",
    ]
    assert prescribing.own_drugs(actions[1:], meds[:1]) == []


def test_53_000229_ct_angiography_gives_its_result(kb):
    """CT angiography planned (turn 24) with thrombectomy in the plan, no result ever."""
    case, rendered, tasks = build_item(kb, 229, SEED)
    assert case.conditions[0].code == "ischemic_stroke"
    cta = [t.text for t in rendered.conversation.turns if t.text.startswith("CT angiography")]
    assert cta and cta[0].endswith(": no large-vessel occlusion, so no thrombectomy.")
    assert "planned-result-missing" not in lint_rules(kb, *as_records(case, rendered, tasks))


def test_day0_study_without_result_is_reported(kb):
    case, rendered, tasks = build_item(kb, 229, SEED)
    c, conv, ts = as_records(case, rendered, tasks)
    for turn in conv["turns"]:
        turn["text"] = turn["text"].replace(": no large-vessel occlusion, so no thrombectomy", "")
    assert "planned-result-missing" in lint_rules(kb, c, conv, ts)
