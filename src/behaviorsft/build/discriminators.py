"""What the attending's differential discussion may cite: a finding the record shows that
argues against a differential, and a criterion for reconsidering one that the record does not
already meet (docs/building.md, "Differential reasoning that cites discriminating findings").

``against_reason`` tries the KB's ``argues_against`` and then each of its ``also_against``
findings, each cut to what the record shows (``coherence.agreeing_reason``); ``reconsider_with``
keeps of a differential's ``favoured_by`` only the findings the record does not show yet
("I would reconsider upper GI bleeding with haemodynamic instability" is not said of a
patient with a heart rate of 120 and a systolic pressure of 97). ``met_findings`` is the test
both the generator and the linter (``reconsider-already-met``) apply.
"""

from __future__ import annotations

import re
from typing import Any

from behaviorsft.sources.kb import Differential, KnowledgeBase

# Findings of a ``favoured_by`` read off the vital signs (the lint_plan TERMS hold single
# words; these are the compound ones a criterion names): label -> [(row, op, threshold)],
# any one of which meets it.
_VITAL_TERMS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "haemodynamic instability": (("heart_rate", ">=", 110.0), ("sbp", "<", 100.0)),
}

# an absence a criterion names ("no pyuria or fever") is not taken as met from a mention
_ABSENCE = re.compile(r"^(?:no|not|without|normal)\b", re.I)


def against_reason(kb: KnowledgeBase, shown: object, diff: Differential) -> str | None:
    """The finding the record ``shown`` gives that argues against ``diff``: its
    ``argues_against`` cut to what is shown, else the first of its ``also_against`` the
    record shows; None when the record shows none of them."""
    from behaviorsft.build.coherence import agreeing_reason

    for reason in (diff.argues_against, *diff.also_against):
        said = agreeing_reason(kb, shown, reason)
        if said is not None:
            return said
    return None


def _vital_met(shown: object, clause: str) -> bool | None:
    """Whether the vital signs meet ``clause`` (None: not a vital-sign finding)."""
    terms = _VITAL_TERMS.get(clause.lower().strip())
    if terms is None:
        return None
    rows: dict[str, list[tuple[Any, ...]]] = getattr(shown, "rows", {})
    for key, op, threshold in terms:
        v = next((r[0] for r in rows.get(key, []) if r[0] is not None), None)
        if v is None:
            continue
        if v >= threshold if op == ">=" else v > threshold if op == ">" else v < threshold:
            return True
    return False


def met_findings(kb: KnowledgeBase, shown: Any, criterion: str) -> list[str]:
    """The findings of ``criterion`` (a ``favoured_by``, or what the attending said would
    make the team reconsider) that the record ``shown`` already gives."""
    from behaviorsft.build.lint_plan import clause_supported, split_clauses

    met = []
    for clause in split_clauses(criterion):
        if _ABSENCE.match(clause):
            continue
        vital = _vital_met(shown, clause)
        if vital if vital is not None else clause_supported(kb, shown, clause):
            met.append(clause)
    return met


def reconsider_with(kb: KnowledgeBase, shown: Any, diff: Differential) -> str | None:
    """``diff.favoured_by`` less the findings the record already shows ("a BUN:creatinine
    ratio above 30 or melaena" where the patient is already unstable), or None when it shows
    all of them: then the team has no criterion left to name and the question is not asked."""
    from behaviorsft.build.lint_plan import join_clauses, split_clauses

    clauses = split_clauses(diff.favoured_by)
    met = met_findings(kb, shown, diff.favoured_by)
    if not met:
        return diff.favoured_by
    left = [c for c in clauses if c not in met]
    return join_clauses(left) if left else None


def settled_before(kb: KnowledgeBase, shown: Any, cond_id: str) -> str | None:
    """What the record ``shown`` (the turns before a study's report) already gives that
    makes ``cond_id``'s diagnosis on its own: one of its decisive results (a positive
    C. difficile test) or a result its knowledge base gives only as positive (a SARS-CoV-2
    NAAT "detected"); None when nothing shown settles it. reasoning_differential_evolution
    then asks nothing about the report, which changes no ranking."""
    from behaviorsft.build.coherence import decisive_result

    cond = kb.conditions[cond_id]
    said = decisive_result(kb, shown, cond)
    if said is not None:
        return said
    rows: dict[str, list[tuple[Any, ...]]] = getattr(shown, "rows", {})
    for lab_id, spec in cond.labs.items():
        lab = kb.labs.get(lab_id)
        if not spec.values or lab is None or lab.kind != "qualitative":
            continue
        if any(v in lab.normal_values for v in spec.values):
            continue  # (a smear given as positive or negative settles nothing)
        for row in rows.get(lab_id, []):
            if row[1] in spec.values:
                return f"{lab.name} {row[1]}"
    return None
