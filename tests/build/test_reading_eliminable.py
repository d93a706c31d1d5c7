"""Options a reader cannot rule out by reading (session 10; round-8 review of
`cases synth --seed 37`, `build --seed 37`).

Each regression test rebuilds a reviewed case of seed 37 and asserts its defect is gone;
the unit tests run each new linter rule on a hand-made bad record."""

from __future__ import annotations

import re

import pytest

from behaviorsft.build import lint_values
from behaviorsft.build.conversation import render
from behaviorsft.build.lint import lint_records
from behaviorsft.build.tasks import case_tasks
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import kb_condition_id, synthesize_case
from behaviorsft.taxonomy import TaskType as T
from tests.build.kb_records import build_item

SEED = 37


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _build(kb, index: int):
    return build_item(kb, index, SEED)


class _Found:
    def __init__(self) -> None:
        self.rules: list[tuple[str, str]] = []

    def add(self, rule: str, message: str, turn: int | None = None) -> None:
        self.rules.append((rule, message))


# ------------------------------------------------------------ data_conflict_resolution

_OPTION = re.compile(
    r"^The note \((\S+) (\S+)\) and the table \((\S+) (\S+)\) (?:dis)?agree on (.+?)(?: \(|:)"
)


@pytest.mark.parametrize("index", [53, 202])
def test_planted_value_is_possible(kb, index):
    """37-000053: a note's sodium of 256 mmol/L (table 121); 37-000202: haemoglobin 36.1
    g/dL (table 15.3). Every value the note and the options give is one a patient can have
    (the KB test's bounds)."""
    _, _, tasks = _build(kb, index)
    items = [t for t in tasks if t.task_type == T.DATA_CONFLICT_RESOLUTION]
    assert items
    checked = 0
    for t in items:
        name, value, unit = re.match(
            r"^Note \([^)]*\): (.+?) (\d+(?:\.\d+)?) (\S+) on this", t.context.excerpt
        ).groups()
        assert lint_values.impossible_value(kb, name, float(value), unit) is None, t.id
        for o in t.options:
            m = _OPTION.match(o.text)
            assert m is not None, o.text
            for v, u in ((m[1], m[2]), (m[3], m[4])):
                assert lint_values.impossible_value(kb, m[5], float(v), u) is None, o.text
                checked += 1
    assert checked >= 10


def test_value_impossible_on_a_note_and_its_options(kb):
    task = {
        "id": "t1",
        "task_type": "data_conflict_resolution",
        "context": {"excerpt": "Note (day 0): Sodium 256 mmol/L on this sample."},
        "options": [
            {
                "label": "A",
                "text": "The note (256 mmol/L) and the table (121 mmol/L) disagree "
                "on sodium: verify or repeat it",
            },
            {
                "label": "B",
                "text": "The note (145 mmol/L) and the table (121 mmol/L) disagree "
                "on sodium: verify or repeat it",
            },
        ],
    }
    found = _Found()
    lint_values.check_task_values(kb, found, task)
    assert [r for r, _ in found.rules] == ["value-impossible", "value-impossible"]
    assert "Sodium 256" in found.rules[0][1] and "option A" in found.rules[1][1]
    ok = dict(task, context={"excerpt": "Note (day 0): Sodium 145 mmol/L on this sample."})
    ok["options"] = task["options"][1:]
    found = _Found()
    lint_values.check_task_values(kb, found, ok)
    assert found.rules == []


def test_value_impossible_in_a_case_record(kb):
    case = synthesize_case(53, seed=SEED, kb=kb)
    raw = case.model_dump(mode="json")
    assert not [f for f in lint_records([(1, raw)], [], kb=kb) if f.rule == "value-impossible"]
    for f in raw["findings"]:
        if f["name"] == "Sodium":
            f["value"] = 256.0
    got = [f for f in lint_records([(1, raw)], [], kb=kb) if f.rule == "value-impossible"]
    assert got and "256" in got[0].message


# ------------------------------------------------------------ interpretation_conflict

_SIGN = re.compile(
    r"^(?:Flag the mismatch with|No conflict: the report confirms) the examination \((.+)\)"
)


@pytest.mark.parametrize("index", [335, 218, 593])
def test_every_option_names_a_sign_the_examination_documents(kb, index):
    """37-000335, 37-000218, 37-000593: three of five options named findings the excerpt
    listed as 'Not recorded'. Now every option names a sign whose result the examination
    documents, and the reader must judge which documented finding the report contradicts."""
    from behaviorsft.build.tasks.conflicts import conflict_pairs
    from behaviorsft.sources.exam_normals import normal_results

    case, rendered, tasks = _build(kb, index)
    items = [t for t in tasks if t.task_type == T.INTERPRETATION_CONFLICT]
    assert items
    exam = [f.value_text for f in case.findings if f.kind == "exam"]
    exam_turn = rendered.conversation.turns[rendered.anchors["exam"]].text
    pair = conflict_pairs(kb)[kb_condition_id(case)]
    normal = normal_results()
    for t in items:
        assert "Not recorded" not in t.context.excerpt
        signs = [m[1] for o in t.options if (m := _SIGN.match(o.text))]
        assert len(signs) == 5 and len(set(signs)) == 4, t.id
        for s in signs:
            documented = (
                [e for e, g in zip(pair.exam, pair.signs, strict=True) if g == s and e in exam]
                if s in pair.signs
                else [normal[s]]
                if normal.get(s) in exam
                else []
            )
            assert documented, (t.id, s)
            assert documented[0] in t.context.excerpt and documented[0] in exam_turn
        key = _SIGN.match(t.answer_text)[1]
        assert key in pair.signs  # the sign of the finding the report contradicts
        assert t.answer_text.startswith("No conflict") == t.restraint_control


def test_exam_normals_fit_the_condition(kb):
    """Every conflict-pair condition documents at least three normal results of other
    signs (four where its focused examination offers them), none its own sign's, and never
    a regular pulse beside atrial fibrillation in the history."""
    from behaviorsft.build.tasks.conflicts import conflict_pairs
    from behaviorsft.sources.exam_normals import ALONGSIDE, alongside_findings, normal_results

    pairs = conflict_pairs(kb)
    by_text = {v: k for k, v in normal_results().items()}
    for cid, pair in pairs.items():
        got = alongside_findings(kb, cid, [], [], SEED, 1)
        assert 3 <= len(got) <= ALONGSIDE
        assert {by_text[g] for g in got} <= set(pair.alongside)
    with_af = [
        alongside_findings(kb, "acute_cholecystitis", [], ["atrial fibrillation"], SEED, i)
        for i in range(8)
    ]
    assert not [g for g in with_af if "regular pulse" in g]
    assert alongside_findings(kb, "gout_flare", [], [], SEED, 1) == []


# ------------------------------------------------------------ wording


def _exam_turn(rendered) -> str:
    return rendered.conversation.turns[rendered.anchors["exam"]].text


def test_examination_finding_has_its_subject(kb):
    """37-000127: 'Examination shows appears unwell and fatigued'."""
    _, rendered, _ = _build(kb, 127)
    text = _exam_turn(rendered)
    assert "appears unwell" in text
    assert not re.search(r"(?:shows|examination:) appears", text)


@pytest.mark.parametrize(
    ("index", "present", "absent"),
    [
        # (the joint is the cardinal finding every gout examination documents, exam.yaml)
        (182, "first metatarsophalangeal joint (podagra)", "no tophi"),
        (452, "epigastric tenderness with guarding", "no flank or periumbilical ecchymosis"),
    ],
)
def test_negated_finding_in_a_clause_of_its_own(kb, index, present, absent):
    """37-000182 'no tophi and overlying erythema', 37-000452 'no flank or periumbilical
    ecchymosis and epigastric tenderness with guarding': the present finding read as
    absent."""
    _, rendered, _ = _build(kb, index)
    text = _exam_turn(rendered)
    assert present in text and absent in text
    assert f"and {present}" not in text.split(absent, 1)[1]
    assert text.index(present) < text.index(absent)


@pytest.mark.parametrize("index", [84, 210])
def test_exposure_question_fits_the_answer(kb, index):
    """37-000084, 37-000210: 'Any new sexual partner or recent sexual contact?' answered
    'I use a spermicide'."""
    _, rendered, _ = _build(kb, index)
    turns = [t.text for t in rendered.conversation.turns]
    i = next(i for i, t in enumerate(turns) if "spermicide" in t)
    assert "contraception" in turns[i - 1]
    assert "sexual partner" not in turns[i - 1]


def test_exposure_kinds_split_sexual_contact_from_contraception():
    from behaviorsft.build.ward_turns import exposure_kinds, exposure_question

    assert exposure_kinds(["spermicide use"]) == ["contraception"]
    assert exposure_kinds(["new sexual partner"]) == ["sexual"]
    q = exposure_question(["new sexual partner", "spermicide use"])
    assert "sexual partner" in q and "contraception" in q


def _turn_rules(text: str, exam: list[str]) -> list[str]:
    from behaviorsft.build.lint_text import TextFacts, check_turn_text

    found = _Found()
    facts = TextFacts(synthetic=True, sex="male", age=60.0, exam=exam)
    check_turn_text(found, 12, "emergency physician", "Dr. A", text, facts)
    return [r for r, _ in found.rules]


def test_lint_exam_negation_scope():
    exam = ["no tophi", "overlying erythema"]
    assert "exam-negation-scope" in _turn_rules(
        "Examination shows no tophi and overlying erythema.", exam
    )
    assert "exam-negation-scope" not in _turn_rules(
        "Examination shows overlying erythema; no tophi.", exam
    )
    # both negated: one "no" may govern both
    assert "exam-negation-scope" not in _turn_rules(
        "Examination shows no tophi and no erythema.", ["no tophi", "no erythema"]
    )


def test_lint_exam_subject_missing():
    exam = ["appears unwell and fatigued"]
    assert "exam-subject-missing" in _turn_rules(
        "Examination shows appears unwell and fatigued.", exam
    )
    assert "exam-subject-missing" not in _turn_rules(
        "Examination shows cough; the patient appears unwell and fatigued.", exam
    )


# ------------------------------------------------------------ explicit_error_correction


@pytest.mark.parametrize("index", [557, 452, 182, 8])
def test_no_query_proposes_what_was_ordered(kb, index):
    """37-000557, 37-000452: 'Query the ordered frequency: the usual schedule is once
    daily' for an order once daily (also a control's 'usual dose' equal to the dose
    ordered): no query option proposes the dose or schedule the order has."""
    from behaviorsft.build.lint_errors import order_indication, query_as_ordered

    _, _, tasks = _build(kb, index)
    items = [t for t in tasks if t.task_type == T.EXPLICIT_ERROR_CORRECTION]
    assert items
    for t in items:
        parsed = order_indication(t.context.excerpt)
        assert parsed is not None
        assert query_as_ordered(parsed[0], [o.text for o in t.options]) == [], t.id


def test_lint_query_as_ordered(kb):
    from behaviorsft.build.lint_errors import lint_tasks

    task = {
        "id": "synthetic:x:explicit_error_correction:x0",
        "case_id": "synthetic:x",
        "task_type": "explicit_error_correction",
        "context": {
            "excerpt": "Dr. A: New order: Enoxaparin 30 mg SC once daily. Indication: VTE "
            "prophylaxis."
        },
        "options": [
            {"label": "A", "text": "Query the ordered frequency: the usual schedule is once daily"},
            {"label": "B", "text": "Query the ordered dose: the usual dose is 30 mg"},
            {"label": "C", "text": "Query the ordered dose: the usual dose is 40 mg"},
            {"label": "D", "text": "Query the ordered frequency: the usual schedule is q12h"},
        ],
    }
    found = _Found()
    lint_tasks([], [(1, task)], lambda line, tid: found)
    got = [m for r, m in found.rules if r == "query-as-ordered"]
    assert len(got) == 2 and "once daily" in got[0] and "30 mg" in got[1]


@pytest.mark.parametrize("index", [182, 8])
def test_tenfold_key_is_not_copied_from_the_plan(kb, index):
    """37-000182 (colchicine 12 mg), 37-000008 (pantoprazole 800 mg): the right dose was
    written in the plan turn the item showed. The item now shows the record up to the
    working diagnosis: no shown turn gives the ordered drug with its usual dose."""
    _, rendered, tasks = _build(kb, index)
    turns = [t.text for t in rendered.conversation.turns]
    items = [t for t in tasks if t.id.endswith(":x1")]
    assert items
    for t in items:
        usual = t.perturbation.original  # "Colchicine 1.2 mg PO once, ..." as planned
        assert any(usual in x for x in turns)  # the plan still gives it, later
        shown = turns[t.context.turn_start : t.context.turn_end + 1]
        assert not [x for x in shown if usual in x], t.id
        assert t.context.turn_end < rendered.anchors["plan"]


def test_no_query_proposes_the_schedule_of_an_as_needed_order(kb):
    """7-000942 (full 6,876-case build): 'the usual schedule is q6h' offered for the order
    'Ipratropium bromide 5 mg inhaled q6h as needed'. (Ipratropium, an adjunct, no longer
    carries planted errors: only first-line drugs at their pooled dose do; the rule still
    reads the as-needed order's schedule.)"""
    from behaviorsft.build.lint_errors import order_indication, query_as_ordered

    order = "Ipratropium bromide 5 mg inhaled q6h as needed"
    q6h = "Query the ordered frequency: the usual schedule is q6h"
    assert query_as_ordered(order, [q6h]) == [q6h]
    case = synthesize_case(942, seed=7, kb=kb)
    tasks = case_tasks(case, render(case, kb, seed=7), kb, seed=7)
    items = [t for t in tasks if t.task_type == T.EXPLICIT_ERROR_CORRECTION]
    assert items
    for t in items:
        parsed = order_indication(t.context.excerpt)
        assert parsed is not None
        assert query_as_ordered(parsed[0], [o.text for o in t.options]) == [], t.id
