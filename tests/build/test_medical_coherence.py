"""Medical coherence: electrolytes, arrhythmia, infection (docs/building.md).

Regression tests rebuild the items the round-7 review flagged (seed 31) and check the
defect is gone; linter tests run the rules on hand-made bad records.
"""

from __future__ import annotations

import copy

from behaviorsft.build.coherence import timed_check_shown
from behaviorsft.build.conversation import render
from behaviorsft.records import Case, Conversation
from behaviorsft.sources.history import imaging_contradicts_history, imaging_with_history
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case
from tests.build.kb_records import case_record
from tests.build.kb_records import record_rules as _rules


def _case(index: int, seed: int = 31) -> tuple[Case, Conversation]:
    return case_record(index, seed)


def _texts(conv: Conversation) -> list[str]:
    return [t.text for t in conv.turns]


# ----------------------------------------------------------------- SIADH (31-000463)


def test_siadh_severe_symptoms_get_saline_with_recheck_shown() -> None:
    """31-000463: vomiting and confusion; 3% saline in a plan calling fluid restriction
    first line 'without severe symptoms'; the per-bolus recheck claimed but never shown;
    a chest X-ray 'without a mass' in known small-cell lung cancer."""
    case, conv = _case(463)
    assert case.conditions[0].code == "hyponatremia_siadh"
    texts = _texts(conv)
    plan = next(t for t in texts if t.startswith("Plan:"))
    assert "hypertonic saline" in plan
    assert "without severe symptoms" not in plan
    said = next(t for t in texts if t.startswith("Severe symptoms (vomiting)"))
    assert "sodium rechecked 20 minutes after the bolus: " in said
    claim = [t for t in texts if "rechecked after each hypertonic bolus" in t]
    assert claim and timed_check_shown(claim[0], texts)
    xray = next(t for t in texts if t.startswith("Chest X-ray:"))
    assert "without a mass" not in xray and "known lung cancer" in xray
    assert _rules(case, conv) == []


def test_siadh_without_severe_symptoms_gets_no_hypertonic_saline() -> None:
    """Without vomiting, seizure or reduced consciousness, nor confusion with a sodium below
    125 (moderately severe): fluid restriction, no 3% saline, and no claim of rechecks after
    a bolus never given."""
    kb = load_kb()
    seen = 0
    for i in range(600):
        case = synthesize_case(i, seed=31, kb=kb)
        if case.conditions[0].code != "hyponatremia_siadh":
            continue
        reported = " ".join(f for f in case.facts if f.startswith("Reports "))
        if "vomiting" in reported or "seizure" in reported:
            continue
        sodium = next(f.value for f in case.findings if f.name == "Sodium" and f.day == 0)
        if "confusion" in reported and sodium < 125:
            continue
        seen += 1
        assert all("hypertonic" not in m.name for m in case.medications)
        texts = _texts(render(case, kb, seed=31).conversation)
        assert not any("after each hypertonic bolus" in t for t in texts)
        assert any("fluid restriction" in t for t in texts if t.startswith("Plan:"))
        if seen == 3:
            break
    assert seen


def test_timed_check_unshown_rule() -> None:
    case, conv = _case(463)
    bad = copy.deepcopy(conv.model_dump(mode="json"))
    bad["turns"] = [t for t in bad["turns"] if "rechecked 20 minutes" not in t["text"]]
    assert "timed-check-unshown" in _rules(case, bad)
    assert not timed_check_shown("sodium rechecked after each hypertonic bolus", ["Na 124."])
    assert timed_check_shown("urine sodium", [])


def test_imaging_history_contradiction_rule() -> None:
    finding = "clear lung fields without a mass or consolidation"
    assert imaging_contradicts_history("Chest X-ray", finding, "small-cell lung cancer.")
    assert imaging_contradicts_history("Chest X-ray", finding, "type 2 diabetes.") is None
    fixed = imaging_with_history("Chest X-ray", finding, ["small-cell lung cancer"])
    assert "mass" in fixed and "without a mass" not in fixed
    case, conv = _case(463)
    bad = copy.deepcopy(case.model_dump(mode="json"))
    for f in bad["findings"]:
        if f["kind"] == "imaging":
            f["value_text"] = finding
    assert "imaging-history-contradiction" in _rules(bad, conv)


# ----------------------------------------------------------------- AF (31-000216)


def test_af_no_action_control_needs_echo_and_thyroid_shown() -> None:
    """31-000216 `pc`: 'no new action' keyed with no echocardiogram or thyroid function in
    the record of a new AF; IV diltiazem with BNP 402 and the LVEF unknown."""
    from behaviorsft.build.tasks import case_tasks
    from behaviorsft.taxonomy import TaskType

    kb = load_kb()
    case = synthesize_case(216, seed=31, kb=kb)
    rendered = render(case, kb, seed=31)
    tasks = list(case_tasks(case, rendered, kb, seed=31, types={TaskType.PREDICTIVE_NEXT_ACTION}))
    assert tasks and not any(t.id.endswith(":pc") for t in tasks)
    keys = [next(o.text for o in t.options if o.label == t.answer) for t in tasks]
    assert "Thyroid function (TSH) at first diagnosis" in keys
    names = {m.name for m in case.medications}
    assert "Diltiazem" not in names and "Metoprolol tartrate" in names
    assert _rules(case, rendered.conversation) == []


def test_diltiazem_barred_by_raised_bnp() -> None:
    from behaviorsft.sources.prescribing import barred

    af = "atrial_fibrillation_rvr"
    assert barred(af, "diltiazem", "hypertension", {"bnp": 402})
    assert not barred(af, "diltiazem", "hypertension", {"bnp": 80})
    assert barred(af, "diltiazem", "heart failure with reduced ejection fraction")
    case, conv = _case(216)
    bad = copy.deepcopy(case.model_dump(mode="json"))
    for m in bad["medications"]:
        if m["name"] == "Metoprolol tartrate":
            m["name"] = "Diltiazem"
    assert "drug-barred-by-value" in _rules(bad, conv)


# ----------------------------------------------------------------- C. difficile (31-000312)


def test_cdi_history_gives_antibiotic_exposure_and_no_unshown_fulminant_advice() -> None:
    """31-000312: no antibiotic exposure in the record, yet 'antibiotic-associated
    diarrhoea' weighed and 'stop the inciting antibiotic' planned; surgical consultation
    for fulminant colitis with no hypotension, ileus or megacolon."""
    case, conv = _case(312)
    assert case.conditions[0].code == "c_difficile_infection"
    assert any("recent antibiotics" in f for f in case.facts if f.startswith("History: "))
    texts = _texts(conv)
    assert any("course of antibiotics" in t for t in texts)
    assert not any("inciting antibiotic" in t for t in texts if "Plan:" in t)
    assert not any("fulminant" in t for t in texts)
    assert not any("acid suppression" in t for t in texts)  # no PPI taken
    assert _rules(case, conv) == []


def test_every_cdi_case_has_its_exposure() -> None:
    kb = load_kb()
    seen = 0
    for i in range(312, 2000, 42):
        case = synthesize_case(i, seed=31, kb=kb)
        if case.conditions[0].code != "c_difficile_infection":
            continue
        seen += 1
        assert any("antibiotic" in f for f in case.facts if f.startswith("History: ")), case.id
        if seen == 6:
            break
    assert seen


def test_state_advice_unshown_rule() -> None:
    from behaviorsft.build.coherence import state_record, state_shown

    advice = "surgical consultation for fulminant colitis"
    assert not state_shown(advice, state_record([], ["mild distension"], 124))
    assert state_shown(advice, state_record([], ["toxic megacolon on CT"], 124))
    assert state_shown(advice, state_record([], [], 84))
    assert state_shown("complete a 10-day course", "")
    case, conv = _case(312)
    bad = copy.deepcopy(conv.model_dump(mode="json"))
    for t in bad["turns"]:
        if t["text"].startswith("Day 2 ward round. Plan:"):
            t["text"] = f"Day 2 ward round. Plan: {advice}."
    assert "state-advice-unshown" in _rules(case, bad)


def test_untaken_drops_stopping_an_antibiotic_not_taken() -> None:
    from behaviorsft.sources.prescribing import drop_untaken

    actions = ["stop the inciting antibiotic as soon as possible", "oral rehydration"]
    assert drop_untaken(actions, ["Pantoprazole proton pump inhibitor"]) == ["oral rehydration"]
    assert drop_untaken(actions, ["Clindamycin lincosamide"]) == actions


def test_low_potassium_is_replaced() -> None:
    """31-000312: potassium 3.2 with diarrhoea and no replacement in the plan."""
    case, conv = _case(312)
    k = next(f.value for f in case.findings if f.name == "Potassium" and f.day == 0)
    assert k is not None and k < 3.5
    plan = next(t for t in _texts(conv) if t.startswith("Plan:"))
    assert "Potassium chloride 20 mEq PO" in plan
    bad = copy.deepcopy(case.model_dump(mode="json"))
    bad["medications"] = [m for m in bad["medications"] if m["name"] != "Potassium chloride"]
    assert "low-potassium-unreplaced" in _rules(bad, conv)


def test_potassium_route() -> None:
    from behaviorsft.sources.prescribing import potassium_route

    assert potassium_route("c_difficile_infection", {"potassium": 3.2}, ["diarrhoea"]) == "PO"
    assert potassium_route("small_bowel_obstruction", {"potassium": 3.2}, []) == "IV"
    assert potassium_route("c_difficile_infection", {"potassium": 3.2}, ["vomiting"]) == "IV"
    assert potassium_route("c_difficile_infection", {"potassium": 3.9}, []) is None


# ----------------------------------------------------------------- adrenal crisis (round 5)


def test_adrenal_crisis_keeps_home_steroid_and_says_iv_replaces_it() -> None:
    """Round 5: the home hydrocortisone silently replaced by the IV dose (left off the
    medication list); 31-000039: 'didn't increase my steroid dose' with no steroid."""
    for index in (39, 123):
        case, conv = _case(index)
        assert case.conditions[0].code == "adrenal_crisis"
        routes = sorted(m.route or "" for m in case.medications if m.name == "Hydrocortisone")
        assert routes == ["IV", "PO"]
        plan = next(t for t in _texts(conv) if t.startswith("Plan:"))
        home = next(m for m in case.medications if m.name == "Hydrocortisone" and m.route == "PO")
        assert f"IV hydrocortisone replaces the usual oral hydrocortisone {home.dose}" in plan
        assert "double the usual dose (sick-day rules)" in plan
        assert _rules(case, conv) == []
    case, conv = _case(39)
    assert any("adrenal insufficiency" in f for f in case.facts if f.startswith("History: "))


def test_home_dose_replaced_unsaid_rule() -> None:
    case, conv = _case(123)
    bad = copy.deepcopy(conv.model_dump(mode="json"))
    for t in bad["turns"]:
        if t["text"].startswith("Plan:"):
            t["text"] = t["text"].split("; IV hydrocortisone replaces")[0] + "."
    assert "home-dose-replaced-unsaid" in _rules(case, bad)


# ----------------------------------------------------------------- round 8 (seed 37)


def test_adrenal_crisis_history_is_primary_insufficiency_on_replacement() -> None:
    """37-000557: a past adrenal haemorrhage with no glucocorticoid; 37-000053:
    hypopituitarism beside hyperpigmentation and hyperkalaemia (primary features); both:
    IV hydrocortisone 100 mg 'once' with no ongoing regimen."""
    for index in (557, 53):
        case, conv = _case(index, seed=37)
        assert case.conditions[0].code == "adrenal_crisis"
        history = case.sections[1].text
        assert "hypopituitarism" not in history
        assert "adrenal insufficiency" in history
        assert any(m.name == "Hydrocortisone" and m.route == "PO" for m in case.medications)
        plan = next(t for t in _texts(conv) if t.startswith("Plan:"))
        assert "Hydrocortisone 100 mg IV once, then 50 mg IV q6h" in plan
        assert _rules(case, conv) == []
    kb = load_kb()
    assert not any("hypopituitarism" in r for r in kb.condition("adrenal_crisis").risk_factors)


def test_iv_potassium_claim_needs_iv_potassium() -> None:
    """37-000572: 'IV potassium rate documented and limited' done with oral KCl only."""
    from behaviorsft.build.coherence import route_claim_shown

    case, conv = _case(572, seed=37)
    texts = _texts(conv)
    # claimed only beside IV potassium (ECG changes now bring it: sources/prescribing)
    iv = any(m.name == "Potassium chloride" and m.route == "IV" for m in case.medications)
    assert any("IV potassium rate" in t for t in texts) <= iv
    item = "IV potassium rate documented and limited"
    said = ["Plan: Potassium chloride 20 mEq PO once.", f"Documented: {item}."]
    assert not route_claim_shown(item, said)
    assert route_claim_shown(item, ["Plan: Potassium chloride 10 mEq/h IV continuous."])
    bad = copy.deepcopy(conv.model_dump(mode="json"))
    for t in bad["turns"]:  # potassium by mouth only, and the claim
        if "otassium chloride" in t["text"] or "IV potassium" in t["text"]:
            t["text"] = "Plan: Potassium chloride 20 mEq PO once."
    bad["turns"][-2]["text"] = f"Documented: {item}."
    assert "route-claim-unshown" in _rules(case, bad)


def test_loading_doses_come_with_their_maintenance() -> None:
    """37-000025: propylthiouracil 500 mg and hydrocortisone 300 mg 'once' with no
    maintenance dosing in thyroid storm (the KB dose's regimen, ``Dose.then``)."""
    case, conv = _case(25, seed=37)
    assert case.conditions[0].code == "thyroid_storm"
    plan = next(t for t in _texts(conv) if t.startswith("Plan:"))
    # the KB dose's own regimen (Dose.then) says it once, right after the loading dose
    assert "Propylthiouracil 500 mg PO once, then 250 mg PO q4h" in plan
    assert "Hydrocortisone 300 mg IV once, then 100 mg IV q8h" in plan
    assert plan.count("then propylthiouracil") == 0
    assert _rules(case, conv) == []


def test_history_items_bring_what_they_presuppose() -> None:
    """37-000136: 'I've never been told I have diabetes' beside 'I missed my insulin
    doses'; 37-000572: 'adjust diuretic' / 'if diuretic-induced' for a patient on none."""
    case, conv = _case(136, seed=37)
    texts = _texts(conv)
    assert not any("never been told I have diabetes" in t for t in texts)
    assert any(m.name.startswith("Insulin glargine") for m in case.medications)
    case, conv = _case(572, seed=37)
    assert not any("diuretic" in m.drug_class.lower() for m in case.medications if m.drug_class)
    assert not any("adjust diuretic" in t or "diuretic-induced" in t for t in _texts(conv))
    assert _rules(case, conv) == []


def test_home_basal_insulin_continued_beside_iv_insulin() -> None:
    """37-000052: DKA on home glargine; the plan never says the basal insulin continues,
    and the day-2 plan 'starts' the basal insulin the patient is on."""
    from behaviorsft.build.tasks import case_tasks
    from behaviorsft.taxonomy import TaskType

    kb = load_kb()
    case = synthesize_case(52, seed=37, kb=kb)
    rendered = render(case, kb, seed=37)
    texts = _texts(rendered.conversation)
    plan = next(t for t in texts if t.startswith("Plan:"))
    assert "continue the usual insulin glargine 20 units SC" in plan
    assert not any("start subcutaneous basal insulin" in t for t in texts)
    types = {TaskType.PREDICTIVE_NEXT_ACTION}
    for t in case_tasks(case, rendered, kb, seed=37, types=types):
        key = next(o.text for o in t.options if o.label == t.answer)
        assert not key.startswith("Start subcutaneous basal insulin")
    assert _rules(case, rendered.conversation) == []


def test_basal_insulin_unsaid_rule() -> None:
    case, conv = _case(52, seed=37)
    bad = copy.deepcopy(conv.model_dump(mode="json"))
    for t in bad["turns"]:
        if t["text"].startswith("Plan:"):
            t["text"] = t["text"].split("; continue the usual insulin")[0] + "."
    assert "basal-insulin-unsaid" in _rules(case, bad)


def test_culture_counts_claimed_only_when_shown() -> None:
    """31-000012 / 37-000206: 'at least 3 sets of blood cultures' and 'repeat blood
    cultures every 24-48 h' listed done with one culture shown."""
    from behaviorsft.build.coherence import count_claim_shown

    for index, seed in ((12, 31), (206, 37)):
        case, conv = _case(index, seed=seed)
        texts = _texts(conv)
        assert not any("3 sets of blood cultures" in t for t in texts if "Documented" in t)
        assert not any(
            t.startswith(("Documented: repeat blood", "Done and recorded: repeat")) for t in texts
        )
        assert _rules(case, conv) == []
    item = "at least 3 sets of blood cultures from separate venepunctures"
    assert not count_claim_shown(item, ["Blood culture"])
    assert count_claim_shown(
        item, ["Blood culture (set 1)", "Blood culture (set 2)", "Blood culture (set 3)"]
    )
    repeat = "repeat blood cultures every 24-48 h until bacteraemia clears"
    assert not count_claim_shown(repeat, [], ["Blood culture", "Blood culture"])
    case, conv = _case(12)
    bad = copy.deepcopy(conv.model_dump(mode="json"))
    bad["turns"][-2]["text"] = f"Documented: {item}."
    assert "count-claim-unshown" in _rules(case, bad)


def test_review7_siblings_of_the_named_items() -> None:
    """31-000505 / 31-000421: 'sodium rechecked after each hypertonic bolus' with one day-1
    sodium; 31-000174: IV diltiazem with BNP 370 and no echocardiogram."""
    for index in (505, 421):
        case, conv = _case(index)
        texts = _texts(conv)
        for t in texts:
            if "rechecked after each hypertonic bolus" in t:
                assert timed_check_shown(t, texts)
        assert _rules(case, conv) == []
    case, conv = _case(174)
    assert case.conditions[0].code == "atrial_fibrillation_rvr"
    assert "Diltiazem" not in {m.name for m in case.medications}


def test_low_magnesium_replaced_in_hypokalaemia() -> None:
    """31-000200: magnesium 1.6 flagged but not replaced with a potassium of 2.x."""
    case, conv = _case(200)
    assert case.conditions[0].code == "hypokalemia"
    mg = next(f.value for f in case.findings if f.name == "Magnesium" and f.day == 0)
    assert mg is not None and mg < 1.7
    plan = next(t for t in _texts(conv) if t.startswith("Plan:"))
    assert "Magnesium sulfate 1 g IV" in plan
    assert _rules(case, conv) == []
    bad = copy.deepcopy(case.model_dump(mode="json"))
    bad["medications"] = [m for m in bad["medications"] if m["name"] != "Magnesium sulfate"]
    assert "low-magnesium-unreplaced" in _rules(bad, conv)
