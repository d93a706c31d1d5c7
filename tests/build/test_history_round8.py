"""History that the care follows (sources/history.py; KB ``history_steps``; lint rules
history-presumes and history-unspecified in build/lint_text.py, history-step-missing in
build/lint_plan.py, history-contradiction in build/lint.py).

The regression tests rebuild the items of the round-8 review (seed 37: ``37-000136`` is
``synthesize_case(136, seed=37)``) and check each defect is gone; the rule tests lint a
coherent record of the condition with the defect planted by hand.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.lint import lint_bench, lint_records
from behaviorsft.build.tasks.registry import case_tasks
from behaviorsft.records import Case
from behaviorsft.sources import prescribing
from behaviorsft.sources.history import (
    SURGERY,
    history_steps,
    known_step,
    operation_item,
    presumption_missing,
)
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case
from behaviorsft.sources.wording import spoken_history
from behaviorsft.taxonomy import TaskType
from tests.build.kb_records import kb_record

KB = load_kb()
SEED = 37
RULES = ("history-presumes", "history-unspecified", "history-step-missing", "history-untreated")


def _case(index: int) -> Case:
    return synthesize_case(index, seed=SEED, kb=KB)


def _history(case: Case) -> list[str]:
    return [f[len("History: ") : -1] for f in case.facts if f.startswith("History: ")]


def _home(case: Case) -> list[str]:
    return [
        f"{m.name} {m.drug_class or ''}".lower()
        for m in case.medications
        if m.indication != case.final_diagnosis
    ]


def _said(case: Case) -> tuple[str, list[str]]:
    """The rendered conversation's text, and the findings of the history rules."""
    conv = render(case, KB, seed=SEED).conversation
    found = lint_records(
        [(1, case.model_dump(mode="json"))], [(1, conv.model_dump(mode="json"))], kb=KB
    )
    text = " ".join(t.text for t in conv.turns)
    return text, [f"{f.rule}: {f.message}" for f in found if f.rule in RULES]


def _plan(case: Case) -> str:
    conv = render(case, KB, seed=SEED).conversation
    return next(t.text for t in conv.turns if t.text.startswith("Plan: "))


# ----------------------------------------------------------------------------- regressions


def test_37_000136_no_missed_insulin_beside_new_onset_diabetes() -> None:
    """'I've never been told I have diabetes' and 'I missed my insulin doses', no insulin."""
    case = _case(136)
    history = _history(case)
    text, found = _said(case)
    if any("insulin omission" in h for h in history):
        # the missed insulin brings its known diabetes and the insulin (history.PRESUPPOSES)
        assert "new-onset diabetes" not in history
        assert any("type 1 diabetes" in h for h in history), history
        assert any("insulin" in m for m in _home(case)), _home(case)
        assert "never been told I have diabetes" not in text
    else:
        assert "new-onset diabetes" in history
        assert "I missed my insulin doses" not in text
    assert found == []


def test_missed_insulin_comes_with_known_diabetes_and_insulin_on_the_list() -> None:
    """Every DKA case of seed 37 that says it missed insulin has known diabetes and insulin."""
    seen = 0
    for i in range(0, 600, 42):  # one condition per 42 indices: find the DKA ones
        for j in range(i, i + 42):
            case = _case(j)
            if case.conditions[0].code != "dka":
                continue
            history = _history(case)
            if "insulin omission" in history:
                seen += 1
                assert any("type 1 diabetes" in h for h in history), history
                assert any("insulin" in m for m in _home(case)), _home(case)
            break
    assert seen >= 2


@pytest.mark.parametrize("index", [53, 557])
def test_37_000053_000557_known_adrenal_insufficiency_is_on_hydrocortisone(index: int) -> None:
    """53: hypopituitarism beside hyperpigmentation/hyperkalaemia and no steroid; 557:
    previous adrenal haemorrhage on aspirin alone."""
    case = _case(index)
    history = _history(case)
    assert not any("hypopituitarism" in h for h in history)
    # the known adrenal failure (a past haemorrhage, or Addison disease it presupposes)
    assert any("adrenal haemorrhage" in h or "Addison" in h for h in history), history
    assert any("glucocorticoid" in m for m in _home(case)), _home(case)
    assert _said(case)[1] == []


def test_37_000163_no_known_hiv_without_antiretroviral_therapy() -> None:
    """HIV infection with no antiretroviral therapy: the KB has no antiretroviral, so the
    history does not draw it (and the TB plan gives pyridoxine with isoniazid)."""
    case = _case(163)
    assert not any("HIV" in h for h in _history(case))
    assert "Pyridoxine" in _plan(case)
    assert _said(case)[1] == []


def test_37_000119_alcohol_use_disorder_brings_thiamine_and_withdrawal_monitoring() -> None:
    case = _case(119)
    assert "alcohol use disorder" in _history(case)
    assert "thiamine and monitoring for alcohol withdrawal" in _plan(case)
    assert _said(case)[1] == []


@pytest.mark.parametrize(
    ("index", "step"),
    [
        (25, "the recent operation as the precipitant"),
        (432, "major transient risk factor for VTE"),
        (442, "examine the surgical wound"),
        (335, "post-operative AF"),
        (64, "examine the surgical wound"),
    ],
)
def test_recent_surgery_is_named_dated_and_acted_on(index: int, step: str) -> None:
    """37-000025 (thyroid storm), 432 (DVT), 442 and 64 (sepsis), 335 (AF): 'I recently
    had surgery' with no operation, no date and nothing done about it."""
    case = _case(index)
    history = _history(case)
    assert "recent surgery" not in history
    op = next(h for h in history if h.startswith("recent operation: "))
    assert re.search(r" \d+ days ago$", op)
    text, found = _said(case)
    assert "I recently had surgery" not in text
    # said by the patient, or by the relative when the patient cannot give a history
    assert re.search(r"\b(?:I|[Ss]he|He) had an? [a-z ]+ \d+ days ago\.", text)
    assert step in _plan(case)
    assert found == []


def test_37_000584_previous_endocarditis_gets_a_tee_and_no_device_in_native_valve_ie() -> None:
    case = _case(584)
    history = _history(case)
    assert "previous endocarditis" in history
    assert not any("pacemaker" in h for h in history)
    assert "transoesophageal echocardiogram" in _plan(case)
    assert _said(case)[1] == []


def test_37_000416_no_pacemaker_in_native_valve_endocarditis() -> None:
    case = _case(416)
    assert case.final_diagnosis and "native valve" in case.final_diagnosis
    assert not any("pacemaker" in h for h in _history(case))


def test_37_000206_injection_drug_use_and_poor_teeth_bring_their_steps() -> None:
    case = _case(206)
    assert {"injection drug use", "poor dental health"} <= set(_history(case))
    plan = _plan(case)
    assert "HIV, hepatitis B and hepatitis C testing and referral to addiction services" in plan
    assert "dental review" in plan
    assert _said(case)[1] == []


def test_37_000583_tb_control_lists_the_pathway_checks_as_done() -> None:
    """The 'no new action' control said every step was done while HIV testing, baseline
    liver tests and visual acuity were never mentioned; pyridoxine was not given."""
    case = _case(583)
    rendered = render(case, KB, seed=SEED)
    assert "Pyridoxine" in _plan(case)
    tasks = case_tasks(case, rendered, KB, seed=SEED, types={TaskType.PREDICTIVE_NEXT_ACTION})
    control = next(t for t in tasks if t.id.endswith(":pc"))
    excerpt = control.context.excerpt or ""
    for check in ("HIV test", "baseline liver tests", "baseline visual acuity"):
        assert check in excerpt, excerpt


# ----------------------------------------------------------------------------- the tables


def test_every_operation_has_a_pathway_step_and_a_spoken_form() -> None:
    rng = random.Random(0)
    for cond_id in SURGERY:
        item = operation_item(cond_id, rng)
        assert item is not None
        assert history_steps(KB.condition(cond_id), [item]), cond_id
        assert re.match(r"I had an? .+ \d+ days ago\.$", spoken_history([item]))
    assert operation_item("acute_gout", rng) is None  # nothing follows: not drawn


def test_presumption_missing_cases() -> None:
    insulin = ["insulin glargine long-acting insulin"]
    assert presumption_missing("insulin omission", ["type 1 diabetes"], insulin) == ""
    assert presumption_missing("insulin omission", ["new-onset diabetes"], insulin)
    assert presumption_missing("insulin omission", ["type 1 diabetes"], [])
    assert presumption_missing("medication non-adherence", ["heart failure"], [])
    assert presumption_missing(
        "recent stopping of antithyroid drugs", ["untreated Graves disease"], []
    )
    assert presumption_missing("intercurrent infection", [], []) == ""


# ----------------------------------------------------------------------------- lint rules


def _lint(tmp_path: Path, case: dict[str, Any], conv: dict[str, Any]) -> list[str]:
    folder = tmp_path / "bench"
    folder.mkdir(parents=True)
    (folder / "cases.jsonl").write_text(json.dumps(case) + "\n")
    (folder / "conversations.jsonl").write_text(json.dumps(conv) + "\n")
    return [f.rule for f in lint_bench(folder)]


def _add_history(case: dict[str, Any], *items: str) -> None:
    case["facts"] = [f for f in case["facts"]] + [f"History: {i}." for i in items]


def test_rule_history_presumes_missed_insulin_with_new_onset_diabetes(tmp_path: Path) -> None:
    case, conv = kb_record("dka")
    case["facts"] = [f for f in case["facts"] if not f.startswith("History: ")]
    _add_history(case, "new-onset diabetes", "insulin omission")
    assert "history-presumes" in _lint(tmp_path, case, conv)


def test_rule_history_presumes_hypopituitarism_with_primary_signs(tmp_path: Path) -> None:
    case, conv = kb_record("adrenal_crisis")
    _add_history(case, "hypopituitarism")
    k = next(f for f in case["findings"] if f["name"].lower().startswith("potassium"))
    k["value"] = (k["reference_range"] or {})["high"] + 1.0
    case["medications"].append(
        {
            "name": "Hydrocortisone",
            "dose": "10 mg",
            "route": "PO",
            "frequency": "twice daily",
            "drug_class": "systemic glucocorticoid",
            "indication": "hypopituitarism",
        }
    )
    assert "history-presumes" in _lint(tmp_path, case, conv)


def test_rule_history_unspecified_recent_surgery(tmp_path: Path) -> None:
    case, conv = kb_record("dvt")
    _add_history(case, "recent surgery")
    assert "history-unspecified" in _lint(tmp_path, case, conv)


def test_rule_history_step_missing(tmp_path: Path) -> None:
    case, conv = kb_record("infective_endocarditis")
    if "History: injection drug use." not in case["facts"]:
        _add_history(case, "injection drug use")
    step = "; HIV, hepatitis B and hepatitis C testing and referral to addiction services"
    for t in conv["turns"]:
        t["text"] = t["text"].replace(step, "")
    assert "history-step-missing" in _lint(tmp_path, case, conv)


def test_rule_history_untreated_hiv(tmp_path: Path) -> None:
    case, conv = kb_record("pulmonary_tuberculosis")
    _add_history(case, "HIV infection")
    assert "history-untreated" in _lint(tmp_path, case, conv)


def test_rule_history_contradiction_pacemaker_in_native_valve_ie(tmp_path: Path) -> None:
    case, conv = kb_record("infective_endocarditis")
    _add_history(case, "permanent pacemaker")
    sections = case["sections"]
    past = next(s for s in sections if s["title"] == "Past history")
    past["text"] = past["text"].rstrip(".") + "; permanent pacemaker."
    assert "history-contradiction" in _lint(tmp_path, case, conv)


def test_the_generators_records_are_clean_of_these_rules(tmp_path: Path) -> None:
    """Two cases of every condition (seed 37) lint clean of the history rules."""
    cases = [_case(i) for i in range(84)]
    convs = [render(c, KB, seed=SEED).conversation for c in cases]
    found = lint_records(
        [(i + 1, c.model_dump(mode="json")) for i, c in enumerate(cases)],
        [(i + 1, c.model_dump(mode="json")) for i, c in enumerate(convs)],
        kb=KB,
    )
    assert [f"{f.rule}: {f.message}" for f in found if f.rule in RULES] == []


def test_37_000432_active_cancer_is_not_a_provoked_three_month_clot() -> None:
    """The haematology consult said '3 months (provoked)' for a patient with active cancer;
    the plan now gives the cancer-associated course, and no 3-month step is said or keyed."""
    case = _case(432)
    assert "active cancer" in _history(case)
    rendered = render(case, KB, seed=SEED)
    text = " ".join(t.text for t in rendered.conversation.turns)
    assert "provok" not in text
    assert "cancer-associated VTE: anticoagulate for at least 6 months" in _plan(case)
    tasks = case_tasks(case, rendered, KB, seed=SEED, types={TaskType.PREDICTIVE_NEXT_ACTION})
    assert all("provok" not in str(t.model_dump()) for t in tasks)


def test_cancer_associated_clot_has_one_owner() -> None:
    """prescribing.py decides which history makes a clot cancer-associated or recurrent;
    history.known_step rules out the 3-month 'provoked' course by the same words
    (prescribing.EXTENDED_VTE), so any history the plan rewrites for cancer is one whose
    old step is also ruled out, and the KB's history steps fire on the same items."""
    provoked = "anticoagulate for at least 3 months (provoked) and reassess at 3 months"
    for item in ("active cancer", "metastatic breast cancer", "on chemotherapy for lymphoma"):
        assert prescribing.steps_for_history("dvt", [provoked], item) != [provoked], item
        assert known_step(provoked, [item]), item
    assert not known_step(provoked, ["hypertension"])
    assert prescribing.steps_for_history("dvt", [provoked], "hypertension") == [provoked]
    for cond_id in ("dvt", "pulmonary_embolism"):
        cond = KB.condition(cond_id)
        for risk in cond.risk_factors:
            brings = history_steps(cond, [risk])
            extended = [s for s in brings if re.match(r"cancer-associated|recurrent", s)]
            assert bool(extended) == bool(prescribing.EXTENDED_VTE.search(risk)), risk


def test_37_000052_a_recent_infection_as_the_precipitant_is_looked_for() -> None:
    """DKA after a recent infection with no search for it; alcohol misuse with no thiamine."""
    case = _case(52)
    assert {"intercurrent infection", "alcohol misuse"} <= set(_history(case))
    plan = _plan(case)
    assert "look for the precipitating infection" in plan
    assert "thiamine and monitoring for alcohol withdrawal" in plan


def test_37_000012_the_cast_says_why() -> None:
    """'My leg was in a cast until last week': the reason (a fracture) never given."""
    text, found = _said(_case(12))
    assert "My leg was in a cast for a broken ankle until last week." in text
    assert found == []
