"""MediQ JSONL (``all_dev_good.jsonl`` and its siblings) to ``Case`` records.

One JSON object per line: ``id, question, context[] (sentences), options{A..D},
answer, answer_idx, facts[] ("1. ..."), patient{gender, age, ...}``. Each line
becomes one case:

* ``presentation``: the context sentences joined;
* ``facts``: the numbered facts without their numbers;
* ``demographics``: from ``patient`` (ages are free text: "21 years old",
  "3 months", "Newborn"; one that cannot be read is kept in ``description``);
* ``final_diagnosis``: the answer, only when the question asks for the most
  likely diagnosis itself (not its treatment or a test to confirm it);
* a "Source question" section with the question, the options and the answer,
  so that nothing of the MCQ is lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from behaviorsft.records import Case, Demographics, Section
from behaviorsft.sources._common import (
    Imported,
    error,
    error_from_validation,
    guarded,
    impossible_vitals,
    iter_jsonl,
    make_source,
    parse_age,
    parse_sex,
)

SOURCE = "mediq"

_FACT_NUMBER = re.compile(r"^\s*\d+\s*[.)]\s*")
# A question asks for the diagnosis itself when its own ask (the last
# sentence; lab tables may come first) mentions the diagnosis and nothing that
# makes it a question about something else (a test, a treatment, a risk factor).
_DIAGNOSIS_WORD = re.compile(r"\bdiagnosis\b", re.IGNORECASE)
_DIAGNOSIS_OF_WHICH = re.compile(r"\bdiagnosis of which of the following\b", re.IGNORECASE)
_LEAD_IN = re.compile(r"^(?:based on|given|considering|in light of)\b[^,]*,\s*", re.IGNORECASE)
_NOT_THE_DIAGNOSIS = re.compile(
    r"treat|therap|\btests?\b|step|confirm|risk|associated|characteristic|etiology|cause"
    r"|finding|management|prophyla|marked|criteri|except|consistent|represent|establish"
    r"|rule in|help|yield|method|mechanism|complication|prognos|drug|medication|investigat"
    r"|evaluat|sequel|gold standard|sensitive|screen|differential",
    re.IGNORECASE,
)


class MediqPatient(BaseModel):
    """The ``patient`` object of a MediQ line (only what is used; the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")
    gender: str | None = None
    age: str | int | float | None = None
    specialties: list[str] = Field(default_factory=list)


class MediqEntry(BaseModel):
    """One MediQ line, checked before it is mapped, so that a bad field is named."""

    model_config = ConfigDict(extra="ignore")
    id: int | str
    question: str = Field(min_length=1)
    context: list[str]
    options: dict[str, str] = Field(min_length=2)
    answer: str = Field(min_length=1)
    answer_idx: str | None = None
    facts: list[str] = Field(default_factory=list)
    explanation: str | None = ""
    patient: MediqPatient = Field(default_factory=MediqPatient)

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, v: int | str) -> int | str:
        if isinstance(v, str) and not v.strip():
            raise ValueError("must not be blank")
        return v


def is_diagnosis_question(question: str) -> bool:
    """True if the question asks for the (most likely) diagnosis itself.

    "Which of the following is the most likely diagnosis?" is one; "... the most
    appropriate treatment for the most likely diagnosis?" is not.
    """
    parts = [p for p in re.split(r"(?<=[.!?])\s+|\s*\|\s*", question.strip()) if p.strip()]
    ask = parts[-1] if parts else ""
    # "Based on these findings, ..." introduces the ask; it does not change it.
    ask = _LEAD_IN.sub("", ask)
    if _DIAGNOSIS_OF_WHICH.search(ask):
        return True
    return bool(_DIAGNOSIS_WORD.search(ask)) and not _NOT_THE_DIAGNOSIS.search(ask)


def read(path: Path) -> Iterator[Imported]:
    """Import every line of a MediQ JSONL file; a bad line is an error, the others import."""
    path = Path(path)
    seen: dict[str, int] = {}
    any_line = False
    for n, obj, problem in iter_jsonl(path):
        any_line = True
        if problem is not None:
            yield problem
            continue
        assert obj is not None
        try:
            entry = MediqEntry.model_validate(obj)
        except ValidationError as exc:
            yield error_from_validation(path, n, exc)
            continue
        rid = str(entry.id).strip()
        if rid in seen:
            yield error(path, n, "id", f"duplicate id {rid!r} (first on line {seen[rid]})")
            continue
        seen[rid] = n
        impossible = impossible_vitals(" ".join(entry.context))
        if impossible:  # a slip in the source ("102/98 mm Hg"): no record to build on
            yield error(path, n, "context", f"impossible vital sign(s): {', '.join(impossible)}")
            continue
        yield guarded(path, n, partial(_case, path, entry, rid))
    if not any_line:
        yield error(path, 0, "<file>", "file is empty")


def _case(path: Path, entry: MediqEntry, rid: str) -> Imported:
    age_raw = entry.patient.age
    age = parse_age(age_raw)
    description = ""
    if age is None and age_raw not in (None, ""):
        description = f"age as given: {age_raw}"
    options = "\n".join(f"{k}. {v}" for k, v in sorted(entry.options.items()))
    answer_label = entry.answer_idx or next(
        (k for k, v in entry.options.items() if v == entry.answer), ""
    )
    source_q = [f"Question: {entry.question.strip()}", "Options:", options]
    source_q.append(f"Answer: {answer_label + '. ' if answer_label else ''}{entry.answer.strip()}")
    if entry.explanation and entry.explanation.strip():
        source_q.append(f"Explanation: {entry.explanation.strip()}")
    if entry.patient.specialties:
        source_q.append("Specialties: " + ", ".join(entry.patient.specialties))
    facts = [_FACT_NUMBER.sub("", f).strip() for f in entry.facts]
    case = Case(
        id=f"{SOURCE}:{rid}",
        source=make_source(SOURCE, rid, path),
        demographics=Demographics(
            age_years=age, sex=parse_sex(entry.patient.gender), description=description
        ),
        presentation=" ".join(s.strip() for s in entry.context if s.strip()),
        sections=[Section(title="Source question", text="\n".join(source_q))],
        facts=[f for f in facts if f],
        final_diagnosis=entry.answer.strip() if is_diagnosis_question(entry.question) else None,
    )
    return Imported(case=case)
