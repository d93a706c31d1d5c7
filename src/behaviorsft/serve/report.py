"""`behaviorsft serve audit`: the alert-fatigue dashboard and the FHIR export of the audit.

Counts are pure functions of the audit rows (:func:`summarise`), so they can be
checked by hand. A card's outcome is its latest feedback (by
``outcomeTimestamp``); a card without feedback counts as "no feedback", never
as accepted. Rates are over cards with feedback.

Outputs in ``--out``: ``audit.json``, ``audit.md``, ``audit.png`` and
``fhir/AuditEvent.ndjson`` (one per hook call) plus ``fhir/Provenance.ndjson``
(one per card: the card was produced by the agent), both validated with the
FHIR R4 models of ``fhir.resources`` (its ``R4B`` package, as the importer).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from behaviorsft.serve.db import Feedback, HookCall

AUDIT_EVENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}


@dataclass(frozen=True)
class CallRow:
    """The audit fields the report reads from one hook call."""

    service_id: str
    day: str
    patient_hash: str | None
    decision: str
    indicator: str | None
    card_uuid: str | None
    p_proactive: float | None
    latency_ms: float


@dataclass(frozen=True)
class FeedbackRow:
    """The audit fields the report reads from one feedback item."""

    card_uuid: str
    outcome: str
    override_code: str | None
    override_display: str | None
    outcome_timestamp: datetime


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _outcomes(feedback: Sequence[FeedbackRow]) -> dict[str, FeedbackRow]:
    latest: dict[str, FeedbackRow] = {}
    for fb in sorted(feedback, key=lambda f: f.outcome_timestamp):
        latest[fb.card_uuid] = fb
    return latest


def _group(cards: list[CallRow], outcome: dict[str, FeedbackRow]) -> dict[str, Any]:
    with_fb = [c for c in cards if c.card_uuid in outcome]
    accepted = sum(outcome[c.card_uuid].outcome == "accepted" for c in with_fb)  # type: ignore[index]
    overridden = len(with_fb) - accepted
    return {
        "cards": len(cards),
        "with_feedback": len(with_fb),
        "no_feedback": len(cards) - len(with_fb),
        "accepted": accepted,
        "overridden": overridden,
        "acceptance_rate": _rate(accepted, len(with_fb)),
        "override_rate": _rate(overridden, len(with_fb)),
    }


def summarise(calls: Sequence[CallRow], feedback: Sequence[FeedbackRow]) -> dict[str, Any]:
    """The dashboard's numbers from the audit rows."""
    outcome = _outcomes(feedback)
    cards = [c for c in calls if c.decision == "card"]
    decisions = Counter(c.decision for c in calls)
    per_patient: dict[str, dict[str, int]] = defaultdict(lambda: {"calls": 0, "cards": 0})
    per_day: dict[str, dict[str, int]] = defaultdict(lambda: {"calls": 0, "cards": 0})
    for c in calls:
        who = (c.patient_hash or "unknown")[:16]
        per_patient[who]["calls"] += 1
        per_day[c.day]["calls"] += 1
        if c.decision == "card":
            per_patient[who]["cards"] += 1
            per_day[c.day]["cards"] += 1
    reasons = Counter(
        f"{fb.override_code} ({fb.override_display})" if fb.override_code else "(none given)"
        for fb in outcome.values()
        if fb.outcome == "overridden"
    )
    by_indicator = {
        ind: _group([c for c in cards if c.indicator == ind], outcome)
        for ind in ("info", "warning", "critical")
    }
    services = sorted({c.service_id for c in calls})
    by_service = {}
    for sid in services:
        mine = [c for c in calls if c.service_id == sid]
        by_service[sid] = {
            "calls": len(mine),
            "restraint": sum(c.decision == "restraint" for c in mine),
            **_group([c for c in mine if c.decision == "card"], outcome),
        }
    patient_cards = [v["cards"] for v in per_patient.values()]
    latencies = sorted(c.latency_ms for c in calls)
    return {
        "calls": len(calls),
        "cards": len(cards),
        "restraint": decisions.get("restraint", 0),
        "errors": decisions.get("error", 0),
        "card_rate": _rate(len(cards), len(calls)),
        "feedback": _group(cards, outcome),
        "override_reasons": dict(reasons.most_common()),
        "by_indicator": by_indicator,
        "by_service": by_service,
        "cards_per_day": dict(sorted(per_day.items())),
        "cards_per_patient": {
            "patients": len(per_patient),
            "mean": round(sum(patient_cards) / len(patient_cards), 3) if patient_cards else None,
            "max": max(patient_cards) if patient_cards else None,
            "by_patient": dict(sorted(per_patient.items(), key=lambda kv: -kv[1]["cards"])),
        },
        "latency_ms": {
            "p50": latencies[len(latencies) // 2] if latencies else None,
            "max": latencies[-1] if latencies else None,
        },
    }


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def to_markdown(summary: dict[str, Any]) -> str:
    """The dashboard as Markdown."""
    fb = summary["feedback"]
    lines = [
        "# CDS Hooks audit: proactive triggers and their outcomes",
        "",
        f"- Hook calls: {summary['calls']} (cards {summary['cards']}, restraint "
        f"{summary['restraint']}, errors {summary['errors']}); card rate "
        f"{_fmt(summary['card_rate'])}",
        f"- Cards with feedback: {fb['with_feedback']} (accepted {fb['accepted']}, overridden "
        f"{fb['overridden']}); acceptance {_fmt(fb['acceptance_rate'])}, override "
        f"{_fmt(fb['override_rate'])}; no feedback {fb['no_feedback']}",
        f"- Patients: {summary['cards_per_patient']['patients']}; cards per patient mean "
        f"{summary['cards_per_patient']['mean']}, max {summary['cards_per_patient']['max']}",
        "",
        "## By indicator",
        "",
        "| indicator | cards | with feedback | accepted | overridden | acceptance | override |",
        "|---|---|---|---|---|---|---|",
    ]
    for ind, g in summary["by_indicator"].items():
        lines.append(
            f"| {ind} | {g['cards']} | {g['with_feedback']} | {g['accepted']} | "
            f"{g['overridden']} | {_fmt(g['acceptance_rate'])} | {_fmt(g['override_rate'])} |"
        )
    lines += [
        "",
        "## By service",
        "",
        "| service | calls | cards | restraint | accepted | overridden | override |",
        "|---|---|---|---|---|---|---|",
    ]
    for sid, g in summary["by_service"].items():
        lines.append(
            f"| {sid} | {g['calls']} | {g['cards']} | {g['restraint']} | {g['accepted']} | "
            f"{g['overridden']} | {_fmt(g['override_rate'])} |"
        )
    lines += ["", "## Override reasons", ""]
    lines += [f"- {r}: {n}" for r, n in summary["override_reasons"].items()] or ["- none"]
    lines += ["", "## Cards per day", "", "| day | calls | cards |", "|---|---|---|"]
    lines += [f"| {d} | {v['calls']} | {v['cards']} |" for d, v in summary["cards_per_day"].items()]
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    """Cards per day, and acceptance/override by indicator, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    days = list(summary["cards_per_day"])
    left.bar(
        days,
        [summary["cards_per_day"][d]["calls"] for d in days],
        label="hook calls",
        color="#cccccc",
    )
    left.bar(
        days, [summary["cards_per_day"][d]["cards"] for d in days], label="cards", color="#d95f02"
    )
    left.set_title("Hook calls and cards per day")
    left.tick_params(axis="x", rotation=45)
    left.legend()
    inds = list(summary["by_indicator"])
    acc = [summary["by_indicator"][i]["accepted"] for i in inds]
    over = [summary["by_indicator"][i]["overridden"] for i in inds]
    none = [summary["by_indicator"][i]["no_feedback"] for i in inds]
    right.bar(inds, acc, label="accepted", color="#1b9e77")
    right.bar(inds, over, bottom=acc, label="overridden", color="#d95f02")
    right.bar(
        inds,
        none,
        bottom=[a + o for a, o in zip(acc, over, strict=True)],
        label="no feedback",
        color="#cccccc",
    )
    right.set_title("Card outcomes by indicator")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _audit_event(call: HookCall) -> dict[str, Any]:
    from fhir.resources.R4B.auditevent import AuditEvent

    recorded = call.created_at.replace(tzinfo=call.created_at.tzinfo or timezone.utc)
    outcome_desc = f"decision={call.decision}" + (
        f"; p_proactive={call.p_proactive:.4f}" if call.p_proactive is not None else ""
    )
    event = AuditEvent.model_validate(
        {
            "resourceType": "AuditEvent",
            "id": f"hook-call-{call.id}",
            "type": AUDIT_EVENT_TYPE,
            "subtype": [{"system": "http://cds-hooks.hl7.org", "code": call.hook}],
            "action": "E",
            "recorded": recorded.isoformat(),
            "outcome": "0" if call.decision != "error" else "8",
            "outcomeDesc": outcome_desc,
            "agent": [
                {
                    "who": {"display": f"{call.model} ({call.model_version})"},
                    "requestor": False,
                    "name": call.service_id,
                }
            ],
            "source": {"observer": {"display": "behaviorsft serve"}},
            "entity": [
                {
                    "what": {
                        "identifier": {
                            "system": "urn:cds-hooks:hookInstance",
                            "value": call.hook_instance,
                        }
                    },
                    "description": "hook call",
                },
                *(
                    [
                        {
                            "what": {
                                "identifier": {
                                    "system": "urn:behaviorsft:patient-sha256",
                                    "value": call.patient_hash,
                                }
                            },
                            "description": "patient (salted SHA-256 of the id)",
                        }
                    ]
                    if call.patient_hash
                    else []
                ),
            ],
        }
    )
    return json.loads(event.model_dump_json(exclude_none=True))


def _provenance(call: HookCall) -> dict[str, Any]:
    from fhir.resources.R4B.provenance import Provenance

    recorded = call.created_at.replace(tzinfo=call.created_at.tzinfo or timezone.utc)
    prov = Provenance.model_validate(
        {
            "resourceType": "Provenance",
            "id": f"card-{call.card_uuid}",
            "target": [
                {
                    "identifier": {"system": "urn:cds-hooks:card", "value": call.card_uuid},
                    "display": call.summary,
                }
            ],
            "recorded": recorded.isoformat(),
            "agent": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                "code": "author",
                            }
                        ]
                    },
                    "who": {
                        "display": f"{call.model}"
                        + (f":{call.adapter}" if call.adapter else "")
                        + f" ({call.model_version})"
                    },
                }
            ],
            "entity": [
                {
                    "role": "source",
                    "what": {
                        "identifier": {
                            "system": "urn:cds-hooks:hookInstance",
                            "value": call.hook_instance,
                        }
                    },
                }
            ],
        }
    )
    return json.loads(prov.model_dump_json(exclude_none=True))


def load_rows(engine: Engine) -> tuple[list[HookCall], list[Feedback]]:
    """Every audit row, oldest first."""
    with Session(engine) as session:
        calls = list(session.scalars(select(HookCall).order_by(HookCall.id)))
        feedback = list(session.scalars(select(Feedback).order_by(Feedback.id)))
        session.expunge_all()
    return calls, feedback


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def write_report(engine: Engine, out: Path) -> dict[str, Any]:
    """Write the dashboard and FHIR export of the audit in ``engine`` to ``out``."""
    calls, feedback = load_rows(engine)
    summary = summarise(
        [
            CallRow(
                c.service_id,
                _aware(c.created_at).date().isoformat(),
                c.patient_hash,
                c.decision,
                c.indicator,
                c.card_uuid,
                c.p_proactive,
                c.latency_ms,
            )
            for c in calls
        ],
        [
            FeedbackRow(
                f.card_uuid,
                f.outcome,
                f.override_code,
                f.override_display,
                _aware(f.outcome_timestamp),
            )
            for f in feedback
        ],
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "audit.md").write_text(to_markdown(summary), encoding="utf-8")
    plot(summary, out / "audit.png")
    fhir_dir = out / "fhir"
    fhir_dir.mkdir(exist_ok=True)
    with (fhir_dir / "AuditEvent.ndjson").open("w", encoding="utf-8") as fh:
        for c in calls:
            fh.write(json.dumps(_audit_event(c)) + "\n")
    with (fhir_dir / "Provenance.ndjson").open("w", encoding="utf-8") as fh:
        for c in calls:
            if c.card_uuid:
                fh.write(json.dumps(_provenance(c)) + "\n")
    return summary
