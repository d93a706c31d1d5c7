"""Clinical linter, surgical and gastrointestinal coherence (issue 16, review round 7).

Rules (called from ``lint.py``, one hook per conversation; see docs/building.md, "Surgical
and gastrointestinal coherence"):

``hernia-unexamined``     a condition whose examination must record the hernial orifices
                          (small-bowel obstruction) examined without them, or a hernia in
                          the history that the examination or the team's reasoning never
                          mentions
``early-claim-late``      an early or urgent consultation recorded as done while the
                          consult review is dated after the admission day
``physio-before-review``  a nil-by-mouth surgical patient assessed by physiotherapy before
                          the surgical review
``ppi-bolus-only``        an ulcer treated at endoscopy with only a PPI bolus planned (no
                          infusion or twice-daily high dose for 72 h anywhere in the record)
``done-without-result``   a test with treatment if positive ("Helicobacter pylori testing
                          and eradication") recorded as done with no result shown
``reconsider-unframed``   the answer to "What would make you reconsider X?" said as bare
                          findings (read alone, as an excerpt may show it, it states
                          findings this patient does not have)

Only records of a KB condition (synthetic cases) are checked.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.build.lint_record import kb_condition
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.surgical import (
    EARLY_CONSULT,
    HERNIA,
    NIL_BY_MOUTH,
    TEST_THEN_TREAT,
    examines_orifices,
)

RULES: dict[str, tuple[str, str]] = {
    "hernia-unexamined": (
        "error",
        "hernial orifices not examined, or a known hernia missing from exam or reasoning",
    ),
    "early-claim-late": ("error", "an early consultation recorded as done, dated a later day"),
    "physio-before-review": (
        "error",
        "physiotherapy before the surgical review of a nil-by-mouth patient",
    ),
    "ppi-bolus-only": ("error", "only a PPI bolus after endoscopic therapy of an ulcer"),
    "done-without-result": ("error", "a test-and-treat item recorded as done without a result"),
    "reconsider-unframed": ("error", "what would change the diagnosis said as bare findings"),
}

_EXAM = re.compile(r"^(?:On examination:|Examination shows)", re.I)
_DATED = re.compile(r"^Day (?P<day>\d+)(?:, (?P<clock>\d\d:\d\d))?: (?P<what>.*)$")
_DONE = re.compile(r"^(?:Documented|Done and recorded):\s*(?P<item>.+?)\.?$")
_REASONING_ROLES = ("attending", "consultant", "surgeon", "surgery")
_ENDOSCOPIC_THERAPY = re.compile(
    r"\b(?:treated with|clips?\b|adrenaline injection|thermal coagulation|haemostasis)", re.I
)
_PPI = re.compile(r"\b(?:pantoprazole|omeprazole|esomeprazole|lansoprazole|PPI)\b", re.I)
_PPI_CONTINUED = re.compile(
    r"\b(?:\d+ mg/h|infusion|twice daily|q12h|b\.?d\.?)\b|\b(?:for|over) 72 h\b", re.I
)
_RESULT = re.compile(r"\b(?:positive|negative|detected|not detected)\b", re.I)
_IF_RESULT = re.compile(r"\bif (?:the result is |it is |it's )?$", re.I)
_ASKS_RECONSIDER = re.compile(r"\bwhat would make you reconsider\b", re.I)
_FRAMED = re.compile(r"\b(?:would|I'd|if|reconsider|favour|suggest)\b", re.I)


def _shows_result(text: str) -> bool:
    """Whether ``text`` gives a result ("stool antigen positive"), not a condition on one
    ("eradication only if the result is positive")."""
    return any(not _IF_RESULT.search(text[: m.start()]) for m in _RESULT.finditer(text))


def _when(text: str) -> tuple[int, str] | None:
    m = _DATED.match(text)
    return (int(m["day"]), m["clock"] or "") if m is not None else None


def lint_conversation(
    kb: KnowledgeBase, where: _Adds, conv: dict[str, Any], case: dict[str, Any] | None
) -> None:
    """The turns of one synthetic conversation."""
    cond = kb_condition(kb, case)
    if cond is None:
        return
    turns = [
        (int(t.get("index", i)), str(t.get("role", "")).lower(), str(t.get("text", "")))
        for i, t in enumerate(conv.get("turns") or [])
    ]
    history = [str(f) for f in (case or {}).get("facts") or [] if str(f).startswith("History:")]
    exam = [(i, text) for i, role, text in turns if _EXAM.match(text)]
    # hernial orifices, and a known hernia in the examination and the reasoning
    if examines_orifices(cond) and exam:
        i, text = exam[0]
        if not re.search(r"\bhernial orifices\b|\bhernia\b", text, re.I):
            where.add(
                "hernia-unexamined", f"examination without the hernial orifices: '{text[:90]}'", i
            )
    if any(HERNIA.search(h) for h in history) and examines_orifices(cond):
        if exam and not any(HERNIA.search(t) for _, t in exam):
            where.add(
                "hernia-unexamined", "a hernia in the history, none in the examination", exam[0][0]
            )
        reasoning = [t for _, role, t in turns if any(r in role for r in _REASONING_ROLES)]
        if not any(HERNIA.search(t) for t in reasoning):
            where.add("hernia-unexamined", "a hernia in the history the team never weighs")
    # the course: the consult review and the physiotherapy assessment
    consult = next(
        ((i, role, _when(t)) for i, role, t in turns if "consult review" in t and _when(t)), None
    )
    physio = next(
        ((i, _when(t)) for i, role, t in turns if role == "physiotherapist" and _when(t)), None
    )
    for i, _, text in turns:
        m = _DONE.match(text)
        if m is None:
            continue
        item = m["item"]
        if consult is not None and EARLY_CONSULT.search(item) and consult[2] is not None:
            day = consult[2][0]
            if day > 0:
                where.add(
                    "early-claim-late",
                    f"'{item}' recorded as done; the consult review is on day {day}",
                    i,
                )
        t = TEST_THEN_TREAT.match(item)
        if t is not None and not any(
            t["test"].split()[0].lower() in x.lower() and _shows_result(x) for _, _, x in turns
        ):
            where.add("done-without-result", f"'{item}' recorded as done; no result shown", i)
    nil_by_mouth = any(NIL_BY_MOUTH.search(t) for _, role, t in turns if t.startswith("Plan:"))
    if (
        nil_by_mouth
        and consult is not None
        and physio is not None
        and "surg" in consult[1]
        and consult[2] is not None
        and physio[1] is not None
        and physio[1] < consult[2]
    ):
        where.add(
            "physio-before-review",
            f"physiotherapy on day {physio[1][0]} {physio[1][1]} before the surgical review "
            f"(day {consult[2][0]} {consult[2][1]}) of a nil-by-mouth patient",
            physio[0],
        )
    # high-dose PPI after endoscopic therapy
    treated = any(
        ("endoscop" in role or "endoscop" in t.lower()) and _ENDOSCOPIC_THERAPY.search(t)
        for _, role, t in turns
    )
    plans = [(i, t) for i, role, t in turns if t.startswith("Plan:") or "Plan:" in t[:40]]
    continued = any(_PPI.search(t) and _PPI_CONTINUED.search(t) for _, _, t in turns)
    if treated and not continued and any(_PPI.search(t) for _, t in plans):
        i = next(i for i, t in plans if _PPI.search(t))
        where.add("ppi-bolus-only", "endoscopic therapy with only a PPI bolus planned", i)
    # the answer to "what would make you reconsider X?"
    for (_, _, asked), (i, _, text) in itertools.pairwise(turns):
        if _ASKS_RECONSIDER.search(asked) and not _FRAMED.search(text):
            where.add("reconsider-unframed", f"said as findings: '{text[:90]}'", i)
