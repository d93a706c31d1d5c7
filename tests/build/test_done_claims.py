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
