"""What the attending's differential discussion may cite: a finding the record shows that
argues against a differential, and a criterion for reconsidering one that the record does not
already meet (docs/building.md, "Differential reasoning that cites discriminating findings").

``against_reason`` tries the KB's ``argues_against`` and then each of its ``also_against``
findings, each cut to what the record shows (``coherence.agreeing_reason``); ``reconsider_with``
keeps of a differential's ``favoured_by`` only the findings the record does not show yet
("I would reconsider upper GI bleeding with haemodynamic instability" is not said of a
patient with a heart rate of 120 and a systolic pressure of 97). ``met_findings`` is the test
both the generator and the linter (``reconsider-already-met``) apply.

The working diagnosis: ``discriminating_result`` is what it "fits best given" where no study
or decisive result makes it (KB ``fits_best_by``: known COPD with purulent sputum, not the
breathlessness its differentials share; rule ``reason-undiscriminating``), and
``cause_sentence`` names the cause the record gives after a diagnosis that is named after its
own result ("hypokalaemia fits best given potassium below 3.5 mmol/L. The likely cause here is
laxative misuse."; ``circular``, rule ``reason-circular``). ``settled_before`` tells
reasoning_differential_evolution that a result before the report already made the diagnosis.
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
    from behaviorsft.build.coherence import only_negated
    from behaviorsft.build.lint_plan import clause_supported, split_clauses

    met = []
    sentences: list[str] = getattr(shown, "sentences", [])
    for clause in split_clauses(criterion):
        if _ABSENCE.match(clause):
            continue
        vital = _vital_met(shown, clause)
        if vital is None:
            # named only to deny it ("no orthostatic hypotension", "without hydronephrosis")
            vital = clause_supported(kb, shown, clause) and not only_negated(sentences, clause)
        if vital:
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
    if not left:
        return None
    said = join_clauses(left)
    # (only an absence left: "with no fever or flank pain", not "with without ...")
    return "no " + said[len("without ") :] if said.startswith("without ") else said


# a test that identifies the organism or its toxin (a NAAT, a PCR, an antigen or toxin test)
_IDENTIFIES = re.compile(r"\b(?:NAAT|PCR|antigen|toxin)\b", re.I)


def settled_before(kb: KnowledgeBase, shown: Any, cond_id: str) -> str | None:
    """What the record ``shown`` (the turns before a study's report) already gives that
    makes ``cond_id``'s diagnosis on its own: one of its decisive results (a positive
    C. difficile test) or a test identifying its organism that its knowledge base gives only
    as positive (a SARS-CoV-2 NAAT "detected"); None when nothing shown settles it.
    reasoning_differential_evolution then asks nothing about the report, which changes no
    ranking."""
    from behaviorsft.build.coherence import decisive_result

    cond = kb.conditions[cond_id]
    said = decisive_result(kb, shown, cond)
    if said is not None:
        return said
    rows: dict[str, list[tuple[Any, ...]]] = getattr(shown, "rows", {})
    for lab_id, spec in cond.labs.items():
        lab = kb.labs.get(lab_id)
        if not spec.values or lab is None or not _IDENTIFIES.search(lab.name):
            continue
        if any(v in lab.normal_values for v in spec.values):
            continue  # (a smear given as positive or negative settles nothing)
        for row in rows.get(lab_id, []):
            if row[1] in spec.values:
                return f"{lab.name} {row[1]}"
    return None


# A diagnosis that names a result's derangement, and the words of that result: "hypokalaemia
# fits best given potassium below 3.5 mmol/L" restates the diagnosis, not why it arose.
_DEFINED_BY = (
    (re.compile(r"kal(?:a)?emia", re.I), re.compile(r"potassium|kal(?:a)?emia", re.I)),
    (re.compile(r"glyc(?:a)?emia", re.I), re.compile(r"glucose|glyc(?:a)?emia", re.I)),
    (re.compile(r"natr(?:a)?emia", re.I), re.compile(r"\bsodium\b|natr(?:a)?emia", re.I)),
    (re.compile(r"calc(?:a)?emia", re.I), re.compile(r"calcium|calc(?:a)?emia", re.I)),
    (re.compile(r"magnes(?:a)?emia", re.I), re.compile(r"magnesium|magnes(?:a)?emia", re.I)),
)
# the sentence that names the cause the record gives (``cause_sentence``)
CAUSE_SAID = re.compile(r"\bThe likely cause here is [^.]+\.")
_WORD = re.compile(r"[a-z][a-z0-9-]{2,}")  # ("ace" of ACE inhibitor)
_VAGUE = frozenset(
    [
        "and",
        "the",
        "for",
        "with",
        "other",
        "especially",
        "therapy",
        "disease",
        "intake",
        "chronic",
        "inhibitor",
        "inhibitors",
        "antagonist",
        "antagonists",
        "agent",
        "agents",
        "drug",
        "drugs",
        "high-dose",
    ]
)


def circular(dx: str, reason: str) -> bool:
    """Whether "``dx`` fits best given ``reason``" cites only the result the diagnosis is
    named after (the potassium of hypokalaemia, the glucose of hypoglycaemia)."""
    from behaviorsft.build.lint_plan import split_clauses

    clauses = split_clauses(reason)
    return any(
        names.search(dx) is not None and all(result.search(c) for c in clauses)
        for names, result in _DEFINED_BY
    )


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _VAGUE}


def causes_shown(cond: Any, case: Any, said: str) -> list[str]:
    """The causes of ``cond`` (its KB ``risk_factors``) this patient has and the record
    ``said`` gives: a history item ("laxative misuse") or a medicine taken before
    admission ("lisinopril", an ACE inhibitor), in the KB's order."""
    low = said.lower()
    history = [f[len("History: ") : -1] for f in case.facts if f.startswith("History: ")]
    home = [m for m in case.medications if m.indication != cond.name]
    out: list[str] = []
    for factor in cond.risk_factors:
        want = _words(factor)
        for m in home:  # (a medicine before a history item it is given with: "sulfonylurea
            # therapy, especially with chronic kidney disease")
            kind = f"{m.drug_class or ''} {m.name}"
            name = m.name.lower()
            if want & _words(kind) and name in low and name not in out:
                out.append(name)
        for item in history:
            # said in the patient's words ("I take a lot of laxatives" for laxative misuse)
            words = _words(item)
            if want & words and any(w[:6] in low for w in words) and item.lower() not in out:
                out.append(item.lower())
    return out


def cause_sentence(cond: Any, case: Any, said: str, fits: str) -> str | None:
    """The sentence naming the cause after a circular "fits best" (``fits``): "The likely
    cause here is laxative misuse."; None when ``fits`` is not circular or the record
    gives no cause."""
    from behaviorsft.build.lint_plan import cited_reasons

    if not any(v == "fits best" and circular(dx, r) for dx, v, r in cited_reasons(fits)):
        return None
    causes = causes_shown(cond, case, said)[:2]
    if not causes:
        return None
    return f"The likely cause here is {' and '.join(causes)}."


def discriminating_result(kb: KnowledgeBase, shown: Any, cond: Any) -> str | None:
    """The first of ``cond``'s ``fits_best_by`` findings the record ``shown`` gives (cut as
    ``coherence.agreeing_reason`` cuts a reason), or None: what the working diagnosis "fits
    best given" where no study or decisive result makes it."""
    from behaviorsft.build.coherence import agreeing_reason

    for finding in cond.fits_best_by:
        said = agreeing_reason(kb, shown, finding)
        if said is not None:
            return said
    return None
