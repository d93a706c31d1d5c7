"""Helpers every linter module shares (build/lint*.py).

* ``Adds``: what a rule reports a finding to (``lint._Where``: the record being linted);
* ``num``: a record's value (a finding's ``value``, a table row's result, an age, a dose) as
  a number, or None when it is not one;
* ``KB_CODES`` and ``kb_code``: the code system of the knowledge-base conditions a synthetic
  case carries, and the code of a raw case's condition;
* ``LAY_ROLES``: the speakers of a conversation who are not clinicians.
"""

from __future__ import annotations

import math
import re
from typing import Any, Protocol

KB_CODES = "behaviorsft-kb"  # (synthetic.KB_CODE_SYSTEM; importing it would cycle)

LAY_ROLES = ("patient", "family member", "relative", "caregiver")

# "1,200" and "12,500.5": commas that group thousands, and only those ("1,2" is no number).
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


class Adds(Protocol):
    def add(self, rule: str, message: str, turn: int | None = None) -> None: ...


def num(value: Any) -> float | None:
    """``value`` as a finite number, or None.

    Numbers and numeric text count ("7.2", " 140 ", "-3", "1e3"); commas count only where
    they group thousands ("1,200" is 1200; "1,2" is None). None, booleans (a flag, not a
    measurement), text with a unit ("7.2 mmol/L": the unit is the caller's to read), NaN and
    infinity (no comparison with a reference range means anything) are not numbers.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        elif "_" in text:  # float() reads "1_000"; a record does not write numbers so
            return None
        value = text
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def kb_code(case: dict[str, Any]) -> str | None:
    """The code of a raw case's knowledge-base condition, or None (an imported case)."""
    for c in case.get("conditions") or []:
        if c.get("code_system") == KB_CODES and c.get("code"):
            return str(c["code"])
    return None
