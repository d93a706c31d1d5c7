"""Review round 9 (seed 41): what severity brings at once is said when it was done, and a
C. difficile infection always reports its diarrhoea."""

from __future__ import annotations

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.sources import severity
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case

SEED = 41


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _turns(kb, index: int):
    case = synthesize_case(index, seed=SEED, kb=kb)
    return case, render(case, kb, seed=SEED)


def test_41_000039_adrenaline_is_said_before_the_history(kb):
    """Anaphylactic shock: 'IM adrenaline ... before the history was taken' used to come
    after the plan, 20 turns after the history it preceded."""
    case, rendered = _turns(kb, 39)
    assert case.conditions[0].code == "anaphylaxis"
    texts = [t.text for t in rendered.conversation.turns]
    said = next(i for i, t in enumerate(texts) if "IM adrenaline" in t)
    history = rendered.anchors["history"]
    assert said < history < rendered.anchors["plan"]


def test_41_000254_meningitis_antibiotic_is_said_before_the_ct_and_the_csf(kb):
    """Suspected meningococcal meningitis: the antibiotic 'not waiting for the lumbar
    puncture' was said after the CT report and the CSF results."""
    case, rendered = _turns(kb, 254)
    assert case.conditions[0].code == "bacterial_meningitis"
    texts = [t.text for t in rendered.conversation.turns]
    said = next(i for i, t in enumerate(texts) if "not waiting for the lumbar puncture" in t)
    csf = next(i for i, t in enumerate(texts) if t.startswith("CSF:"))
    ct = next(i for i, t in enumerate(texts) if "reported the ct head" in t.lower())
    assert rendered.anchors["orders"] < said < min(csf, ct)


def test_41_000446_life_threatening_asthma_treatment_comes_before_the_results(kb):
    case, rendered = _turns(kb, 446)
    assert case.conditions[0].code == "asthma_exacerbation"
    texts = [t.text for t in rendered.conversation.turns]
    said = next(i for i, t in enumerate(texts) if t.startswith("Life-threatening features"))
    assert rendered.anchors["orders"] < said < rendered.anchors["labs_comment"]


def test_placement_of_statements():
    said = (
        "Recognised at triage: IM adrenaline into the anterolateral thigh given 3 minutes "
        "after arrival, with high-flow oxygen, before the history was taken; repeat after 5 "
        "minutes if there is no improvement."
    )
    assert severity.placement(said) == severity.Placement.ARRIVAL == "arrival"
    asthma = next(t for t in severity.TRIGGERS if t.item == "ipratropium")
    assert asthma.say is not None
    said = asthma.say.format(why="heart rate 124", t="20 minutes after arrival")
    assert severity.placement(said) == "orders"
    # the statement is recognised by its whole template, not by its opening words
    assert severity.placement("Acute severe asthma (heart rate 124): ipratropium") == "plan"
    # a statement citing a CT result stays after the plan
    assert severity.placement("Within the 4.5-h thrombolysis window, no haemorrhage") == "plan"
    # a statement said before the plan must open with its own words, not a field
    with pytest.raises(ValueError, match="opens with a field"):
        severity._said("{why}: admitted to intensive care {t}.")


def test_41_000075_c_difficile_reports_its_diarrhoea(kb):
    """The stool test needs an unformed stool: every C. difficile case says it has one."""
    case, _ = _turns(kb, 75)
    assert case.conditions[0].code == "c_difficile_infection"
    assert "loose stools" in case.presentation or "unformed" in case.presentation
    cond = kb.condition("c_difficile_infection")
    assert any(s.frequency == 1.0 and "unformed" in s.name for s in cond.symptoms)


def test_lint_statement_late(kb):
    """The old order (adrenaline said after the plan) is found with its turn."""
    from behaviorsft.build.lint import lint_records

    case, rendered = _turns(kb, 39)
    conv = rendered.conversation.model_dump(mode="json")
    found = lint_records([(1, case.model_dump(mode="json"))], [(1, conv)], kb=kb)
    assert not [f for f in found if f.rule == "statement-late"]
    turns = conv["turns"]
    said = next(i for i, t in enumerate(turns) if "IM adrenaline" in t["text"])
    moved = turns.pop(said)
    turns.insert(len(turns) - 3, moved)
    for i, t in enumerate(turns):
        t["index"] = i
    found = lint_records([(1, case.model_dump(mode="json"))], [(1, conv)], kb=kb)
    assert [f.turn for f in found if f.rule == "statement-late"] == [len(turns) - 4]


def test_41_000515_a_low_glucose_is_treated_in_any_admission(kb):
    """Adrenal crisis with a day-0 glucose of 44 mg/dL and no glucose given."""
    case, rendered = _turns(kb, 515)
    assert case.conditions[0].code == "adrenal_crisis"
    glucose = next(f.value for f in case.findings if f.name == "Glucose (serum/plasma)")
    assert glucose is not None and glucose < 70
    assert any(m.name == "Dextrose 50% injection" and m.route == "IV" for m in case.medications)
    plan = next(t.text for t in rendered.conversation.turns if t.text.startswith("Plan:"))
    assert "Dextrose 50% injection 25 g IV" in plan


def test_lint_low_glucose_untreated(kb):
    from behaviorsft.build.lint import lint_records

    case, rendered = _turns(kb, 515)
    bad = case.model_dump(mode="json")
    bad["medications"] = [m for m in bad["medications"] if "Dextrose" not in m["name"]]
    conv = rendered.conversation.model_dump(mode="json")
    found = lint_records([(1, bad)], [(1, conv)], kb=kb)
    assert "low-glucose-untreated" in {f.rule for f in found}
    found = lint_records([(1, case.model_dump(mode="json"))], [(1, conv)], kb=kb)
    assert "low-glucose-untreated" not in {f.rule for f in found}


def test_error_items_plant_errors_only_on_the_conditions_own_drugs(kb):
    """A drug any admission may add (dextrose for a low glucose, potassium chloride for a low
    potassium) is not in the doses the wrong 'usual dose' options are drawn from, so an
    item on it would mark its key by the unit alone."""
    from behaviorsft.build.tasks import case_tasks
    from behaviorsft.taxonomy import TaskType

    checked = 0
    for index in range(0, 160, 2):
        case, rendered = _turns(kb, index)
        cond = kb.condition(case.conditions[0].code)
        own = {kb.drug(td.drug).name for td in cond.treatments.drugs}
        types = {TaskType.EXPLICIT_ERROR_CORRECTION}
        for t in case_tasks(case, rendered, kb, seed=SEED, types=types):
            p = t.perturbation
            if p is not None and p.original:
                checked += 1
                assert any(p.original.startswith(name) for name in own), (t.id, p.original)
    assert checked > 40
