"""A fluid's dose query quotes a volume or a rate (synthetic:67-000101, review round 15).

The tenfold item on "Lactated Ringer's solution 10 L IV over 1 h" offered "the usual dose is
25 g" and "0.25 mg/kg": units no fluid order has, rejected unread. Wrong usual doses of a
fluid are now drawn from the plans' volumes and rates.
"""

from __future__ import annotations

import re

import pytest

from behaviorsft.build.tasks.errors import _is_volume
from behaviorsft.sources.kb import load_kb
from tests.build.kb_records import build_item

_DOSE = re.compile(r"^Query the ordered dose: the usual dose is [\d.]+ (?P<unit>.+)$")


@pytest.fixture(scope="module")
def kb():
    return load_kb()


def test_units():
    assert _is_volume("L") and _is_volume("mL/kg/h") and _is_volume("mL")
    assert not _is_volume("mg") and not _is_volume("g/kg") and not _is_volume("mEq")


def test_fluid_tenfold_item_queries_only_volumes(kb):
    _case, _rendered, tasks = build_item(kb, 101, 67)
    [item] = [t for t in tasks if t.id.endswith("explicit_error_correction:x1")]
    assert item.perturbation is not None and "Ringer" in item.perturbation.original
    units = [m["unit"] for o in item.options if (m := _DOSE.match(o.text))]
    assert len(units) >= 2
    assert all(_is_volume(u) for u in units), units
