"""The helpers the linter modules share (build/lint_common.py)."""

from __future__ import annotations

import importlib

import pytest

from behaviorsft.build import lint_common
from behaviorsft.build.lint_common import KB_CODES, LAY_ROLES, kb_code, num
from behaviorsft.sources.synthetic import KB_CODE_SYSTEM


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7.0),
        (7.2, 7.2),
        (-3, -3.0),
        ("7.2", 7.2),
        (" 140 ", 140.0),
        ("-0.5", -0.5),
        ("1e3", 1000.0),
        ("1,200", 1200.0),
        ("12,500.5", 12500.5),
        ("-1,234,567", -1234567.0),
    ],
)
def test_num_reads_numbers(value: object, expected: float) -> None:
    assert num(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        "",
        "   ",
        "7.2 mmol/L",
        "positive",
        "None",
        "1,2",  # a decimal comma, not thousands
        "12,00",
        "1,2000",
        "1_000",
        "NaN",
        "nan",
        "inf",
        "-Infinity",
        float("nan"),
        float("inf"),
        10**400,  # beyond a float
        [7],
        {"value": 7},
    ],
)
def test_num_refuses_what_is_not_a_number(value: object) -> None:
    assert num(value) is None


def test_kb_code_of_a_synthetic_case_only() -> None:
    assert KB_CODES == KB_CODE_SYSTEM
    synthetic = {
        "conditions": [
            {"code_system": "snomed", "code": "1"},
            {"code_system": KB_CODES, "code": "cap"},
        ]
    }
    assert kb_code(synthetic) == "cap"
    assert kb_code({"conditions": [{"code_system": "snomed", "code": "233604007"}]}) is None
    assert kb_code({"conditions": [{"code_system": KB_CODES, "code": ""}]}) is None
    assert kb_code({}) is None


def test_every_linter_module_uses_the_shared_helpers() -> None:
    """No module keeps a copy of its own: each name is the shared object."""
    rules = ("chart", "dose", "encounter", "errors", "items", "patient", "plan", "record")
    rules += ("severity", "surgical", "text", "values")
    names = ["lint"] + [f"lint_{n}" for n in rules]
    mod = {n: importlib.import_module(f"behaviorsft.build.{n}") for n in names}
    for name, m in mod.items():
        if name != "lint":
            assert m._Adds is lint_common.Adds, name
    for name in ("lint", "lint_dose", "lint_encounter", "lint_patient", "lint_plan"):
        assert mod[name]._num is num, name
    assert mod["lint_severity"]._num is mod["lint_values"]._num is num
    assert mod["lint"].KB_CODES is mod["lint_record"].KB_CODES is mod["lint_text"].KB_CODES
    assert mod["lint_text"].KB_CODES is KB_CODES
    lay = (mod["lint_patient"]._LAY, mod["lint_values"]._LAY, mod["lint_record"].LAY)
    assert all(x is LAY_ROLES for x in lay)
