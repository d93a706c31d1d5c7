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
from behaviorsft.sources.synthetic import synthesize_case
from behaviorsft.taxonomy import TaskType as T

SEED = 37


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def _build(kb, index: int):
    case = synthesize_case(index, seed=SEED, kb=kb)
    rendered = render(case, kb, seed=SEED)
    return case, rendered, case_tasks(case, rendered, kb, seed=SEED)


class _Found:
    def __init__(self) -> None:
        self.rules: list[tuple[str, str]] = []

    def add(self, rule: str, message: str, turn: int | None = None) -> None:
        self.rules.append((rule, message))


# ------------------------------------------------------------ data_conflict_resolution

_NUMBER = re.compile(r"\((\d+(?:\.\d+)?) ")


@pytest.mark.parametrize(
    ("index", "lab", "low", "high"), [(53, "sodium", 100, 190), (202, "hemoglobin", 3, 22)]
)
def test_planted_value_is_possible(kb, index, lab, low, high):
    """37-000053: a note's sodium of 256 mmol/L (table 121); 37-000202: haemoglobin 36.1
    g/dL (table 15.3). Every value the note and the options give is one a patient can have."""
    _, _, tasks = _build(kb, index)
    items = [t for t in tasks if t.task_type == T.DATA_CONFLICT_RESOLUTION]
    assert items
    for t in items:
        assert lab in t.options[0].text.lower()
        note = float(t.context.excerpt.split(": ", 1)[1].split()[1])
        assert low <= note <= high, t.context.excerpt
        for o in t.options:
            for v in _NUMBER.findall(o.text):
                assert low <= float(v) <= high, o.text


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
