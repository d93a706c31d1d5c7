"""The FastAPI app: CDS Hooks discovery, the two hook services, feedback.

``create_app(settings, agent=...)`` builds it; ``behaviorsft serve`` runs it
under uvicorn. The service log names patients only by their salted hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

import httpx
from fastapi import Body, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from behaviorsft import __version__
from behaviorsft.models import parse_model_spec
from behaviorsft.serve.agent import (
    Agent,
    RecordError,
    build_messages,
    case_from_prefetch,
    parse_reply,
    prompt_hash,
)
from behaviorsft.serve.cards import (
    OVERRIDE_REASONS,
    PREFETCH,
    REQUIRED_PREFETCH,
    build_card,
    discovery,
)
from behaviorsft.serve.db import Feedback, HookCall, make_engine
from behaviorsft.serve.security import AuthError, JWTVerifier
from behaviorsft.serve.settings import SERVICE_HOOKS, ServeSettings

log = logging.getLogger("behaviorsft.serve")

OUTCOMES = ("accepted", "overridden")
_OVERRIDE_DISPLAY = {r["code"]: r["display"] for r in OVERRIDE_REASONS}


class _HookError(Exception):
    """A refused call. ``phi``: the message may quote record content, so it is not logged."""

    def __init__(self, status: int, message: str, *, phi: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.phi = phi


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"error": f"request body over {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def hash_patient(salt: str, patient_id: str) -> str:
    """Salted SHA-256 of a patient id: the only way the service names a patient."""
    return hashlib.sha256(f"{salt}\x00{patient_id}".encode()).hexdigest()


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _fetch_missing(
    client: httpx.Client, request: dict[str, Any], missing: list[str], patient_id: str
) -> dict[str, Any]:
    """Fetch the missing prefetch keys from the request's fhirServer; 412 on failure."""
    server = str(request["fhirServer"]).rstrip("/")
    auth = request.get("fhirAuthorization") or {}
    headers = {"Accept": "application/fhir+json"}
    if isinstance(auth, dict) and auth.get("access_token"):
        headers["Authorization"] = f"Bearer {auth['access_token']}"
    out: dict[str, Any] = {}
    for key in missing:
        query = PREFETCH[key].replace("{{context.patientId}}", patient_id)
        try:
            resp = client.get(f"{server}/{query}", headers=headers)
            resp.raise_for_status()
            out[key] = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _HookError(
                412, f"prefetch {key!r} was not sent and fetching it from fhirServer failed: {exc}"
            ) from exc
    return out


def create_app(
    settings: ServeSettings,
    *,
    agent: Agent,
    engine: Engine | None = None,
    fhir_client: httpx.Client | None = None,
) -> FastAPI:
    """The CDS Hooks app around ``agent``, auditing to ``engine`` (default: ``settings.db``)."""
    engine = engine if engine is not None else make_engine(settings.db)
    salt = settings.salt()
    verifier = JWTVerifier(settings.issuers, leeway_s=settings.jwt_leeway_s)
    fhir = fhir_client if fhir_client is not None else httpx.Client(timeout=settings.fhir_timeout_s)
    model_label = agent.name
    try:
        spec = parse_model_spec(agent.name)
        model_name, adapter = f"{spec.provider}/{spec.name}", spec.adapter
    except ValueError:
        model_name, adapter = agent.name, None
    model_version = settings.model_version or __version__
    # SQLite has one writer at a time: queueing writers here is fair and fast, where
    # SQLite's own busy handler sleeps with back-off. Other databases need no lock.
    write_lock: Any = (
        threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    )

    app = FastAPI(title="behaviorsft CDS Hooks service", version=__version__)
    app.state.settings = settings
    app.state.engine = engine
    app.state.agent = agent
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    def authenticate(request: Request, authorization: str | None) -> None:
        if not settings.require_jwt:
            return
        if settings.service_url:
            audience = settings.service_url.rstrip("/") + request.url.path
        else:
            audience = str(request.url).split("?", 1)[0]
        verifier.verify(authorization, audience)

    @app.get("/cds-services")
    def get_discovery() -> dict[str, Any]:
        return discovery(settings)

    @app.post("/cds-services/{service_id}", response_model=None)
    def call_service(
        service_id: str,
        request: Request,
        payload: Any = Body(...),
        authorization: str | None = Header(None),
    ) -> JSONResponse | dict[str, Any]:
        t0 = time.perf_counter()
        try:
            authenticate(request, authorization)
        except AuthError as exc:
            log.warning("%s: 401: %s", service_id, exc)
            return _error(401, str(exc))
        if service_id not in SERVICE_HOOKS or not discovery_has(service_id):
            return _error(404, f"no CDS service {service_id!r}; see GET /cds-services")
        try:
            return _hook(service_id, payload, t0)
        except _HookError as exc:
            shown = "(details returned to the caller, not logged)" if exc.phi else str(exc)
            log.warning("%s: %d: %s", service_id, exc.status, shown)
            return _error(exc.status, str(exc))

    def discovery_has(service_id: str) -> bool:
        svc = settings.services.get(service_id)
        return svc is None or svc.enabled

    def _hook(service_id: str, payload: Any, t0: float) -> JSONResponse | dict[str, Any]:
        hook = SERVICE_HOOKS[service_id]
        if not isinstance(payload, dict):
            raise _HookError(400, "the request body must be a JSON object")
        if payload.get("hook") != hook:
            raise _HookError(400, f"hook: {payload.get('hook')!r} sent to a {hook} service")
        instance = payload.get("hookInstance")
        if not isinstance(instance, str) or not instance:
            raise _HookError(400, "hookInstance: missing")
        context = payload.get("context")
        if not isinstance(context, dict) or not isinstance(context.get("patientId"), str):
            raise _HookError(400, "context.patientId: missing")
        patient_id = context["patientId"]
        prefetch = payload.get("prefetch") or {}
        if not isinstance(prefetch, dict):
            raise _HookError(400, "prefetch: must be an object")
        missing = [k for k in REQUIRED_PREFETCH if k not in prefetch]
        if missing:
            if not payload.get("fhirServer"):
                raise _HookError(
                    412,
                    f"required prefetch missing ({', '.join(missing)}) and no fhirServer to "
                    "fetch it from",
                )
            prefetch = {**prefetch, **_fetch_missing(fhir, payload, missing, patient_id)}
        draft = context.get("draftOrders") if hook == "order-sign" else None
        if hook == "order-sign" and not isinstance(draft, dict):
            raise _HookError(400, "context.draftOrders: order-sign needs a Bundle of draft orders")
        try:
            case = case_from_prefetch(instance, prefetch, draft)
        except RecordError as exc:
            raise _HookError(400, f"prefetch: {exc}", phi=True) from exc
        messages = build_messages(case, hook, draft)
        threshold = settings.threshold_for(service_id)
        reading = agent.read(messages, threshold=threshold, force=settings.force, key=instance)
        card = None
        if reading.error is not None:
            decision, response = "error", None
        elif reading.proactive:
            reply = parse_reply(reading.text or "")
            card = build_card(
                reply, reading, model_label=model_label, tiers=settings.indicator_tiers
            )
            decision, response = "card", {"cards": [card]}
        else:
            decision, response = "restraint", {"cards": []}
        latency_ms = (time.perf_counter() - t0) * 1000.0
        patient_hash = hash_patient(salt, patient_id)
        row = HookCall(
            hook_instance=instance,
            created_at=datetime.now(timezone.utc),
            service_id=service_id,
            hook=hook,
            patient_hash=patient_hash,
            model=model_name,
            adapter=adapter,
            model_version=model_version,
            prompt_hash=prompt_hash(messages),
            p_proactive=reading.p_proactive,
            threshold=threshold,
            force=settings.force.value,
            decision=decision,
            card_uuid=card["uuid"] if card else None,
            indicator=card["indicator"] if card else None,
            summary=card["summary"] if card else None,
            suggestion_uuids=[x["uuid"] for x in card.get("suggestions", [])] if card else None,
            latency_ms=latency_ms,
            error=reading.error,
            record_json=case.model_dump(mode="json") if settings.store_record else None,
        )
        # The response is built; it is returned only once its audit row is committed.
        with write_lock, Session(engine) as session, session.begin():
            session.add(row)
        p_text = f"{reading.p_proactive:.3f}" if reading.p_proactive is not None else "n/a"
        log.info(
            "%s hook=%s patient=%s decision=%s p=%s T=%.2f latency_ms=%.0f",
            service_id,
            instance,
            patient_hash[:16],
            decision,
            p_text,
            threshold,
            latency_ms,
        )
        if response is None:
            return _error(503, "the agent could not answer; see the service log")
        return response

    @app.post("/cds-services/{service_id}/feedback", response_model=None)
    def feedback(
        service_id: str,
        request: Request,
        payload: Any = Body(...),
        authorization: str | None = Header(None),
    ) -> JSONResponse | dict[str, Any]:
        try:
            authenticate(request, authorization)
        except AuthError as exc:
            return _error(401, str(exc))
        if service_id not in SERVICE_HOOKS:
            return _error(404, f"no CDS service {service_id!r}")
        try:
            rows = _feedback_rows(service_id, payload)
        except _HookError as exc:
            return _error(exc.status, str(exc))
        added = 0
        for row in rows:
            # One transaction per item: a replayed item is a duplicate, not a failure.
            try:
                with write_lock, Session(engine) as session, session.begin():
                    dup = session.scalar(
                        select(Feedback.id).where(Feedback.dedupe_key == row.dedupe_key)
                    )
                    if dup is None:
                        session.add(row)
                        added += 1
            except IntegrityError:
                pass  # a concurrent post of the same item won
        log.info("%s feedback items=%d new=%d", service_id, len(rows), added)
        return {}

    def _feedback_rows(service_id: str, payload: Any) -> list[Feedback]:
        items = payload.get("feedback") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items:
            raise _HookError(400, "feedback: expected a non-empty list")
        now = datetime.now(timezone.utc)
        rows: list[Feedback] = []
        with Session(engine) as session:
            for i, item in enumerate(items):
                where = f"feedback[{i}]"
                if not isinstance(item, dict):
                    raise _HookError(400, f"{where}: expected an object")
                card = item.get("card")
                if not isinstance(card, str) or not card:
                    raise _HookError(400, f"{where}.card: missing")
                known = session.execute(
                    select(HookCall.service_id, HookCall.suggestion_uuids).where(
                        HookCall.card_uuid == card
                    )
                ).first()
                if known is None or known[0] != service_id:
                    raise _HookError(404, f"{where}.card: {card} is not a card of {service_id}")
                outcome = item.get("outcome")
                if outcome not in OUTCOMES:
                    raise _HookError(400, f"{where}.outcome: {outcome!r}, need one of {OUTCOMES}")
                accepted = item.get("acceptedSuggestions") or []
                if not isinstance(accepted, list) or not all(
                    isinstance(a, dict) and isinstance(a.get("id"), str) for a in accepted
                ):
                    raise _HookError(400, f"{where}.acceptedSuggestions: a list of {{'id': ...}}")
                ids = sorted(a["id"] for a in accepted)
                unknown = set(ids) - set(known[1] or [])
                if unknown:
                    raise _HookError(
                        400,
                        f"{where}.acceptedSuggestions: {sorted(unknown)} are not suggestions "
                        "of this card",
                    )
                if outcome == "overridden" and ids:
                    raise _HookError(
                        400, f"{where}: an overridden card has no accepted suggestions"
                    )
                code = display = None
                reason = item.get("overrideReason")
                if reason is not None:
                    coding = reason.get("reason") if isinstance(reason, dict) else None
                    if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
                        raise _HookError(400, f"{where}.overrideReason.reason: a Coding with code")
                    code = coding["code"]
                    display = _OVERRIDE_DISPLAY.get(code) or str(coding.get("display") or "")[:256]
                stamp = item.get("outcomeTimestamp")
                try:
                    when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
                except ValueError:
                    raise _HookError(
                        400, f"{where}.outcomeTimestamp: {stamp!r} is not an ISO 8601 instant"
                    ) from None
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                key = json.dumps(
                    [card, outcome, ids, code, when.isoformat()], separators=(",", ":")
                )
                rows.append(
                    Feedback(
                        dedupe_key=hashlib.sha256(key.encode()).hexdigest(),
                        card_uuid=card,
                        service_id=service_id,
                        outcome=outcome,
                        accepted_suggestions=ids,
                        override_code=code,
                        override_display=display,
                        outcome_timestamp=when,
                        received_at=now,
                    )
                )
        return rows

    return app
