"""MEDEC CSV (medical error detection and correction) to ``Case`` records.

Columns: ``Text ID, Text, Sentences, Error Flag, Error Type, Error Sentence ID,
Error Sentence, Corrected Sentence, Corrected Text``. Each row is one case,
id ``medec:<Text ID>``, whose presentation is the vignette as published (with
its error, if it has one).

Convention for the error annotation, so that the task builder can make
``explicit_error_correction`` tasks with a known answer (and restraint
controls from the error-free vignettes):

* section "Sentences": the ``Sentences`` column, one sentence per line prefixed
  by its id ("0 A 24-year-old woman ..."); where MEDEC split one sentence over
  several lines ("6 Her pulse is" / "7 106/min and blood pressure is 102/73 mm" /
  "8 Hg."), the pieces are joined on the first one's line (``join_fragments``);
* section "MEDEC error annotation": a JSON object with ``error_flag`` (bool),
  ``error_type`` ("diagnosis", "management", "treatment", "pharmacotherapy",
  "causalOrganism"; null when there is no error), ``error_sentence_id`` (int,
  null when none), ``error_sentence`` and ``corrected_sentence`` (null when
  none). ``medec_annotation(case)`` reads it back as a ``MedecAnnotation``.

Error-free vignettes (flag 0) are imported too; their annotation has
``error_flag: false`` and nulls.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from functools import partial
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from behaviorsft.records import Case, Section
from behaviorsft.sources._common import (
    Imported,
    demographics_from_text,
    error,
    guarded,
    iter_csv,
    make_source,
)

SOURCE = "medec"
ANNOTATION_TITLE = "MEDEC error annotation"
SENTENCES_TITLE = "Sentences"
# The unlabelled MEDEC test files have only the first three; the annotation
# section is written when the row has an "Error Flag".
REQUIRED_COLUMNS = ("Text ID", "Text")
COLUMNS = (
    "Text ID",
    "Text",
    "Sentences",
    "Error Flag",
    "Error Type",
    "Error Sentence ID",
    "Error Sentence",
    "Corrected Sentence",
    "Corrected Text",
)
# MEDEC writes "NA" (and -1 for the sentence id) where a vignette has no error.
_NONE = {"", "na", "n/a", "none", "null", "-1"}


class MedecAnnotation(BaseModel):
    """The injected error of a MEDEC vignette (or its absence)."""

    model_config = ConfigDict(extra="forbid")
    error_flag: bool = Field(description="True if the vignette carries an injected error.")
    error_type: str | None = Field(None, description="Error type, e.g. 'management'.")
    error_sentence_id: int | None = Field(None, ge=0, description="Id of the wrong sentence.")
    error_sentence: str | None = Field(None, description="The sentence as written (wrong).")
    corrected_sentence: str | None = Field(None, description="The sentence as it should be.")

    @model_validator(mode="after")
    def _consistent(self) -> MedecAnnotation:
        if self.error_flag:
            missing = [
                name
                for name in ("error_sentence_id", "error_sentence", "corrected_sentence")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"an error-flagged vignette needs {', '.join(missing)}")
        return self


_TERMINAL = re.compile(r"[.!?:;]\s*$")
# A line ending in one of these words stops mid-sentence ("Her pulse is", "... 102/73 mm").
_OPEN_END = re.compile(
    r"\b(is|are|was|were|of|and|or|with|without|to|at|in|on|by|for|from|a|an|the|mm|"
    r"than|as|per)\s*$",
    re.I,
)


def continues(previous: str, line: str) -> bool:
    """Whether ``line`` carries on the sentence that ``previous`` left unfinished."""
    previous, line = previous.strip(), line.strip()
    if not previous or not line or _TERMINAL.search(previous):
        return False
    return bool(
        re.match(r"[a-z(]", line)  # lower case: the sentence goes on
        or re.fullmatch(r"\S{1,5}\.", line)  # a lone unit such as "Hg."
        or _OPEN_END.search(previous)
    )


def join_fragments(
    lines: list[str], *, keep_start: Collection[int] = ()
) -> list[tuple[int, str]]:
    """Join the pieces of sentences split over several lines.

    ``lines`` are the sentences in order; returns (index of the first piece, whole
    sentence) for each. List lines (lab values, one per line) stay separate, and so does
    every line whose index is in ``keep_start`` (e.g. the one an annotation names by id).
    """
    out: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        if out and i not in keep_start and continues(out[-1][1], text):
            out[-1] = (out[-1][0], f"{out[-1][1]} {text}")
        else:
            out.append((i, text))
    return out


def medec_annotation(case: Case) -> MedecAnnotation | None:
    """The MEDEC annotation stored in ``case``'s sections; None if the case has none."""
    for section in case.sections:
        if section.title == ANNOTATION_TITLE:
            return MedecAnnotation.model_validate_json(section.text)
    return None


def read(path: Path) -> Iterator[Imported]:
    """Import every row of a MEDEC CSV; a bad row is an error, the others import."""
    path = Path(path)
    seen: dict[str, int] = {}
    for line, row, problem in iter_csv(path, REQUIRED_COLUMNS):
        if problem is not None:
            yield problem
            continue
        assert row is not None
        rid = row["Text ID"].strip()
        if not rid:
            yield error(path, line, "Text ID", "empty")
            continue
        if not row["Text"].strip():
            yield error(path, line, "Text", "empty")
            continue
        if rid in seen:
            yield error(path, line, "Text ID", f"duplicate {rid!r} (first on line {seen[rid]})")
            continue
        seen[rid] = line
        annotation = _annotation(path, line, row) if "Error Flag" in row else None
        if isinstance(annotation, Imported):
            yield annotation
            continue
        yield guarded(path, line, partial(_case, path, row, rid, annotation))


def _value(text: str) -> str | None:
    return None if text.strip().lower() in _NONE else text.strip()


# Annotation fields and the CSV columns they come from, for error messages.
_FIELD_COLUMNS = {
    "error_type": "Error Type",
    "error_sentence_id": "Error Sentence ID",
    "error_sentence": "Error Sentence",
    "corrected_sentence": "Corrected Sentence",
}


def _annotation(path: Path, line: int, row: dict[str, str]) -> MedecAnnotation | Imported:
    row = {c: row.get(c, "") for c in COLUMNS}  # absent optional columns read as empty
    flag = row["Error Flag"].strip()
    if flag not in ("0", "1"):
        return error(path, line, "Error Flag", f"expected 0 or 1, got {flag!r}")
    raw_id = _value(row["Error Sentence ID"])
    sentence_id: int | None = None
    if raw_id is not None:
        try:
            sentence_id = int(raw_id)
        except ValueError:
            return error(path, line, "Error Sentence ID", f"not an integer: {raw_id!r}")
    values = {
        "error_type": _value(row["Error Type"]),
        "error_sentence_id": sentence_id,
        "error_sentence": _value(row["Error Sentence"]),
        "corrected_sentence": _value(row["Corrected Sentence"]),
    }
    if flag == "1":
        # Checked here rather than left to the model, to name the column at fault.
        for name, value in values.items():
            if value is None:
                return error(
                    path, line, _FIELD_COLUMNS[name], "required when Error Flag is 1 (got NA)"
                )
    try:
        return MedecAnnotation.model_validate({"error_flag": flag == "1", **values})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = str(first["loc"][0]) if first["loc"] else ""
        column = _FIELD_COLUMNS.get(loc, "Error Flag")
        return error(path, line, column, first["msg"].removeprefix("Value error, "))


def _joined(sentences: str, keep_id: int | None = None) -> str:
    """The Sentences column with split sentences joined (each on its first piece's id).

    The line ``keep_id`` (the annotated error sentence) always keeps its own id, even where
    MEDEC's split makes it look like the tail of the line before: the annotation names it.
    """
    ids: list[str] = []
    texts: list[str] = []
    for line in sentences.splitlines():
        sid, _, text = line.strip().partition(" ")
        ids.append(sid)
        texts.append(text)
    keep = {i for i, sid in enumerate(ids) if keep_id is not None and sid == str(keep_id)}
    return "\n".join(f"{ids[i]} {text}" for i, text in join_fragments(texts, keep_start=keep))


def _case(
    path: Path, row: dict[str, str], rid: str, annotation: MedecAnnotation | None
) -> Imported:
    text = row["Text"].strip()
    sentences = _joined(
        row.get("Sentences", "").replace("\r\n", "\n").strip(),
        annotation.error_sentence_id if annotation is not None else None,
    )
    sections = []
    if sentences:
        sections.append(Section(title=SENTENCES_TITLE, text=sentences))
    if annotation is not None:
        sections.append(Section(title=ANNOTATION_TITLE, text=annotation.model_dump_json()))
    case = Case(
        id=f"{SOURCE}:{rid}",
        source=make_source(SOURCE, rid, path),
        demographics=demographics_from_text(text),
        presentation=text,
        sections=sections,
    )
    return Imported(case=case)
