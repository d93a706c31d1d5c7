"""Linter rules for how a record reads as a chart (imported records: FHIR/Synthea).

* ``vital-precision``: a vital sign shown beyond the precision a chart keeps (a
  temperature to 0.01, a pulse, respiratory rate, SpO2 or blood pressure with decimals);
* ``test-name-placeholder``: a result row named by a code system's label ("LOINC Code")
  instead of its test;
* ``name-digits``: a simulator's name token ("Lanell756");
* ``note-contradicts-lists``: a note stating "No Active Medications" (or "No Known
  Allergies") in a record whose medication (allergy) list is not empty;
* ``empty-section``: a note heading with no text of its own before the next heading (or
  the note's end).

Each finding names the turn; ``sources/fhir_tidy.py`` is the importer's side of each.
"""

from __future__ import annotations

import re
from typing import Any

from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.sources.fhir_tidy import synthea_names

RECORD_RULES: dict[str, tuple[Any, str]] = {
    "vital-precision": ("error", "a vital sign shown beyond the precision a chart keeps"),
    "test-name-placeholder": ("error", "a result named by a code label, not its test"),
    "name-digits": ("error", "a name with a simulator's digits ('Lanell756')"),
    "note-contradicts-lists": (
        "error",
        "a note says no medications (allergies) while the record lists some",
    ),
    "empty-section": ("error", "a note heading with no text of its own"),
}


# Vital signs by words of their name -> decimals a chart keeps.
_VITAL_PLACES = (
    ("temperature", 1),
    ("pulse", 0),
    ("heart rate", 0),
    ("respiratory rate", 0),
    ("oxygen saturation", 0),
    ("spo2", 0),
    ("blood pressure", 0),
)
_PLACEHOLDER = re.compile(r"^\s*(loinc|snomed(?: ct)?|rxnorm)?\s*code\s*$", re.I)
_NO_MEDS = re.compile(r"\bno (?:active |current )?medications\b", re.I)
_NO_ALLERGIES = re.compile(r"\bno known (?:drug )?allergies\b", re.I)
_HEADING = re.compile(r"^(#+)\s+\S")
_LISTS_MEDS = re.compile(r"\b(?:Active medications|Medicines):\s*\w")
_LISTS_ALLERGIES = re.compile(r"\bAllergies:\s*(?!none|nkda|no\b)\w", re.I)


def _places(cell: str) -> int | None:
    m = re.fullmatch(r"\s*-?\d+(?:\.(\d+))?\s*", cell)
    if m is None:
        return None
    return len(m.group(1) or "")


def _vital_places(name: str) -> int | None:
    lowered = name.lower()
    return next((p for word, p in _VITAL_PLACES if word in lowered), None)


def _empty_headings(text: str) -> list[str]:
    """Headings with no text of their own before the next heading or the end ("# Assessment
    and Plan" straight followed by "## Plan" counts: the reviewers read it as empty)."""
    if "#" not in text:
        return []  # (no heading: most turns)
    out = []
    heading: str | None = None
    for line in text.splitlines():
        if _HEADING.match(line):
            if heading is not None:
                out.append(heading)
            heading = line.strip()
        elif line.strip():
            heading = None
    if heading is not None:
        out.append(heading)
    return out


def check_conversation(where: _Adds, conv: dict[str, Any]) -> None:
    """The rules above over one conversation (raw JSON)."""
    turns = conv.get("turns") or []
    said = "\n".join(str(t.get("text", "")) for t in turns)
    lists_meds = _LISTS_MEDS.search(said) is not None
    lists_allergies = _LISTS_ALLERGIES.search(said) is not None
    for t in turns:
        idx = t.get("index")
        text = str(t.get("text", ""))
        for a in t.get("attachments") or []:
            for row in a.get("rows") or []:
                if not row:
                    continue
                name = str(row[0])
                if _PLACEHOLDER.match(name):
                    where.add("test-name-placeholder", f"a result row named '{name}'", idx)
                keep = _vital_places(name)
                got = _places(str(row[1])) if len(row) > 1 else None
                if keep is not None and got is not None and got > keep:
                    where.add(
                        "vital-precision",
                        f"{name} {row[1]}: a chart keeps {keep} decimal(s)",
                        idx,
                    )
        names = synthea_names(text)
        if names:
            where.add("name-digits", f"'{names[0]}' in '{text[:60]}'", idx)
        if lists_meds and _NO_MEDS.search(text):
            where.add("note-contradicts-lists", "'no medications' beside a medicines list", idx)
        if lists_allergies and _NO_ALLERGIES.search(text):
            where.add("note-contradicts-lists", "'no known allergies' beside allergies", idx)
        for heading in _empty_headings(text):
            where.add("empty-section", f"'{heading}' has no text of its own", idx)
