"""MTS-Dialog CSVs (dialogue snippets and the note section written from each) to cases.

Columns ``ID, section_header, section_text, dialogue``; the dialogue has one
utterance per line, ``Doctor: ...`` / ``Patient: ...`` (also
``Guest_family_1:``, ``Guest_clinician:`` and a few misspellings, all mapped
to a speaker and role). A line without a known speaker label continues the
previous turn.

Case ids are ``mts-dialog:<split>-<ID>`` (``train``, ``valid``, ``test-1``,
... from the file name) because ``ID`` restarts at 0 in every file. The
note section becomes the case's one section, titled by its header spelled out
("Past medical history (PASTMEDICALHX)"); a CC or GENHX (history) section is
also the presentation, and a DIAGNOSIS section the final diagnosis.
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
    is_known_speaker,
    iter_csv,
    make_source,
    parse_turns,
    slug,
    swapped_speakers,
)

SOURCE = "mts-dialog"
COLUMNS = ("ID", "section_header", "section_text", "dialogue")
_LABEL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_ ]{0,30}?)\s*:\s?(.*)$")

SECTION_NAMES: dict[str, str] = {
    "CC": "Chief complaint",
    "GENHX": "History of present illness",
    "PASTMEDICALHX": "Past medical history",
    "PASTSURGICAL": "Past surgical history",
    "FAM/SOCHX": "Family and social history",
    "ROS": "Review of systems",
    "ALLERGY": "Allergies",
    "MEDICATIONS": "Medications",
    "ASSESSMENT": "Assessment",
    "EXAM": "Physical examination",
    "DIAGNOSIS": "Diagnosis",
    "DISPOSITION": "Disposition",
    "PLAN": "Plan",
    "EDCOURSE": "Emergency department course",
    "IMMUNIZATIONS": "Immunizations",
    "IMAGING": "Imaging",
    "GYNHX": "Gynecologic history",
    "PROCEDURES": "Procedures",
    "OTHER_HISTORY": "Other history",
    "LABS": "Laboratory results",
}
_PRESENTATION_HEADERS = {"CC", "GENHX"}


def _match(line: str) -> tuple[str, str] | None:
    m = _LABEL.match(line)
    if m and is_known_speaker(m.group(1)):
        return m.group(1), m.group(2)
    return None


def split_name(path: Path) -> str:
    """The split a file holds, from its name: 'MTS-Dialog-TrainingSet' -> 'train'."""
    stem = path.stem
    m = re.search(r"(train|valid|test)[a-z]*(?:set)?(?:[-_ ]?(\d+))?", stem, re.IGNORECASE)
    if not m:
        return slug(stem)
    return m.group(1).lower() + (f"-{m.group(2)}" if m.group(2) else "")


def read(path: Path) -> Iterator[Imported]:
    """Import every row of an MTS-Dialog CSV; a bad row is an error, the others import."""
    path = Path(path)
    split = split_name(path)
    seen: dict[str, int] = {}
    for line, row, problem in iter_csv(path, COLUMNS):
        if problem is not None:
            yield problem
            continue
        assert row is not None
        rid = row["ID"].strip()
        if not rid:
            yield error(path, line, "ID", "empty")
            continue
        if rid in seen:
            yield error(path, line, "ID", f"duplicate {rid!r} (first on line {seen[rid]})")
            continue
        seen[rid] = line
        if not row["dialogue"].strip():
            yield error(path, line, "dialogue", "empty")
            continue
        if not row["section_header"].strip():
            yield error(path, line, "section_header", "empty")
            continue
        yield guarded(path, line, partial(_case, path, row, split, rid, line))


def _case(path: Path, row: dict[str, str], split: str, rid: str, line: int = 0) -> Imported:
    case_id = f"{SOURCE}:{split}-{rid}"
    header = row["section_header"].strip()
    text = row["section_text"].replace("\r\n", "\n").strip()
    name = SECTION_NAMES.get(header.upper())
    title = f"{name} ({header})" if name else header
    case = Case(
        id=case_id,
        source=make_source(SOURCE, f"{split}-{rid}", path),
        # Only the patient's own history says who the patient is; a family
        # history's "60-year-old woman" is somebody else.
        demographics=(
            demographics_from_text(text)
            if header.upper() in _PRESENTATION_HEADERS
            else Demographics()
        ),
        presentation=text if header.upper() in _PRESENTATION_HEADERS else "",
        sections=[Section(title=title, text=text)],
        final_diagnosis=(text or None) if header.upper() == "DIAGNOSIS" else None,
    )
    turns = parse_turns(row["dialogue"], _match)
    swapped = swapped_speakers(turns)
    if swapped is not None:  # skipped (and counted in the manifest), not relabelled
        return error(path, line, "dialogue", swapped)
    return Imported(case=case, conversation=Conversation(case_id=case_id, turns=turns))
