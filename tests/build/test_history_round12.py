"""Review round 12 (seeds 47, 53), "A history this patient would give": the named items
rebuilt with each history defect gone, and the linter rules that report the defect on a
hand-made bad record (build/lint_patient.py: pmh-not-condition, history-contradiction,
home-med-missing, allergy-reaction-class)."""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.sources import collateral
from behaviorsft.sources.history import (
    contradictions,
    history_kind,
    maintenance_missing,
    past_conditions,
    pmh_misfiled,
    reaction_misfits,
    told_as_symptom,
)
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case
from behaviorsft.sources.wording import spoken_history
from tests.build.kb_records import lint_rules

MINE = {"pmh-not-condition", "history-contradiction", "home-med-missing", "allergy-reaction-class"}


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@cache
def _item(seed: int, index: int) -> tuple[Any, Any]:
    kb = load_kb()
    case = synthesize_case(index, seed=seed, kb=kb)
    return case, render(case, kb, seed=seed)


def _records(seed: int, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    case, rendered = _item(seed, index)
    return case.model_dump(mode="json"), rendered.conversation.model_dump(mode="json")


def _turns(seed: int, index: int) -> list[tuple[str, str]]:
    _, rendered = _item(seed, index)
    return [(t.role, t.text) for t in rendered.conversation.turns]


def _answer_to(seed: int, index: int, question: str) -> str:
    turns = _turns(seed, index)
    at = next(i for i, (_, t) in enumerate(turns) if re.search(question, t))
    return turns[at + 1][1]


def _history(seed: int, index: int) -> list[str]:
    case, _ = _item(seed, index)
    return [f[len("History: ") :].rstrip(".") for f in case.facts if f.startswith("History: ")]


# ----------------------------------------------------------------------------- named items


@pytest.mark.parametrize(("seed", "index"), [(53, 295), (47, 94)])
def test_recurrent_vomiting_is_told_with_the_symptoms(seed: int, index: int) -> None:
    """53-000295, 47-000094: "No, that's about it" to other symptoms, then "I have
    recurrent vomiting" as a past condition."""
    assert "recurrent vomiting" in _history(seed, index)
    more = _answer_to(seed, index, r"Anything else you've noticed|Any other symptoms")
    assert "vomiting on and off" in more and "that's about it" not in more
    pmh = _answer_to(seed, index, r"medical conditions|past medical history")
    assert "vomiting" not in pmh


@pytest.mark.parametrize(("seed", "index"), [(47, 94), (47, 514)])
def test_laxatives_are_owned_to_in_the_medicines_answer(seed: int, index: int) -> None:
    """47-000094, 47-000514: "I take a lot of laxatives", then "None, I don't take
    anything regularly"."""
    said = " ".join(t for _, t in _turns(seed, index))
    assert "a lot of laxatives" in said
    assert "don't take anything regularly" not in said
    meds = _answer_to(seed, index, r"medicines do you take|regular medication")
    assert "laxatives" in meds


def test_53_000059_multiparity_has_its_own_question() -> None:
    """'I have had several pregnancies' was given as past medical history."""
    said = " ".join(t for _, t in _turns(53, 59))
    assert "several pregnancies" not in said
    assert _answer_to(53, 59, r"Have you had any children\?") == "I've had five children."
    assert "children" not in _answer_to(53, 59, r"medical conditions|past medical history")


def test_47_000142_no_catheter_without_an_indication() -> None:
    """'I have long-term intravascular catheter': no indication, unnatural wording."""
    assert not any("catheter" in h for h in _history(47, 142))
    assert "catheter" not in " ".join(t for _, t in _turns(47, 142))


def test_53_000525_relative_tells_the_swelling() -> None:
    """The daughter said 'No, that's about it' although the tongue swelling was obvious."""
    more = _answer_to(53, 525, r"Anything else you've noticed|Any other symptoms")
    assert "tongue" in more and "that's about it" not in more


def test_53_000218_addison_disease_on_fludrocortisone() -> None:
    case, rendered = _item(53, 218)
    assert any("Addison" in h for h in _history(53, 218))
    names = [m.name for m in case.medications]
    assert "Fludrocortisone" in names and names.count("Hydrocortisone") == 2  # home and IV
    plan = " ".join(t.text for t in rendered.conversation.turns)
    assert "add fludrocortisone" not in plan and "home dose resumed" in plan


def test_53_000488_hyperthyroidism_on_a_thionamide() -> None:
    case, _ = _item(53, 488)
    assert "hyperthyroidism" in _history(53, 488)
    assert any("thionamide" in (m.drug_class or "") for m in case.medications)


def test_53_000539_known_h_pylori_is_a_treated_past_infection() -> None:
    """Known H. pylori in the history and a plan to 'test for H. pylori'."""
    history = _history(53, 539)
    assert "previous Helicobacter pylori infection" in history
    assert "Helicobacter pylori infection" not in history
    pmh = _answer_to(53, 539, r"medical conditions|past medical history")
    assert "treated for a stomach infection called H. pylori" in pmh


def test_53_000052_ace_inhibitor_reaction_is_angioedema() -> None:
    case, _ = _item(53, 52)
    allergy = case.allergies[0]
    assert allergy.substance == "ACE inhibitors" and allergy.reaction == "angioedema"


def test_hit_is_no_stamp_in_unrelated_cases() -> None:
    """Heparin-induced thrombocytopenia was the 'allergy' of 137 of 600 cases (47-000413,
    515, 220, 213; 53-000067, 295, 503): now a few in a hundred."""
    kb = load_kb()
    hit = sum(
        1
        for i in range(200)
        for a in synthesize_case(i, seed=47, kb=kb).allergies
        if "heparin" in a.substance.lower()
    )
    assert hit <= 20  # 10% at most (15 now); 45 (22%) on the old code


def test_hit_is_told_as_an_adverse_reaction_with_its_context() -> None:
    """Where heparin is the condition's own allergy, HIT is told with its story."""
    kb = load_kb()
    for index in range(120):
        case = synthesize_case(index, seed=53, kb=kb)
        if case.allergies and "heparin" in case.allergies[0].reaction.lower():
            break
    else:
        pytest.skip("no HIT in the first 120 cases")
    turns = render(case, kb, seed=53).conversation.turns
    at = next(i for i, t in enumerate(turns) if "allerg" in t.text.lower())
    answer = turns[at + 1].text
    assert "after an operation" in answer and "platelets" in answer


def test_53_000256_and_128_no_care_home_or_long_lie_when_young() -> None:
    """A 59-year-old in a care home with 'nothing major'; a 30-year-old 'on the floor for
    hours after a fall' with no cause."""
    assert not any("care home" in h or "residen" in h for h in _history(53, 256))
    assert not any("long lie" in h for h in _history(53, 128))
    # an older patient's long lie comes with how the fall happened, told alike by a relative
    assert "tripped on the rug" in spoken_history(["long lie after a fall"])
    assert "tripped on the rug" in collateral.said_of(["long lie after a fall"], "female")


def test_53_000479_no_coronary_disease_at_40() -> None:
    """A 40-year-old woman with coronary artery disease and no risk factors."""
    case, _ = _item(53, 479)
    assert case.demographics.age_years == 40
    assert "coronary artery disease" not in _history(53, 479)


def test_53_000566_and_067_events_have_an_indication_and_a_time() -> None:
    ercp = _answer_to(53, 566, r"Has anything happened recently")
    assert "ERCP for a stone in my bile duct just before this started" in ercp
    infection = " ".join(t for _, t in _turns(53, 67))
    assert "chest infection last week" in infection
    assert "an infection recently" not in infection


def test_53_000491_alcohol_withdrawal_has_alcohol_and_ast_above_alt() -> None:
    case, _ = _item(53, 491)
    assert any("alcohol" in h for h in _history(53, 491))
    values = {f.name.lower(): f.value for f in case.findings if f.day == 0}
    ast = next(v for k, v in values.items() if k.startswith("aspartate") or k == "ast")
    alt = next(v for k, v in values.items() if k.startswith("alanine") or k == "alt")
    assert ast > alt


@pytest.mark.parametrize(
    ("seed", "index"), [(53, 295), (53, 59), (53, 525), (47, 94), (53, 218), (53, 539)]
)
def test_named_items_lint_clean_of_the_history_rules(kb, seed: int, index: int) -> None:
    case, conv = _records(seed, index)
    assert MINE.isdisjoint(lint_rules(kb, case, conv))


# ----------------------------------------------------------------------------- kinds


def test_history_kinds() -> None:
    assert history_kind("recurrent vomiting") == "symptom"
    assert history_kind("multiparity") == "obstetric"
    assert history_kind("laxative misuse") == "exposure"
    assert history_kind("permanent pacemaker") == "device"
    assert history_kind("asthma") == "condition"
    items = ["asthma", "recurrent vomiting", "multiparity", "smoking"]
    assert past_conditions(items) == ["asthma"]
    assert told_as_symptom(items) == ["vomiting on and off for the past few weeks"]


# ----------------------------------------------------------------------------- rules


def _bad(seed: int, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    case, conv = _records(seed, index)
    return copy.deepcopy(case), copy.deepcopy(conv)


def _set_answer(conv: dict[str, Any], question: str, text: str) -> None:
    turns = conv["turns"]
    at = next(i for i, t in enumerate(turns) if re.search(question, t["text"]))
    turns[at + 1]["text"] = text


def test_pmh_not_condition_is_reported(kb) -> None:
    case, conv = _bad(53, 295)
    _set_answer(conv, r"medical conditions|past medical history", "I have recurrent vomiting.")
    assert "pmh-not-condition" in lint_rules(kb, case, conv)
    assert pmh_misfiled("I have had several pregnancies.") == "pregnancies"
    assert pmh_misfiled("I have long-term intravascular catheter.") is not None
    assert pmh_misfiled("I have asthma.") is None


def test_history_contradiction_nothing_else_beside_a_symptom_item(kb) -> None:
    case, conv = _bad(53, 295)
    _set_answer(conv, r"Anything else you've noticed|Any other symptoms", "No, that's about it.")
    assert "history-contradiction" in lint_rules(kb, case, conv)


def test_history_contradiction_laxatives_and_nothing_regularly(kb) -> None:
    case, conv = _bad(47, 94)
    _set_answer(
        conv, r"medicines do you take|regular medication", "None, I don't take anything regularly."
    )
    assert "history-contradiction" in lint_rules(kb, case, conv)


def test_history_contradiction_relative_overlooks_the_swelling(kb) -> None:
    case, conv = _bad(53, 525)
    _set_answer(conv, r"Anything else you've noticed|Any other symptoms", "No, that's about it.")
    assert "history-contradiction" in lint_rules(kb, case, conv)


def test_history_contradiction_known_infection_tested() -> None:
    lay = [(6, "I have Helicobacter pylori infection.")]
    said = [*lay, (35, "Plan: Helicobacter pylori testing and eradication if positive.")]
    found = contradictions(["Helicobacter pylori infection"], lay, said)
    assert [i for i, _ in found] == [35]
    assert contradictions(["previous Helicobacter pylori infection"], lay, said) == []


def test_home_med_missing_is_reported(kb) -> None:
    case, conv = _bad(53, 218)
    case["medications"] = [m for m in case["medications"] if m["name"] != "Fludrocortisone"]
    assert "home-med-missing" in lint_rules(kb, case, conv)
    assert maintenance_missing(["hyperthyroidism"], ["metoprolol tartrate beta-blocker"])
    assert not maintenance_missing(["hyperthyroidism"], ["methimazole thionamide"])


def test_allergy_reaction_class_is_reported(kb) -> None:
    case, conv = _bad(53, 52)
    case["allergies"][0]["reaction"] = "anaphylaxis"
    assert "allergy-reaction-class" in lint_rules(kb, case, conv)
    assert reaction_misfits("Penicillins", "anaphylaxis") is None


def test_seen_swelling_for_a_relative() -> None:
    reason = collateral.Reason("swollen tongue", "lip and tongue swelling")
    assert collateral.seen(reason, ["breathlessness"], "male") == "his lips and tongue swelled up"
    assert collateral.seen(reason, ["lip and tongue swelling"], "male") is None
