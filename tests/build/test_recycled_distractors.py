"""Grounded distractors (session 12): wrong options are values of the same kind of field,
never numbers recycled from an unrelated one."""

from __future__ import annotations

import re

import pytest

from behaviorsft.sources.kb import load_kb
from tests.build.kb_records import build_item

_VALUE = re.compile(r"\((\d+(?:\.\d+)?) ")


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@pytest.mark.parametrize(("seed", "index"), [(61, 531), (7, 19), (7, 20)])
def test_conflict_options_recycle_no_other_kind_of_field(kb, seed, index):
    """Round 14 (61-000531): a platelet-count conflict offered the heart rate (122) and the
    weight (72) as platelet counts; on main 7-000019 and 7-000020 did the same. No option
    value may be a value of another kind of field (a vital sign for a laboratory test)
    unless the test itself took that value."""
    case, _, tasks = build_item(kb, index, seed)
    items = [t for t in tasks if t.task_type.value == "data_conflict_resolution"]
    assert items
    for t in items:
        tested = re.search(r"on ([a-z0-9 /()-]+?): ", t.options[0].text)
        assert tested is not None
        own = [f for f in case.findings if tested.group(1).startswith(f.name.lower())]
        assert own, tested.group(1)
        kinds = {f.kind for f in own}
        own_values = {f.value for f in own}
        foreign = {
            f.value for f in case.findings if f.value is not None and f.kind not in kinds
        } - own_values
        for o in t.options:
            for v in _VALUE.findall(o.text):
                assert float(v) not in foreign, (t.id, o.text)
