"""Clinical linter, planted orders: every new order of explicit_error_correction has a reason.

Rules (called from ``lint.py``; see docs/building.md, "Errors a clinician could make"):

``order-no-indication``     a new order of an explicit_error_correction item or control
                            ("New order: ... Indication: ...") on a synthetic case states no
                            indication, or one the case record does not give: the working
                            diagnosis (or the pneumonia its imaging shows, for the
                            antibacterial of a hyperosmolar state), or a ward indication
                            this patient has (VTE prophylaxis with no anticoagulant, no
                            bleed and a risk, age or the illness; a pain the patient
                            reported; gastric protection on dual antiplatelet therapy; an
                            ACE inhibitor after an infarction or in heart failure). An
                            order with no reason ("lisinopril in thyroid storm", IV
                            vancomycin for improving cellulitis) is an error nobody
                            makes, and the odd one out among the items.

``query-as-ordered``        a query option of such an item proposing the dose or schedule
                            the order already has ("the usual schedule is once daily", or
                            "q24h", for an order once daily): ruled out by reading, not by
                            knowing the drug.

Only the case record is read (conditions, medications, facts, findings), once per case
with such an item; the tasks are read as they come.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from behaviorsft.build.lint_common import KB_CODES as _KB_CODES
from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.sources.planted_orders import (
    ACE_INHIBITOR_FOR,
    GASTRIC_PROTECTION,
    NO_VTE_PROPHYLAXIS,
    VTE_AT_ANY_AGE,
    VTE_PROPHYLAXIS,
)

RULES: dict[str, tuple[str, str]] = {
    "order-no-indication": ("error", "a planted order states no indication the record gives"),
    "query-as-ordered": (
        "error",
        "a dose or schedule query proposing the dose or schedule the order already has",
    ),
}
# The query options of explicit_error_correction (build/tasks/errors.py).
_QUERY_DOSE = re.compile(r"^Query the ordered dose: the usual dose is (?P<v>.+)$")
_QUERY_FREQ = re.compile(r"^Query the ordered frequency: the usual schedule is (?P<v>.+)$")


def query_as_ordered(order: str, options: Iterable[str]) -> list[str]:
    """The query options of ``options`` that propose what ``order`` already says: a "usual
    dose" equal to the dose ordered, or a "usual schedule" equal to the schedule ordered
    (wrong by reading alone, whatever the drug)."""
    from behaviorsft.build.tasks.errors import SAME_SCHEDULE

    padded = f" {order.strip().rstrip('.')} "
    out = []
    for text in options:
        m = _QUERY_DOSE.match(text) or _QUERY_FREQ.match(text)
        if m is None:
            continue
        said = [m["v"], SAME_SCHEDULE.get(m["v"])] if m.re is _QUERY_FREQ else [m["v"]]
        if any(v is not None and f" {v} " in padded for v in said):
            out.append(text)
    return out


_TASK = "explicit_error_correction"
_ORDER = re.compile(r"New order: (?P<order>.*?)(?:\. Indication: (?P<why>.*?))?\.?$")
_ANTITHROMBOTIC = ("heparin", "anticoagulant", "factor xa", "vitamin k")


def order_indication(excerpt: str) -> tuple[str, str | None] | None:
    """``(order, indication)`` of a "New order: ..." excerpt (indication None when the order
    states none), or None when the excerpt is no new order."""
    m = _ORDER.search(excerpt)
    if m is None:
        return None
    return m["order"], m["why"]


def _kb_condition(case: dict[str, Any]) -> tuple[str, str] | None:
    for c in case.get("conditions") or []:
        if c.get("code_system") == _KB_CODES and c.get("code") and c.get("name"):
            return str(c["code"]), str(c["name"])
    return None


def indication_problem(case: dict[str, Any], indication: str | None) -> str | None:
    """Why ``indication`` is not one the case record gives, or None when it is."""
    if indication is None:
        return "the order states no indication"
    kb = _kb_condition(case)
    if kb is None:
        return None  # not a synthetic case: nothing to check against
    cid, diagnosis = kb
    classes = [str(m.get("drug_class") or "").lower() for m in case.get("medications") or []]
    if indication == diagnosis:
        return None
    if indication.startswith("Pneumonia precipitating"):
        shown = " ".join(str(f.get("value_text") or "").lower() for f in case.get("findings") or [])
        if "pneumonia" in shown or "consolidation" in shown:
            return None
        return "a precipitating pneumonia the record never shows"
    if indication == VTE_PROPHYLAXIS:
        if cid in NO_VTE_PROPHYLAXIS:
            return f"VTE prophylaxis in {diagnosis}"
        if any(a in c for c in classes for a in _ANTITHROMBOTIC):
            return "VTE prophylaxis in a patient already anticoagulated"
        age = (case.get("demographics") or {}).get("age_years")
        if cid not in VTE_AT_ANY_AGE and age is not None and age < 60:
            return f"VTE prophylaxis at {age:g} in {diagnosis}, with no risk to call for it"
        return None
    if indication.startswith("Pain (") and indication.endswith(")"):
        reported = {
            f[len("Reports ") : -1] for f in case.get("facts") or [] if f.startswith("Reports ")
        }
        if indication[len("Pain (") : -1] in reported:
            return None
        return f"'{indication}': a pain the patient never reported"
    if indication == GASTRIC_PROTECTION:
        if any("p2y12" in c for c in classes) and any("antiplatelet" in c for c in classes):
            return None
        return "gastric protection with no dual antiplatelet therapy"
    if indication == ACE_INHIBITOR_FOR.get(cid):
        return None
    return f"'{indication}' is neither the working diagnosis ({diagnosis}) nor one the record gives"


def lint_tasks(
    cases: Iterable[tuple[int, dict[str, Any]]],
    tasks: Iterable[tuple[int, dict[str, Any]]],
    where_of: Callable[[int, str], _Adds],
) -> None:
    """Check the new orders of ``tasks`` against ``cases`` (``(line, record)`` pairs);
    ``where_of(line, task_id)`` takes a finding of the task on that line."""
    wanted: dict[str, list[tuple[int, str, str | None]]] = {}
    for line, task in tasks:
        if task.get("task_type") != _TASK:
            continue
        parsed = order_indication(str((task.get("context") or {}).get("excerpt") or ""))
        if parsed is not None:
            texts = [str(o.get("text") or "") for o in task.get("options") or []]
            for text in query_as_ordered(parsed[0], texts):
                where_of(line, str(task.get("id"))).add(
                    "query-as-ordered", f"'{text}' for the order '{parsed[0]}'"
                )
            wanted.setdefault(str(task.get("case_id")), []).append(
                (line, str(task.get("id")), parsed[1])
            )
    if not wanted:
        return
    for _, case in cases:
        for line, tid, why in wanted.get(str(case.get("id")), []):
            problem = indication_problem(case, why)
            if problem is not None:
                where_of(line, tid).add("order-no-indication", f"{tid}: {problem}")
