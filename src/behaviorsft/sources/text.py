"""Free-text case reports: plain text or markdown files, or JSONL of ``{id, text}`` objects.

* ``.txt`` / ``.md`` (any suffix other than ``.jsonl``/``.ndjson``): one case
  per file, id ``text:<file stem>``.
* ``.jsonl`` / ``.ndjson``: one case per line, an object with ``id`` and
  ``text`` and optionally ``title``, ``licence`` and ``attribution``; id
  ``text:<id>``.

The text is split into sections at markdown headings (``#`` .. ``######``)
and at capitalised headings that open a paragraph, alone on their line
("HISTORY OF PRESENT ILLNESS", "PLAN:") or followed by a colon and text
("HPI: A 54-year-old ..."). Text before the first heading is the
presentation; without any, the chief complaint and history of present
illness (or presentation) sections joined; without those, the first section.
A section whose heading names a final, discharge or definitive diagnosis
fills ``final_diagnosis``. Age and sex are read from a presentation that
opens like a vignette ("A 54-year-old man ...").

The material is the user's: its licence is what the caller (or the JSONL
line) says, ``'unknown (user-supplied)'`` by default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from behaviorsft.records import Case, Section
from behaviorsft.sources._common import (
    DEFAULT_TEXT_LICENCE,
    Imported,
    decode_utf8,
    demographics_from_text,
    error,
    error_from_validation,
    guarded,
    iter_jsonl,
    make_source,
    read_bytes,
    split_sections,
)

SOURCE = "text"
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".text"})

# Sections that make up a presentation, in the order they are joined.
_PRESENTATION_TITLES = (
    re.compile(r"chief complaint|\bcc\b|reason for (visit|admission|referral)", re.IGNORECASE),
    re.compile(
        r"presentation|present(ing)? illness|\bhpi\b|case (report|summary|description)",
        re.IGNORECASE,
    ),
)
_FINAL_DIAGNOSIS_TITLE = re.compile(
    r"^(?=.*diagnos)(?=.*(final|discharge|definitive|anatomical|pathological)).*$",
    re.IGNORECASE,
)


class TextEntry(BaseModel):
    """One line of a free-text JSONL file."""

    model_config = ConfigDict(extra="ignore")
    id: str | int
    text: str = Field(min_length=1)
    title: str | None = None
    licence: str | None = None
    attribution: str | None = None

    @field_validator("id", "text")
    @classmethod
    def _not_blank(cls, v: str | int) -> str | int:
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be blank")
        return v


def read(
    path: Path, *, licence: str | None = None, attribution: str | None = None
) -> Iterator[Imported]:
    """Import a text/markdown case report, or every line of a free-text JSONL file.

    ``licence`` and ``attribution`` describe the user's material (a JSONL
    line's own ``licence``/``attribution`` wins over them).
    """
    path = Path(path)
    if path.suffix.lower() in JSONL_SUFFIXES:
        yield from _read_jsonl(path, licence, attribution)
        return
    data = read_bytes(path)
    if isinstance(data, Imported):
        yield data
        return
    text = decode_utf8(path, data)
    if isinstance(text, Imported):
        yield text
        return
    stem = path.stem
    yield guarded(
        path,
        1,
        partial(
            _imported,
            f"{SOURCE}:{stem}",
            text,
            path=path,
            record_id=stem,
            licence=licence,
            attribution=attribution,
        ),
    )


def _read_jsonl(path: Path, licence: str | None, attribution: str | None) -> Iterator[Imported]:
    seen: dict[str, int] = {}
    any_line = False
    for n, obj, problem in iter_jsonl(path):
        any_line = True
        if problem is not None:
            yield problem
            continue
        try:
            entry = TextEntry.model_validate(obj)
        except ValidationError as exc:
            yield error_from_validation(path, n, exc)
            continue
        rid = str(entry.id).strip()
        if rid in seen:
            yield error(path, n, "id", f"duplicate id {rid!r} (first on line {seen[rid]})")
            continue
        seen[rid] = n
        yield guarded(
            path,
            n,
            partial(
                _imported,
                f"{SOURCE}:{rid}",
                entry.text,
                path=path,
                record_id=rid,
                title=entry.title,
                licence=entry.licence or licence,
                attribution=entry.attribution if entry.attribution is not None else attribution,
            ),
        )
    if not any_line:
        yield error(path, 0, "<file>", "file is empty")


def _imported(case_id: str, text: str, **kwargs: Any) -> Imported:
    return Imported(case=case_from_text(case_id, text, **kwargs))


def case_from_text(
    case_id: str,
    text: str,
    *,
    path: Path,
    record_id: str,
    title: str | None = None,
    licence: str | None = None,
    attribution: str | None = None,
) -> Case:
    """A case from one free-text report (sections, presentation, final diagnosis)."""
    if not text.strip():
        raise ValueError("text: empty")
    parts = split_sections(text, markdown=True, caps_inline=True)
    preamble = next((body for heading, body in parts if heading is None), "")
    sections = [Section(title=h, text=b) for h, b in parts if h is not None]
    presentation = preamble
    if not presentation:
        # Chief complaint then history of present illness, when the report has them.
        chosen = [
            next((s for s in sections if pattern.search(s.title) and s.text), None)
            for pattern in _PRESENTATION_TITLES
        ]
        presentation = "\n\n".join(s.text for s in chosen if s is not None)
    if not presentation:
        presentation = next((s.text for s in sections if s.text), "")
    final = next(
        (s.text for s in sections if _FINAL_DIAGNOSIS_TITLE.match(s.title) and s.text.strip()),
        None,
    )
    if title and title.strip():
        sections.insert(0, Section(title="Title", text=title.strip()))
    return Case(
        id=case_id,
        source=make_source(
            SOURCE,
            record_id,
            path,
            licence=licence or DEFAULT_TEXT_LICENCE,
            attribution=attribution,
        ),
        demographics=demographics_from_text(presentation),
        presentation=presentation,
        sections=sections,
        final_diagnosis=" ".join(final.split()) if final else None,
    )
