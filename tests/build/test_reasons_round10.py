"""Review round 10 (seed 43): reasons that reason, and item metadata that agrees with the
record (docs/building.md, "Reasons that reason")."""

from __future__ import annotations

import re
from typing import Any

import pytest

from behaviorsft.build import lint_items
from behaviorsft.build.lint_plan import cited_reasons, split_clauses
from behaviorsft.sources.kb import load_kb
from tests.build.kb_records import as_records, build_item, item_rules, kb_record, lint_rules

SEED = 43
_CITING = re.compile(r"^Which diagnosis did the attending judge less likely, citing (?P<r>.+)\?$")


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _ddx(rendered) -> str:
    return rendered.conversation.turns[rendered.anchors["ddx"]].text


def _fitting_options(rendered, task) -> list[str]:
    """The options of a "citing R" question whose differential the record dismissed with a
    finding of R."""
    asked = lint_items.clause_keys(_CITING.match(task.question)["r"])
    options = {o.text.lower() for o in task.options}
    return [
        dx
        for dx, verb, said in cited_reasons(_ddx(rendered))
        if verb == "is less likely"
        and dx.lower() in options
        and asked & lint_items.clause_keys(said)
    ]


# ----------------------------------------------------------------------------- named items


def test_43_000019_one_option_fits_the_reason_asked_about(kb):
    """'citing fever' had two answers: fever was cited against uncomplicated cystitis and
    (with leukocyte esterase) against ureteric colic without infection."""
    case, rendered, tasks = build_item(kb, 19, SEED)
    assert case.conditions[0].code == "pyelonephritis"
    reasons = list(rendered.reasons.values())
    assert len(reasons) == 2
    first, second = ({c.lower() for c in split_clauses(r)} for r in reasons)
    assert not first & second  # each differential set aside for its own finding
    task = next(t for t in tasks if t.task_type.value == "treatment_decision")
    if _CITING.match(task.question):
        assert len(_fitting_options(rendered, task)) == 1


def test_no_citing_question_has_two_fitting_options_over_a_build(kb):
    """Over 40 cases of seed 43: every "which diagnosis ..., citing R?" has exactly one
    option the record's reasoning fits, and the linter finds no item metadata slip."""
    asked = 0
    for index in range(40):
        case, rendered, tasks = build_item(kb, index, SEED)
        _, conv, task_rows = as_records(case, rendered, tasks)
        for task, row in zip(tasks, task_rows, strict=True):
            assert item_rules(row, conv) == [], row["id"]
            if task.task_type.value == "treatment_decision" and _CITING.match(task.question):
                asked += 1
                assert len(_fitting_options(rendered, task)) == 1, task.id
    assert asked  # the question kind is still asked


@pytest.mark.parametrize(
    ("index", "code", "gone", "said"),
    [
        # hepatic encephalopathy was dismissed "given ascitic PMN >= 250" (SBP precipitates
        # it); a neutrophilic ascites argues against tuberculous peritonitis instead
        (
            202,
            "spontaneous_bacterial_peritonitis",
            "Hepatic encephalopathy from another precipitant is less likely given ascitic PMN",
            "Tuberculous peritonitis is less likely given ascitic PMN count >= 250",
        ),
        # haemorrhagic shock was dismissed by a raised procalcitonin
        (
            395,
            "sepsis",
            "shock is less likely given a raised procalcitonin",
            "Haemorrhagic (hypovolaemic) shock is less likely given a normal haemoglobin",
        ),
        # COVID-19 was dismissed by a positive influenza test (co-infection occurs)
        (
            344,
            "influenza",
            "COVID-19 is less likely given positive influenza NAAT",
            "COVID-19 is less likely given negative SARS-CoV-2 NAAT",
        ),
        # prerenal AKI was dismissed by CK alone; the pigment in the urine argues against it
        (
            53,
            "rhabdomyolysis",
            "Prerenal acute kidney injury is less likely given CK above 5x ULN.",
            "Prerenal acute kidney injury is less likely given positive urine blood",
        ),
    ],
)
def test_43_reasons_argue_against_their_differential(kb, index, code, gone, said):
    case, rendered, _ = build_item(kb, index, SEED)
    assert case.conditions[0].code == code
    ddx = _ddx(rendered)
    assert gone not in ddx
    assert said in ddx


@pytest.mark.parametrize(
    ("index", "code", "given"),
    [
        (244, "spontaneous_bacterial_peritonitis", "ascitic PMN count >= 250 cells/µL"),
        (384, "hepatic_encephalopathy", "raised ammonia"),
        (435, "aki", "urine sodium below 20 mmol/L"),
        (569, "hyponatremia_siadh", "serum osmolality below 275 mOsm/kg"),
        (185, "sepsis", "raised procalcitonin with raised lactate"),
        (53, "rhabdomyolysis", "CK above 5x ULN"),
    ],
)
def test_43_working_diagnosis_fits_best_given_the_decisive_result(kb, index, code, given):
    """'X fits best given <two symptoms>' while the record showed the result that makes
    the diagnosis (PMN 471, ammonia 145, urine sodium 16, serum osmolality 263)."""
    case, rendered, _ = build_item(kb, index, SEED)
    assert case.conditions[0].code == code
    ddx = _ddx(rendered)
    assert f"fits best given {given}" in ddx
    assert "It also explains " in ddx  # the presenting complaint still said
    assert rendered.decisive is not None and rendered.decisive.startswith(given)


def test_43_000202_treatment_failure_rule_is_a_fall_of_less_than_25_percent(kb):
    _, rendered, _ = build_item(kb, 202, SEED)
    said = " ".join(t.text for t in rendered.conversation.turns)
    assert "PMN fall below 25%" not in said
    assert "falling by less than 25% from baseline suggests treatment failure" in said


def test_43_000482_rationale_cites_the_turn_that_says_the_item(kb):
    """The rationale cited turn 6 (the history) for a recent infection said in turn 8 with
    the recent events; and a recent infection, the storm's likely precipitant, was offered as
    "a condition the patient already had". Recent events are no longer offered as such."""
    _, rendered, tasks = build_item(kb, 482, SEED)
    task = next(t for t in tasks if t.task_type.value == "treatment_decision")
    assert "Infection" not in [o.text for o in task.options]
    m = re.match(r"Turn (\d+): the patient's history includes (.+?);", task.rationale)
    if m is not None:
        assert m[2] in rendered.conversation.turns[int(m[1])].text.lower()


@pytest.mark.parametrize("index", [53, 388, 435, 497])
def test_43_rationales_cite_only_turns_the_task_shows(kb, index):
    """Error-correction rationales cited the plan's turn ("turn 23") beyond the record the
    item shows, and its control said the order "matches the plan" it never showed."""
    case, rendered, tasks = build_item(kb, index, SEED)
    _, conv, rows = as_records(case, rendered, tasks)
    for row in rows:
        assert "rationale-turn-unseen" not in item_rules(row, conv), row["id"]
        if row["task_type"] == "explicit_error_correction":
            assert "matches the plan" not in row["rationale"]


def test_43_000569_planted_report_replaces_the_report_the_record_gives(kb):
    """The original of the planted chest X-ray was the KB's normal film, while the record
    reports the hilar mass of the known lung cancer."""
    _, rendered, tasks = build_item(kb, 569, SEED)
    task = next(t for t in tasks if t.task_type.value == "interpretation_conflict")
    assert task.perturbation is not None
    assert "hilar mass" in task.perturbation.original
    said = [t.text for t in rendered.conversation.turns]
    assert any(task.perturbation.original in t for t in said)


def test_43_000125_evolution_rationale_does_not_deny_the_patients_findings(kb):
    """'... rest on findings this patient does not have' for alcoholic ketoacidosis in a
    heavy drinker; the rationale now gives the reasons the attending cites. (Since session
    12 this DKA item is not asked: BHB >= 3 with pH < 7.3 before the chest X-ray settles
    the diagnosis, so the report changes no ranking: discriminators.settled_before.)"""
    _, _, tasks = build_item(kb, 125, SEED)
    assert not [t for t in tasks if t.task_type.value == "reasoning_differential_evolution"]


# ----------------------------------------------------------------------------- linter rules


def _conv(*texts: str, rows: list[list[str]] | None = None) -> dict[str, Any]:
    turns = [{"index": i, "role": "attending", "text": t} for i, t in enumerate(texts)]
    if rows is not None:
        turns[0]["attachments"] = [{"kind": "table", "rows": rows}]
    return {"turns": turns}


def _task(**kw: Any) -> dict[str, Any]:
    task = {
        "id": "x",
        "task_type": "treatment_decision",
        "question": "?",
        "context": {"turn_start": 0, "turn_end": 2, "excerpt": None},
        "options": [],
        "rationale": "",
        "perturbation": None,
    }
    task.update(kw)
    return task


def test_reason_shared_rule():
    conv = _conv(
        "Results.",
        "Acute pyelonephritis fits best given flank pain. Uncomplicated cystitis is less "
        "likely given fever. Ureteric colic without infection is less likely given fever and "
        "positive leukocyte esterase.",
    )
    options = [
        {"label": x, "text": x}
        for x in (
            "Uncomplicated cystitis",
            "Ureteric colic without infection",
            "Acute pyelonephritis",
        )
    ]
    bad = _task(
        question="Which diagnosis did the attending judge less likely, citing fever?",
        options=options,
    )
    assert item_rules(bad, conv) == ["reason-shared"]
    good = _task(
        question="Which diagnosis did the attending judge less likely, citing positive "
        "leukocyte esterase?",
        options=options,
    )
    conv_ok = _conv(
        "Results.",
        "Acute pyelonephritis fits best given flank pain. Uncomplicated cystitis is less "
        "likely given fever. Ureteric colic without infection is less likely given positive "
        "leukocyte esterase.",
    )
    assert item_rules(good, conv_ok) == []


def test_rationale_turn_unseen_rule():
    conv = _conv("a", "b", "c", "d")
    bad = _task(rationale="12 mg is ten times the usual 1.2 mg (the plan gives it, turn 3).")
    assert item_rules(bad, conv) == ["rationale-turn-unseen"]
    ok = _task(rationale="12 mg is ten times the usual 1.2 mg (the plan later in the record).")
    assert item_rules(ok, conv) == []
    # the missing turn an integrity item names is the answer, not an unseen citation
    missing = _task(
        task_type="integrity_missing_turn_inference",
        question="Turn 3 (Patient) is missing from the transcript. What did it say?",
        context={"turn_start": 0, "turn_end": 2, "excerpt": "[Turn 3 is missing]\n\n[4] x"},
        rationale="Turn 3 read: 'x'; turn 4 follows from it.",
    )
    assert item_rules(missing, conv) == []


def test_original_unshown_rule():
    rows = [["Uric acid", "10.5", "mg/dL", "3.5-7.2"]]
    conv = _conv("Chest X-ray: hilar mass; otherwise clear lung fields.", "b", "c", rows=rows)
    value = _task(
        task_type="data_conflict_resolution",
        perturbation={
            "kind": "conflict",
            "original": "8.5 mg/dL",
            "modified": "7.2 mg/dL",
            "description": "Uric acid transcribed with a different value.",
        },
    )
    assert item_rules(value, conv) == ["original-unshown"]
    value["perturbation"]["original"] = "10.5 mg/dL"
    assert item_rules(value, conv) == []
    report = _task(
        task_type="interpretation_conflict",
        perturbation={
            "kind": "conflict",
            "original": "clear lung fields without a mass or consolidation",
            "modified": "pulmonary oedema",
            "description": "Imaging report contradicts the examination.",
        },
    )
    assert item_rules(report, conv) == ["original-unshown"]
    report["perturbation"]["original"] = "hilar mass; otherwise clear lung fields"
    assert item_rules(report, conv) == []


def test_reason_nondecisive_rule_sees_a_decisive_result(kb):
    """A rhabdomyolysis record whose working diagnosis fits best given its symptoms while
    the tables show CK above 5x ULN."""
    case, conv = kb_record("rhabdomyolysis")
    assert "reason-nondecisive" not in lint_rules(kb, case, conv)
    for t in conv["turns"]:
        t["text"] = re.sub(
            r"fits best given .+?\. It also explains (.+?)\.", r"fits best given \1.", t["text"]
        )
    assert "reason-nondecisive" in lint_rules(kb, case, conv)


def test_own_reason_names_only_what_was_cited_against_one_differential():
    from behaviorsft.build.tasks.reasoning import _own_reason

    shared = {"Cystitis": "fever", "Colic": "fever and positive leukocyte esterase"}
    assert _own_reason(shared, "Cystitis") is None  # "citing fever" would have two answers
    assert _own_reason(shared, "Colic") == "positive leukocyte esterase"
    apart = {"Cystitis": "fever", "Colic": "positive leukocyte esterase"}
    assert _own_reason(apart, "Cystitis") == "fever"
    lipase = {
        "Ulcer": "lipase > 3x ULN without free air",
        "Cholecystitis": "lipase > 3x ULN with pain radiating to the back",
    }
    assert _own_reason(lipase, "Ulcer") == "no free air"
    # an absence said two ways is one finding (43-000035: flutter and MAT, no P waves)
    waves = {
        "Flutter": "irregularly irregular narrow-complex tachycardia without P waves",
        "MAT": "no P waves",
    }
    assert _own_reason(waves, "MAT") is None
    assert _own_reason(waves, "Flutter") == "irregularly irregular narrow-complex tachycardia"
