"""CDS Hooks 2.0 discovery and cards.

A card is returned only when the dial says proactive; its indicator is tiered
by P(<proactive>) (``info`` below the warning tier, ``warning``, ``critical``).
A forced card (testing) is tiered by the model's own P when it could be
measured, else ``info``.
"""

from __future__ import annotations

import uuid
from typing import Any

from behaviorsft.dial import DialReading
from behaviorsft.serve.agent import SUMMARY_MAX, AgentReply
from behaviorsft.serve.settings import SERVICE_HOOKS, IndicatorTiers, ServeSettings

PATIENT_ID = "{{context.patientId}}"
PREFETCH = {
    "patient": f"Patient/{PATIENT_ID}",
    "conditions": f"Condition?patient={PATIENT_ID}",
    "medications": f"MedicationRequest?patient={PATIENT_ID}",
    "allergies": f"AllergyIntolerance?patient={PATIENT_ID}",
    "observations": f"Observation?patient={PATIENT_ID}&_sort=-date&_count=50",
}
# Without these the agent would read a record with holes that look like facts
# ("no allergies"), so a missing one is fetched or the call is refused (412).
REQUIRED_PREFETCH = ("patient", "conditions", "medications", "allergies")

OVERRIDE_SYSTEM = "https://behaviorsft.invalid/cds-hooks/override-reason"
OVERRIDE_REASONS = [
    {"code": "not-relevant", "system": OVERRIDE_SYSTEM, "display": "Not relevant to this patient"},
    {"code": "already-addressed", "system": OVERRIDE_SYSTEM, "display": "Already addressed"},
    {
        "code": "benefit-outweighs-risk",
        "system": OVERRIDE_SYSTEM,
        "display": "Benefit outweighs the risk",
    },
    {"code": "incorrect", "system": OVERRIDE_SYSTEM, "display": "The alert is incorrect"},
    {"code": "too-many-alerts", "system": OVERRIDE_SYSTEM, "display": "Too many alerts"},
]
OVERRIDE_CODES = {r["code"] for r in OVERRIDE_REASONS}

_DESCRIPTIONS = {
    "patient-view": "Reads the chart when it is opened and speaks up only when a "
    "behaviour-conditioned agent judges the situation calls for it (P(<proactive>) >= threshold).",
    "order-sign": "Checks orders about to be signed against the record (allergies, "
    "interactions, missed steps); a card only when the agent is proactive at the threshold.",
}
_TITLES = {
    "patient-view": "Proactive chart review",
    "order-sign": "Order safety review",
}


def discovery(settings: ServeSettings) -> dict[str, Any]:
    """The ``GET /cds-services`` document."""
    services = []
    for sid, hook in SERVICE_HOOKS.items():
        svc = settings.services.get(sid)
        if svc is not None and not svc.enabled:
            continue
        services.append(
            {
                "hook": hook,
                "id": sid,
                "title": _TITLES[hook],
                "description": _DESCRIPTIONS[hook],
                "prefetch": dict(PREFETCH),
                "usageRequirements": "Cards are advisory output of a language model; "
                "every call is audited.",
            }
        )
    return {"services": services}


def indicator(p: float | None, tiers: IndicatorTiers) -> str:
    """info / warning / critical by P(<proactive>)."""
    if p is None:
        return "info"
    if p >= tiers.critical:
        return "critical"
    if p >= tiers.warning:
        return "warning"
    return "info"


def _summary(text: str, reading: DialReading) -> str:
    text = " ".join(text.split())
    if not text:
        p = f" (P(proactive) {reading.p_proactive:.2f})" if reading.p_proactive is not None else ""
        text = f"The agent flags this record for review{p}"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def build_card(
    reply: AgentReply, reading: DialReading, *, model_label: str, tiers: IndicatorTiers
) -> dict[str, Any]:
    """One CDS Hooks card of a proactive reading."""
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": _summary(reply.summary, reading),
        "detail": reply.detail or reply.summary,
        "indicator": indicator(reading.p_proactive, tiers),
        "source": {
            "label": f"behaviorsft agent ({model_label})",
            "topic": {
                "system": "https://behaviorsft.invalid/cds-hooks/topic",
                "code": "proactive-review",
                "display": "Proactive review by a behaviour-conditioned agent",
            },
        },
        "overrideReasons": [dict(r) for r in OVERRIDE_REASONS],
    }
    if reply.suggestions:
        card["suggestions"] = [
            {"label": s[:140], "uuid": str(uuid.uuid4()), "isRecommended": i == 0}
            for i, s in enumerate(reply.suggestions)
        ]
        card["selectionBehavior"] = "at-most-one"
    return card
