"""Clinical linter, severity: care that matches the severity the record shows.

Rule (called from ``lint.py``; see docs/building.md, "Care that matches the severity
shown"):

``care-below-severity``  the record meets the trigger of a threshold item of its condition
                         (``sources/severity.py``, ``TRIGGERS``: NIV for pH <= 7.35 with
                         PaCO2 >= 45 in COPD, high-dependency care for an osmolality above
                         350 in HHS, alteplase within 4.5 h of a stroke's onset, ipratropium
                         and IV magnesium in acute severe asthma, ...) but the record leaves
                         it undone: the drug not given (or not by the route required), no
                         statement that it was done, the patient kept on the ward, or the
                         team still offering it as conditional ("escalate to NIV if acidosis
                         persists" after a day-0 gas that meets the criterion)

``review-below-severity``  a patient whose severity needs intensive, coronary or
                         high-dependency care (``TRIGGERS`` with a level: septic shock,
                         thyroid storm, adrenal crisis with hypotension, STEMI) is told
                         "we'll review progress daily" (a ward's cadence), or given a
                         physiotherapy assessment in the first days

``admitted-outpatient``    a condition treated from the emergency department without
                         admission (an afebrile uncomplicated cystitis) whose record has an
                         admission course: admission bloods, ward events (consult, medicines
                         reconciliation, physiotherapy) or a ward round

``statement-late``       what severity brings at once said after what it came before: IM
                         adrenaline "before the history was taken" said after the patient's
                         history, an antibiotic "not waiting for the lumbar puncture" or
                         life-threatening asthma's magnesium said after the first results
                         (``Trigger.at``: "arrival" or "orders")

``thrombolysis-on-anticoagulant``  a fibrinolytic (alteplase) given to a patient whose
                         regular medicines include an anticoagulant (a DOAC taken within
                         48 h, warfarin, a heparin: AHA/ASA 2019 contraindications)

A drug the patient's recorded allergy bars is not required (the record says why not).
Only records of a KB condition (synthetic cases) are checked; day-0 values count.
"""

from __future__ import annotations

import re
from typing import Any

from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.build.lint_common import kb_code as _condition
from behaviorsft.build.lint_common import num as _num
from behaviorsft.build.lint_values import onset_hours
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.severity import (
    NO_PHYSIO_LEVELS,
    WARD_REVIEW,
    Trigger,
    met,
    outpatient,
    placement,
    served,
)

# Timeline events of an admission (synthetic.course_events; the ward round).
_COURSE = ("lab", "consult", "reconciliation", "physiotherapy", "review")
_ADMISSION = re.compile(r"admission bloods|ward round|consult|reconciliation|physiotherapy", re.I)

RULES: dict[str, tuple[str, str]] = {
    "care-below-severity": (
        "error",
        "the record meets a threshold item's trigger but leaves it undone or conditional",
    ),
    "review-below-severity": (
        "error",
        "a patient needing a unit is reviewed daily or given a physiotherapy plan",
    ),
    "admitted-outpatient": (
        "error",
        "a condition treated from the emergency department has an admission course",
    ),
    "statement-late": (
        "error",
        "an immediate treatment said after the history or results it came before",
    ),
    "thrombolysis-on-anticoagulant": (
        "error",
        "a fibrinolytic given with an anticoagulant among the regular medicines",
    ),
}

LAY_ROLES = ("patient", "family member")


def case_values(kb: KnowledgeBase, case: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    """Day-0 values of a raw case by KB id (with ``age`` and ``onset_hours``) and its signs
    (examination and imaging findings, reported symptoms)."""
    by_name = {lab.name.lower(): lid for lid, lab in kb.labs.items()}
    values: dict[str, float] = {}
    signs: list[str] = []
    signs += [
        str(f)[len("Reports ") :] for f in case.get("facts") or [] if str(f).startswith("Reports ")
    ]
    for f in case.get("findings") or []:
        if f.get("kind") in ("exam", "imaging") and f.get("value_text"):
            signs.append(str(f["value_text"]))
        value, lid = _num(f.get("value")), by_name.get(str(f.get("name", "")).lower())
        if value is not None and lid is not None and _num(f.get("day")) in (0, None):
            values.setdefault(lid, value)
    age = _num((case.get("demographics") or {}).get("age_years"))
    if age is not None:
        values["age"] = age
    hours = onset_hours(case)
    if hours is not None:
        values["onset_hours"] = hours
    return values, signs


def _allergic_to(kb: KnowledgeBase, case: dict[str, Any], drug_id: str) -> bool:
    substances = {str(a.get("substance", "")).lower() for a in case.get("allergies") or []}
    groups = {
        gid for gid, g in kb.allergy_groups.items() if g.name.split(" (")[0].lower() in substances
    }
    return bool(groups & set(kb.drugs[drug_id].allergy_groups))


def _why(t: Trigger, values: dict[str, float]) -> str:
    clauses = [f"{lab} {values[lab]:g} {op} {v:g}" for lab, op, v in t.when if lab in values]
    return ", ".join(clauses + ([f"exam: {t.sign}"] if t.sign else []))


def lint_case(kb: KnowledgeBase, where: _Adds, case: dict[str, Any]) -> dict[str, Trigger]:
    """Drugs and routes a met item requires against the medicines; returns the met items
    (item -> the row that holds) for :func:`lint_conversation`."""
    _thrombolysis(kb, where, case)
    cond = _condition(case)
    if cond is None:
        return {}
    if outpatient(cond):
        for e in case.get("timeline") or []:
            said = f"{e.get('kind', '')}: {e.get('text', '')}"
            if e.get("kind") in _COURSE and _ADMISSION.search(said):
                where.add(
                    "admitted-outpatient",
                    f"{cond} is treated from the emergency department, but the record "
                    f"has '{said[:80]}'",
                )
    values, signs = case_values(kb, case)
    due = met(cond, values, signs)
    diagnosis = str(case.get("final_diagnosis") or "")
    meds = list(case.get("medications") or [])
    for item, t in due.items():
        if t.drug is not None and t.drug in kb.drugs:
            name = kb.drugs[t.drug].name.lower()
            given = [m for m in meds if str(m.get("name", "")).lower() == name]
            if served(t, [str(m.get("drug_class") or "") for m in meds]):
                continue  # another drug of the plan does it (any antibiotic)
            if not given and not _allergic_to(kb, case, t.drug):
                where.add(
                    "care-below-severity",
                    f"{item}: the record meets {_why(t, values)} but {name} is not given",
                )
            elif t.route and given and all(m.get("route") != t.route for m in given):
                where.add(
                    "care-below-severity",
                    f"{item}: the record meets {_why(t, values)} but {name} is not given {t.route}",
                )
        elif t.route == "IV":
            oral = [
                str(m.get("name"))
                for m in meds
                if m.get("route") == "PO" and str(m.get("indication") or "") == diagnosis
            ]
            if oral:
                where.add(
                    "care-below-severity",
                    f"{item}: the record meets {_why(t, values)} but "
                    f"{', '.join(oral)} is planned by mouth",
                )
    return due


def _thrombolysis(kb: KnowledgeBase, where: _Adds, case: dict[str, Any]) -> None:
    """A fibrinolytic with a regular anticoagulant (history.anticoagulant) on the list."""
    from behaviorsft.sources.history import anticoagulant

    diagnosis = str(case.get("final_diagnosis") or "")
    meds = list(case.get("medications") or [])
    lysis = [
        str(m.get("name"))
        for m in meds
        if "fibrinolytic" in str(m.get("drug_class") or "").lower()
        or str(m.get("name", "")).lower() in ("alteplase", "tenecteplase")
    ]
    if not lysis:
        return
    regular = [
        str(m.get("name"))
        for m in meds
        if str(m.get("indication") or "") != diagnosis
        and anticoagulant(str(m.get("drug_class") or ""))
    ]
    if regular:
        where.add(
            "thrombolysis-on-anticoagulant",
            f"{lysis[0]} given to a patient taking {', '.join(regular)} (an anticoagulant "
            "bars thrombolysis)",
        )


def lint_conversation(
    kb: KnowledgeBase, where: _Adds, conv: dict[str, Any], due: dict[str, Trigger] | None
) -> None:
    """Each met item stated as done, at its level of care, and never left conditional; an
    immediate one said before what it came before (``statement-late``)."""
    if not due:
        return
    history = results = False  # the patient has spoken; a result beyond triage is shown
    for x in conv.get("turns") or []:
        text = str(x.get("text", ""))
        at = placement(text) if x.get("role") not in LAY_ROLES else "plan"
        if (at == "arrival" and history) or (at == "orders" and results):
            where.add(
                "statement-late",
                f"said after the {'history' if at == 'arrival' else 'first results'} it came "
                f"before: '{text[:90]}'",
                x.get("index"),
            )
        history = history or x.get("role") == "patient"
        results = results or any(
            str(a.get("title") or "") != "Triage observations" for a in x.get("attachments") or []
        )
    turns = [t for t in conv.get("turns") or [] if str(t.get("role", "")) not in LAY_ROLES]
    units = [t.level for t in due.values() if t.level in NO_PHYSIO_LEVELS]
    for x in turns if units else ():
        text = str(x.get("text", ""))
        physio = str(x.get("role", "")) == "physiotherapist"
        if WARD_REVIEW in text or physio:
            where.add(
                "review-below-severity",
                f"needs the {units[0]}, but '{text[:90]}'",
                x.get("index"),
            )
    for item, t in due.items():
        if t.pending is not None:
            for turn in turns:
                text = str(turn.get("text", ""))
                if re.search(t.pending, text, re.I):
                    where.add(
                        "care-below-severity",
                        f"{item}: the record meets its trigger but the team leaves it "
                        f"conditional: '{text[:90]}'",
                        turn.get("index"),
                    )
        if t.done is not None and not any(
            re.search(t.done, str(x.get("text", "")), re.I) for x in turns
        ):
            where.add(
                "care-below-severity",
                f"{item}: the record meets its trigger but never states it done",
            )
        if t.level is not None:
            unit = re.compile(rf"\b(?:in|to) (?:a|the) {re.escape(t.level)}\b", re.I)
            placed = [
                x
                for x in turns
                if unit.search(str(x.get("text", "")))
                # "manage in a high-dependency unit if ..." places no one
                and not (t.pending and re.search(t.pending, str(x.get("text", "")), re.I))
            ]
            if not placed:
                where.add(
                    "care-below-severity",
                    f"{item}: the record meets its trigger but no turn places the patient in "
                    f"the {t.level}",
                )
            for x in turns:
                if re.search(r"\bon the ward\b", str(x.get("text", "")), re.I):
                    where.add(
                        "care-below-severity",
                        f"{item}: needs the {t.level}, but the patient is on the ward: "
                        f"'{str(x.get('text', ''))[:90]}'",
                        x.get("index"),
                    )
