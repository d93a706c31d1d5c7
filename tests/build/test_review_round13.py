"""Review round 13 (seed 59, main before the session-11 merges): the lead's fixes, each
built from the named review item."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from behaviorsft.build import lint_items
from behaviorsft.sources.kb import load_kb
from tests.build.kb_records import as_records, build_item

SEED = 59


@pytest.fixture(scope="module")
def kb():
    return load_kb()


class _Found:
    def __init__(self) -> None:
        self.rules: list[str] = []

    def add(self, rule: str, message: str, turn: int | None = None) -> None:
        self.rules.append(rule)


def _item_rules(task: dict[str, Any], conv: dict[str, Any]) -> list[str]:
    found = _Found()
    lint_items.lint_task(found, task, conv)
    return found.rules


def _pressures(conv: dict[str, Any]) -> dict[str, float]:
    return {
        str(r[0]).lower(): float(r[1])
        for t in conv["turns"]
        for a in t.get("attachments") or []
        for r in a.get("rows") or []
        if "blood pressure" in str(r[0]).lower()
    }


def test_59_000382_blood_pressure_slips_leave_a_possible_reading(kb):
    """The note gave a diastolic of 140 mmHg beside the table's systolic of 126: no slip
    or wrong option may cross the reading's other pressure."""
    case, rendered, tasks = build_item(kb, 382, SEED)
    _, conv, records = as_records(case, rendered, tasks)
    bp = _pressures(conv)
    items = [
        t
        for t in records
        if t["task_type"] == "data_conflict_resolution"
        and "blood pressure" in t["question"] + str(t["options"])
    ]
    for t in items:
        assert not _item_rules(t, conv).count("slip-impossible")
        for o in t["options"]:
            if "diastolic" in o["text"]:
                note = float(o["text"].split("The note (")[1].split(" ")[0])
                assert note <= bp["systolic blood pressure"] - lint_items._MIN_PULSE_PRESSURE


def test_slip_impossible_reports_a_diastolic_above_the_systolic(kb):
    case, rendered, tasks = build_item(kb, 382, SEED)
    _, conv, records = as_records(case, rendered, tasks)
    bp = _pressures(conv)
    task = copy.deepcopy(next(t for t in records if t["task_type"] == "data_conflict_resolution"))
    dbp = bp["diastolic blood pressure"]
    task["perturbation"] = {
        "kind": "conflict",
        "location": "context.excerpt",
        "original": f"{dbp:g} mmHg",
        "modified": f"{bp['systolic blood pressure'] + 14:g} mmHg",
        "description": "Diastolic blood pressure transcribed with a different value.",
    }
    assert "slip-impossible" in _item_rules(task, conv)
    task["perturbation"]["modified"] = f"{bp['systolic blood pressure'] - 40:g} mmHg"
    assert "slip-impossible" not in _item_rules(task, conv)
