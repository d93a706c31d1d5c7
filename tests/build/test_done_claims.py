"""Done-claims and conditional steps verified against the record (review round 12, seed 53):
a keyed step, a checklist line or a declined item claims only what holds for the patient."""

from __future__ import annotations

import pytest

from behaviorsft.sources import prescribing
from behaviorsft.sources.kb import load_kb
from tests.build.kb_records import build_item

SEED = 53


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _keys(tasks, task_type):
    return [
        next(o.text for o in t.options if o.label == t.answer)
        for t in tasks
        if t.task_type.value == task_type
    ]


def test_presupposed_medicine():
    step = "review any acid suppression and stop it where there is no firm indication"
    assert prescribing.presupposed_missing(step, ["vancomycin glycopeptide"])
    assert not prescribing.presupposed_missing(step, ["omeprazole proton pump inhibitor"])
    assert not prescribing.presupposed_missing(step, ["famotidine "])
    assert not prescribing.presupposed_missing("keep contact precautions", [])


def test_53_000550_acid_suppression_not_keyed_without_a_ppi(kb):
    """C. difficile: 'review acid suppression' was the key for a patient who takes nothing
    regularly and gets no PPI or H2 blocker."""
    case, _, tasks = build_item(kb, 550, SEED)
    assert case.conditions[0].code == "c_difficile_infection"
    taken = [f"{m.name} {m.drug_class or ''}" for m in case.medications]
    assert not any("prazole" in t or "tidine" in t for t in taken)
    keys = _keys(tasks, "predictive_next_action")
    assert not any("acid suppression" in k.lower() for k in keys)


def _said_lines(rendered) -> list[str]:
    return [
        t.text
        for t in rendered.conversation.turns
        if t.text.startswith(("Documented:", "Done and recorded:"))
    ]


def _excerpts(tasks, task_type: str) -> list[str]:
    return [t.context.excerpt or "" for t in tasks if t.task_type.value == task_type]


def test_53_000225_pef_not_recorded_done_without_a_value(kb):
    """Asthma: 'Done and recorded: PEF or FEV1 measured ...' with no PEF anywhere."""
    case, rendered, _ = build_item(kb, 225, SEED)
    assert case.conditions[0].code == "asthma_exacerbation"
    assert not any(f.name.lower().startswith(("pef", "peak")) for f in case.findings)
    assert not any("PEF" in line for line in _said_lines(rendered))


def test_53_000488_stroke_risk_not_listed_without_a_score(kb):
    """AF: the checklist and the note called 'CHA2DS2-VASc stroke risk documented' done with
    no score in the record."""
    case, rendered, tasks = build_item(kb, 488, SEED)
    assert case.conditions[0].code == "atrial_fibrillation_rvr"
    assert not any("CHA2DS2-VASc" in line for line in _said_lines(rendered))
    for excerpt in _excerpts(tasks, "omission_detection") + _excerpts(tasks, "standard_of_care"):
        done = excerpt.split("Not ")[0]
        assert "CHA2DS2-VASc" not in done


def test_53_000515_three_sputum_specimens_not_claimed_with_one(kb):
    """TB: 'three sputum specimens ...' listed done with one sputum result shown."""
    case, _, tasks = build_item(kb, 515, SEED)
    assert case.conditions[0].code == "pulmonary_tuberculosis"
    shown = [f for f in case.findings if "sputum" in f.name.lower() and f.value_text != "pending"]
    assert len(shown) < 3
    for excerpt in _excerpts(tasks, "omission_detection") + _excerpts(tasks, "standard_of_care"):
        assert "three sputum specimens" not in excerpt.split("Not ")[0]


def test_claim_checker_counts_and_values(kb):
    from behaviorsft.build.coherence import NO_VALUE, claim_checker

    shown = [("Sputum AFB smear", 0.0, "negative"), ("Creatinine", 0.0, "1.0")]
    proves = claim_checker(kb, shown, ["Plan: rate control."], [])
    assert "fewer" in (proves("three sputum specimens for AFB smear and culture") or "")
    assert (proves("PEF or FEV1 measured before and after initial treatment") or "").startswith(
        NO_VALUE
    )
    assert (proves("CHA2DS2-VASc stroke risk documented") or "").startswith(NO_VALUE)
    assert proves("renal function") is None


@pytest.mark.parametrize(
    "line",
    [
        "Done and recorded: PEF or FEV1 measured before and after initial treatment.",
        "Documented: CHA2DS2-VASc stroke risk.",
    ],
)
def test_rule_claim_no_value_on_a_turn(kb, line):
    import copy

    from tests.build.kb_records import as_records, lint_rules

    case, conv, _ = as_records(*build_item(kb, 225, SEED))
    bad = copy.deepcopy(conv)
    turns = bad["turns"]
    turns.append({**turns[-2], "index": len(turns), "text": line, "attachments": []})
    assert "claim-no-value" in lint_rules(kb, case, bad)
    assert "claim-no-value" not in lint_rules(kb, case, conv)


def test_rule_claim_no_value_on_a_checklist(kb):
    from tests.build.kb_records import as_records, lint_rules

    case, conv, tasks = as_records(*build_item(kb, 488, SEED))
    task = next(t for t in tasks if t["task_type"] == "omission_detection")
    task = {**task, "context": {**task["context"]}}
    task["context"]["excerpt"] = (
        "Handover checklist, done: renal function; CHA2DS2-VASc stroke risk documented."
    )
    assert lint_rules(kb, case, conv, [task]) == ["claim-no-value"]


@pytest.mark.parametrize(("seed", "index"), [(53, 74), (53, 116), (47, 142)])
def test_blood_cultures_listed_once(kb, seed, index):
    """Endocarditis: 'blood cultures before antibiotics; transthoracic echocardiogram; blood
    cultures' (the part proved of 'at least 3 sets ...' beside the other item)."""
    case, _, tasks = build_item(kb, index, seed)
    assert case.conditions[0].code == "infective_endocarditis"
    excerpts = _excerpts(tasks, "omission_detection") + _excerpts(tasks, "standard_of_care")
    assert excerpts
    for excerpt in excerpts:
        done = excerpt.split(": ", 1)[1].split(". ")[0].split("; ")
        assert done.count("blood cultures") + done.count("blood cultures before antibiotics") <= 1


def test_distinct_claims():
    from behaviorsft.build.coherence import covered_claim, distinct_claims

    items = ["blood cultures before antibiotics", "transthoracic echocardiogram", "blood cultures"]
    assert distinct_claims(items) == items[:2]
    assert covered_claim("blood cultures", items) == items[0]
    assert covered_claim("transthoracic echocardiogram", items) is None
    assert distinct_claims(["ECG", "ECG", "serial troponin"]) == ["ECG", "serial troponin"]


def test_rule_checklist_duplicate(kb):
    from tests.build.kb_records import as_records, lint_rules

    case, conv, tasks = as_records(*build_item(kb, 74, SEED))
    task = next(t for t in tasks if t["task_type"] == "omission_detection")
    good = task["context"]["excerpt"]
    assert "checklist-duplicate" not in lint_rules(kb, case, conv, [task])
    bad = {**task, "context": {**task["context"]}}
    bad["context"]["excerpt"] = good.replace(
        "; transthoracic echocardiogram.", "; transthoracic echocardiogram; blood cultures."
    )
    assert bad["context"]["excerpt"] != good
    assert "checklist-duplicate" in lint_rules(kb, case, conv, [bad])


@pytest.mark.parametrize("index", [477, 435])
def test_asthma_checklist_names_no_unrelated_condition(kb, index):
    """Asthma: the checklist marked 'LVEF assessed before discharge' (53-000477) or 'drug
    susceptibility testing on the initial isolate' (53-000435) not applicable: another
    condition's line. Its 'not applicable' line now names a differential's workup."""
    from behaviorsft.build.tasks.omissions import near_care

    case, _, tasks = build_item(kb, index, SEED)
    assert case.conditions[0].code == "asthma_exacerbation"
    near = {i.item for i, _ in near_care(kb)[0]["asthma_exacerbation"]}
    for excerpt in _excerpts(tasks, "omission_detection"):
        assert "LVEF" not in excerpt and "susceptibility" not in excerpt
        if "Not applicable: " in excerpt:
            line = excerpt.split("Not applicable: ")[1]
            assert line.rsplit(" (", 1)[0] in near and line.endswith("judged unlikely).")


def test_rule_checklist_foreign(kb):
    from tests.build.kb_records import as_records, lint_rules

    case, conv, tasks = as_records(*build_item(kb, 477, SEED))
    task = next(t for t in tasks if t["task_type"] == "omission_detection")
    assert "checklist-foreign" not in lint_rules(kb, case, conv, [task])
    bad = {**task, "context": {**task["context"]}}
    bad["context"]["excerpt"] = (
        task["context"]["excerpt"].split(" Not applicable")[0]
        + " Not applicable: LVEF assessed before discharge."
    )
    assert "checklist-foreign" in lint_rules(kb, case, conv, [bad])


AUTOINJECTOR = "epinephrine autoinjector prescribed with a written action plan at discharge"


@pytest.mark.parametrize(("seed", "index"), [(53, 105), (47, 427)])
def test_discharge_item_not_done_before_discharge(kb, seed, index):
    """Anaphylaxis: 'nothing is due' (53-000105) while the autoinjector is still to be
    prescribed at discharge, and a day-1 checklist calling it done (47-000427)."""
    case, rendered, tasks = build_item(kb, index, seed)
    assert case.conditions[0].code == "anaphylaxis"
    assert not any("autoinjector" in line for line in _said_lines(rendered))
    for t in tasks:
        excerpt = t.context.excerpt or ""
        assert AUTOINJECTOR not in excerpt.split("Not ")[0], t.id
        if t.task_type.value == "predictive_next_action":
            assert not t.restraint_control, t.id


def test_discharge_steps_are_not_started_early():
    from behaviorsft.build.coherence import early_discharge_item, startable

    assert early_discharge_item(AUTOINJECTOR, ["Day 1 ward round."])
    assert not early_discharge_item(AUTOINJECTOR, ["Day 3: discharged home."])
    assert not early_discharge_item("IM epinephrine without delay", [])
    step = "discharge on ICS-containing controller plus oral corticosteroid course"
    assert not startable(step)
    assert startable("complete a 10-day course and review stool frequency daily")


def test_rule_discharge_item_early(kb):
    import copy

    from tests.build.kb_records import as_records, lint_rules

    case, conv, tasks = as_records(*build_item(kb, 105, SEED))
    assert "discharge-item-early" not in lint_rules(kb, case, conv, tasks)
    bad = copy.deepcopy(conv)
    turns = bad["turns"]
    line = f"Documented: {AUTOINJECTOR}."
    turns.append({**turns[-2], "index": len(turns), "text": line, "attachments": []})
    assert "discharge-item-early" in lint_rules(kb, case, bad)
    task = {**tasks[0], "context": {**tasks[0]["context"]}}
    task["context"]["excerpt"] = f"Team note: {AUTOINJECTOR}; IM epinephrine without delay."
    assert lint_rules(kb, case, conv, [task]) == ["discharge-item-early"]


@pytest.mark.parametrize(
    ("index", "code", "words"),
    [
        (179, "pulmonary_tuberculosis", ("isolation",)),  # nursed in airborne isolation
        (278, "atrial_fibrillation_rvr", ("LVEF", "echocardiogram")),  # new AF has a TTE
        (67, "thyroid_storm", ("LVEF", "echocardiogram")),  # the record shows heart failure
    ],
)
def test_no_note_declines_what_the_patient_needs(kb, index, code, words):
    """The note declined 'transmission-based isolation precautions (only if COVID-19)' for
    TB (53-000179), 'LVEF assessed before discharge (only if STEMI)' in a new AF
    (53-000278) and a TTE 'only if AF with RVR' in a thyroid storm with heart failure
    (53-000067)."""
    case, _, tasks = build_item(kb, index, SEED)
    assert case.conditions[0].code == code
    notes = _excerpts(tasks, "standard_of_care")
    assert notes
    for note in notes:
        declined = note.split("Not done, not felt necessary: ")[-1]
        for t in tasks:
            if t.task_type.value == "standard_of_care":
                key = next(o.text for o in t.options if o.label == t.answer)
                declined = declined.replace(key[len("No: ") : -len(" is required")], "")
        assert not any(w in declined for w in words), note


def test_required_as():
    from behaviorsft.build.coherence import required_as, required_by_state

    kb = load_kb()
    tb, af = kb.conditions["pulmonary_tuberculosis"], kb.conditions["atrial_fibrillation_rvr"]
    assert "airborne isolation" in (
        required_as(tb, "transmission-based isolation precautions") or ""
    )
    assert required_as(af, "LVEF assessed before discharge") == "transthoracic echocardiogram"
    assert required_as(tb, "LVEF assessed before discharge") is None
    assert required_by_state("transthoracic echocardiogram", lambda s: s == "heart failure")
    assert not required_by_state("transthoracic echocardiogram", lambda s: False)


def test_rule_declined_required(kb):
    from tests.build.kb_records import as_records, lint_rules

    case, conv, tasks = as_records(*build_item(kb, 179, SEED))
    task = next(t for t in tasks if t["task_type"] == "standard_of_care")
    assert "declined-required" not in lint_rules(kb, case, conv, [task])
    bad = {**task, "context": {**task["context"]}}
    bad["context"]["excerpt"] = (
        task["context"]["excerpt"].rstrip(".")
        + "; transmission-based isolation precautions (only if COVID-19 pneumonia is likely, "
        "not the case here)."
    )
    assert "declined-required" in lint_rules(kb, case, conv, [bad])


def test_rule_discharge_item_early_in_an_update(kb):
    from tests.build.kb_records import as_records, lint_rules

    case, conv, tasks = as_records(*build_item(kb, 105, SEED))
    task = next(t for t in tasks if t["task_type"] == "predictive_next_action")
    task = {**task, "context": {**task["context"]}}
    task["context"]["excerpt"] = (
        "Ward round update, the next morning: done already: refer to an allergist to confirm "
        f"the trigger; {AUTOINJECTOR}."
    )
    assert "discharge-item-early" in lint_rules(kb, case, conv, [task])
