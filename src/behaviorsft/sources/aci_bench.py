"""ACI-Bench CSVs (doctor-patient encounters and their visit notes) to cases and conversations.

``train.csv`` / ``valid.csv`` (and the test files) have columns ``dataset,
encounter_id, dialogue, note``. Beside each, ``<name>_metadata.csv`` (when
present) gives ``patient_gender, patient_age, cc, 2nd_complaints`` per
``encounter_id``. Each row gives:

* a ``Case`` ``aci-bench:<encounter_id>``: demographics from the metadata,
  presentation = the chief complaint (metadata ``cc``, else the note's CHIEF
  COMPLAINT section, else the first patient turn), sections = the note split
  at its capitalised headings ("CHIEF COMPLAINT", "HISTORY OF PRESENT
  ILLNESS", "ASSESSMENT AND PLAN", ...);
* a ``Conversation`` of the dialogue: ``[doctor] ...`` / ``[patient] ...``
  lines (also ``[patient_guest]``, ``[nurse]``, ...) become turns; a line with
  no tag continues the previous turn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from behaviorsft.records import Case, Conversation, Demographics, Section
from behaviorsft.sources._common import (
    Imported,
    demographics_from_text,
    error,
    guarded,
    iter_csv,
    make_source,
    parse_age,
    parse_sex,
    parse_turns,
    split_sections,
    swapped_speakers,
)

SOURCE = "aci-bench"
COLUMNS = ("encounter_id", "dialogue", "note")
METADATA_SUFFIX = "_metadata"
_TAG = re.compile(r"^\s*\[([^\[\]]{1,40})\]\s?(.*)$")
_CC_TITLES = ("CHIEF COMPLAINT", "CC", "REASON FOR VISIT")
_HPI_TITLES = ("HISTORY OF PRESENT ILLNESS", "HPI")
# The metadata writes "none" where there are no secondary complaints.
_NONE = {"none", "na", "n/a", "-"}


def _match(line: str) -> tuple[str, str] | None:
    m = _TAG.match(line)
    return (m.group(1), m.group(2)) if m else None


def is_metadata_file(path: Path) -> bool:
    """True for the ``*_metadata.csv`` files that sit beside the dialogue files."""
    return path.stem.endswith(METADATA_SUFFIX)


def _metadata(path: Path) -> tuple[dict[str, dict[str, str]], list[Imported]]:
    """Metadata rows by encounter id from ``<stem>_metadata.csv`` beside ``path``, if any."""
    meta_path = path.with_name(f"{path.stem}{METADATA_SUFFIX}{path.suffix}")
    if not meta_path.exists():
        return {}, []
    rows: dict[str, dict[str, str]] = {}
    problems: list[Imported] = []
    for _, row, problem in iter_csv(meta_path, ("encounter_id",)):
        if problem is not None:
            problems.append(problem)
        elif row is not None and row["encounter_id"].strip():
            rows[row["encounter_id"].strip()] = row
    return rows, problems


def read(path: Path) -> Iterator[Imported]:
    """Import every encounter of an ACI-Bench CSV; a bad row is an error, the others import."""
    path = Path(path)
    if is_metadata_file(path):
        yield error(path, 0, "<file>", "a metadata file; import the dialogue CSV beside it instead")
        return
    meta, meta_problems = _metadata(path)
    # A broken metadata file only costs the demographics; it is still reported.
    yield from meta_problems
    seen: dict[str, int] = {}
    for line, row, problem in iter_csv(path, COLUMNS):
        if problem is not None:
            yield problem
            continue
        assert row is not None
        eid = row["encounter_id"].strip()
        if not eid:
            yield error(path, line, "encounter_id", "empty")
            continue
        if eid in seen:
            yield error(
                path, line, "encounter_id", f"duplicate {eid!r} (first on line {seen[eid]})"
            )
            continue
        seen[eid] = line
        if not row["dialogue"].strip():
            yield error(path, line, "dialogue", "empty")
            continue
        yield guarded(path, line, partial(_case, path, row, eid, meta.get(eid), line))


def _case(
    path: Path, row: dict[str, str], eid: str, meta: dict[str, str] | None, line: int = 0
) -> Imported:
    case_id = f"{SOURCE}:{eid}"
    turns = parse_turns(row["dialogue"], _match)
    swapped = swapped_speakers(turns)
    if swapped is not None:  # skipped (and counted in the manifest), not relabelled:
        return error(path, line, "dialogue", swapped)  # such turns also run together
    sections = [
        Section(title=title or "Note", text=body)
        for title, body in split_sections(row["note"], markdown=False)
    ]
    presentation = ""
    demographics = Demographics()
    if meta is not None:
        cc = meta.get("cc", "").strip()
        cc = "" if cc.lower() in _NONE else cc
        others = [
            s.strip()
            for s in meta.get("2nd_complaints", "").split(";")
            if s.strip() and s.strip().lower() not in _NONE
        ]
        if cc:
            presentation = f"Chief complaint: {cc}."
            if others:
                presentation += f" Other complaints: {'; '.join(others)}."
        demographics = Demographics(
            age_years=parse_age(meta.get("patient_age", "")),
            sex=parse_sex(meta.get("patient_gender", "")),
        )
    if meta is None:
        hpi = next((s.text for s in sections if s.title.rstrip(":") in _HPI_TITLES), "")
        demographics = demographics_from_text(hpi)
    if not presentation:
        cc_section = next((s for s in sections if s.title.rstrip(":") in _CC_TITLES), None)
        if cc_section is not None and cc_section.text:
            presentation = f"Chief complaint: {cc_section.text}"
    if not presentation:
        presentation = next((t.text for t in turns if t.role == "patient" and t.text), "")
    case = Case(
        id=case_id,
        source=make_source(SOURCE, eid, path),
        demographics=demographics,
        presentation=presentation,
        sections=sections,
    )
    return Imported(case=case, conversation=Conversation(case_id=case_id, turns=turns))
