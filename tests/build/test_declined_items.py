"""Team notes decline only what this patient may rightly go without, each with a reason.

Round-9 reviewers called the standard_of_care note an artificial decoy construction: a
cellulitis note declined an LVEF, a Burch-Wartofsky score and a Glasgow-Blatchford score
(41-000228), an AF note drug susceptibility testing and influenza testing (41-000226), a
COVID note inhaler technique and a BNP (41-000281). A note now declines the workup of the
presentation's differential diagnoses and the conditional requirements the record rules
out, each with its reason, and the required item with an equally specific (wrong) one.
"""

from __future__ import annotations

import copy
import re

import pytest

from behaviorsft.build.tasks.omissions import (
    DECLINE_REASON,
    clause_limit,
    decline_text,
    near_care,
    near_conditions,
)
from behaviorsft.sources.kb import load_kb
from behaviorsft.taxonomy import TaskType as T
from tests.build.kb_records import as_records, build_item, kb_record, lint_rules

_NOT_DONE = re.compile(r"Not done, not felt necessary: (?P<items>.+)\.$")


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _declined(excerpt: str) -> list[str]:
    m = _NOT_DONE.search(excerpt)
    return m["items"].split("; ") if m else []


def _owners(kb, text: str) -> set[str]:
    return {c.id for c in kb.conditions.values() for i in c.standard_of_care if i.item == text}


@pytest.mark.parametrize("index", [228, 226, 281])
def test_review9_notes_decline_no_foreign_care(kb, index):
    case, rendered, tasks = build_item(kb, index, seed=41)
    cond = case.conditions[0].code
    near = {cond, *near_conditions(kb, cond)}
    notes = [t for t in tasks if t.task_type is T.STANDARD_OF_CARE]
    assert notes, "the named item has a standard_of_care task"
    for t in notes:
        items = _declined(t.context.excerpt or "")
        assert items
        for item in items:
            m = DECLINE_REASON.search(item)
            assert m is not None, f"'{item}' declined without a reason"
            bare = item[: m.start()]
            assert _owners(kb, bare) & near, f"'{bare}' is foreign to {cond}"
    c, conv, recs = as_records(case, rendered, tasks)
    rules = lint_rules(kb, c, conv, recs)
    assert "declined-foreign" not in rules and "declined-unreasoned" not in rules


def test_cellulitis_declines_the_dvt_workup(kb):
    """Cellulitis's differential DVT brings its workup (a leg duplex, a Wells score), never
    an LVEF or a bleeding score."""
    per, _ = near_care(kb)
    offered = {i.item: name for i, name in per["cellulitis"]}
    assert any("DVT" in t or "vein" in t for t in offered)
    assert "LVEF assessed before discharge" not in offered
    assert not any("Glasgow-Blatchford" in t for t in offered)
    assert "Deep vein thrombosis" in offered.values()


def test_decline_text_and_clause_limit():
    assert decline_text("INR", clause_limit("in patients on warfarin")) == (
        "INR (only in patients on warfarin, not the case here)"
    )
    assert clause_limit("only with systemic toxicity, malignancy") == (
        "only with systemic toxicity, malignancy"
    )
    # a clause split_condition leaves with an open parenthesis is cut before it
    assert clause_limit("if an upper source is suspected (instability, high BUN") == (
        "only if an upper source is suspected"
    )
    assert DECLINE_REASON.search(decline_text("serial CK", "only if rhabdomyolysis is likely"))


def _task(case, excerpt: str) -> dict:
    return {
        "id": "x:s0",
        "case_id": case["id"],
        "task_type": "standard_of_care",
        "context": {"turn_start": 0, "turn_end": 10, "excerpt": excerpt},
        "options": [{"label": "A", "text": "No: x is required"}],
        "answer": "A",
        "restraint_control": False,
    }


def test_rule_declined_foreign_and_unreasoned(kb):
    case, conv = kb_record("cellulitis")
    ok = (
        "Team note: elevation. Not done, not felt necessary: two-level DVT Wells score "
        "documented (only if deep vein thrombosis is likely, not the case here); "
        "interdigital toe spaces examined and fissuring treated (only if complicated, not "
        "the case here)."
    )
    assert not {"declined-foreign", "declined-unreasoned"} & set(
        lint_rules(kb, case, conv, [_task(case, ok)])
    )
    foreign = ok.replace(
        "two-level DVT Wells score documented (only if deep vein thrombosis",
        "LVEF assessed before discharge (only if inferior myocardial infarction",
    )
    assert "declined-foreign" in lint_rules(kb, case, conv, [_task(case, foreign)])
    bare = ok.replace(" (only if complicated, not the case here)", "")
    rules = lint_rules(kb, case, conv, [_task(case, copy.deepcopy(bare))])
    assert "declined-unreasoned" in rules and "declined-foreign" not in rules
