"""Clinical linter, doses for this patient: a dose right in a textbook, wrong for the patient.

Rules (called from ``lint.py``; see docs/building.md, "Doses fit the patient's weight, age
and kidneys"; the generator's side is ``sources/dosing.py``):

``dose-weight-band``  a weight-banded plan drug (pyrazinamide, ethambutol, rifampicin,
                      isoniazid) at a dose outside the band of the weight the triage turn
                      records, or written per kilogram past its cap
``dose-criteria``     a plan drug at its full dose while the label's reduction criteria
                      hold (apixaban 5 mg q12h for AF with two of age >= 80 y, weight
                      <= 60 kg, creatinine >= 1.5 mg/dL)
``exam-weight``       a wasted habitus (cachexia, emaciated) on examination in a patient
                      the triage turn weighs above 70 kg, or obesity in the history of one
                      too light for it (under 80 kg a woman, 90 kg a man)

Only records of a KB condition (synthetic cases) are checked for the doses; the habitus
rule reads every record.
"""

from __future__ import annotations

import re
from typing import Any

from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.build.lint_common import num as _num
from behaviorsft.build.lint_record import kb_condition
from behaviorsft.sources import dosing, prescribing
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.patient import WASTED_ABOVE, obesity_unfit, wasted

RULES: dict[str, tuple[str, str]] = {
    "dose-weight-band": ("error", "a weight-banded drug outside the patient's weight band"),
    "dose-criteria": ("error", "a full dose while the label's reduction criteria hold"),
    "exam-weight": ("error", "a wasted habitus above 70 kg, or obesity at a light weight"),
}

# "weight 92 kg" as the triage turn says it.
_WEIGHT = re.compile(r"\bweight (\d+(?:\.\d+)?) kg\b", re.I)


def recorded_weight(texts: list[tuple[int, str]]) -> tuple[int, float] | None:
    """The first weight the turns record (turn index, kg), or None."""
    for idx, text in texts:
        m = _WEIGHT.search(text)
        if m is not None:
            return idx, float(m[1])
    return None


def _turn_naming(texts: list[tuple[int, str]], name: str) -> int | None:
    short = name.split(" (")[0].lower()
    return next((i for i, t in texts if short in t.lower()), None)


def lint_conversation(
    kb: KnowledgeBase, where: _Adds, conv: dict[str, Any], case: dict[str, Any] | None
) -> None:
    """The doses and the habitus of one conversation, against the weight its triage turn
    records (and its case's age, creatinine and plan)."""
    turns = conv.get("turns") or []
    texts = [(int(t.get("index", i)), str(t.get("text", ""))) for i, t in enumerate(turns)]
    got = recorded_weight(texts)
    if got is None:
        return
    at, kg = got
    if kg > WASTED_ABOVE:
        for idx, text in texts:
            if idx != at and (word := wasted(text)) is not None:
                where.add("exam-weight", f"'{word}' in a patient weighed at {kg:g} kg", idx)
    cond = kb_condition(kb, case)
    if cond is None or case is None:
        return
    demo = case.get("demographics") or {}
    for f in case.get("facts") or []:
        if str(f).startswith("History: ") and obesity_unfit(str(f), demo.get("sex"), kg):
            where.add("exam-weight", f"'{str(f)[9:].rstrip('.')}' at {kg:g} kg", at)
    age = _num(demo.get("age_years"))
    creat = next(
        (
            _num(f.get("value"))
            for f in case.get("findings") or []
            if str(f.get("name", "")).lower() == "creatinine" and f.get("day") == 0
        ),
        None,
    )
    for m in case.get("medications") or []:
        if m.get("indication") != cond.name:
            continue  # the plan's medicines (regular ones are the patient's own)
        name = str(m.get("name") or "")
        drug = prescribing._drug_named(kb, name)
        if drug is None:
            continue
        did = drug.id
        amount, unit = _num(m.get("dose_value")), str(m.get("dose_unit") or "")
        why = dosing.band_problem(did, amount, unit, kg)
        if why is not None:
            where.add("dose-weight-band", f"{name} {why}", _turn_naming(texts, name))
        why = dosing.criteria_problem(
            did, cond.id, amount, unit, str(m.get("frequency") or ""), age, kg, creat
        )
        if why is not None:
            where.add("dose-criteria", f"{name} {why}", _turn_naming(texts, name))
