"""From a CDS Hooks request to a record, a prompt, and the dial's reading.

The prefetch (or what was fetched from the request's ``fhirServer``) is packed
into one FHIR Bundle and imported by the same importer as ``build --source
fhir`` (:func:`behaviorsft.sources.fhir.read_document`), so the agent reads a
``Case`` exactly as it would in the benchmark. The prompt asks for the
behaviour token first, then (when proactive) a one-line summary, an
explanation, and proposed actions on ``Suggest:`` lines.

Model calls go through one worker thread that batches requests arriving
together: a local model is not thread-safe, and one batched forward pass
serves concurrent hook calls faster than a queue of single ones.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from behaviorsft.build.llm.stages import case_source_text
from behaviorsft.dial import DialReading, Force, read_dial
from behaviorsft.models.base import Generation, GenerationRequest, Model
from behaviorsft.records import Case, ChatMessage
from behaviorsft.sources.fhir import read_document
from behaviorsft.taxonomy import PROACTIVE_TOKEN, REACTIVE_TOKEN

SUMMARY_MAX = 140  # CDS Hooks: a card summary is under 140 characters
SUGGEST_PREFIX = "Suggest:"

SYSTEM_PROMPT = (
    "You are a clinical decision support agent inside an electronic health record. "
    "You read the patient's record when a clinician opens the chart or is about to sign "
    "orders, and decide whether to interrupt them."
)
INSTRUCTION = (
    f"Begin your reply with {PROACTIVE_TOKEN} if the clinician should be told something "
    f"they did not ask for (a safety problem, a missed step), or with {REACTIVE_TOKEN} if "
    f"nothing needs their attention. After {PROACTIVE_TOKEN}: one line summarising the "
    "issue (at most 140 characters), then the explanation, then each proposed action on its "
    f"own line starting '{SUGGEST_PREFIX}'."
)


class RecordError(ValueError):
    """The request's FHIR data do not make a record (HTTP 400)."""


def bundle_from_prefetch(
    prefetch: dict[str, Any], draft_orders: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One collection Bundle of every resource in the prefetch (and the draft orders)."""
    entries: list[dict[str, Any]] = []

    def add(resource: object) -> None:
        if not isinstance(resource, dict):
            return
        if resource.get("resourceType") == "Bundle":
            for entry in resource.get("entry") or []:
                if isinstance(entry, dict):
                    add(entry.get("resource"))
            return
        full_url = None
        if resource.get("resourceType") and resource.get("id"):
            full_url = f"{resource['resourceType']}/{resource['id']}"
        entries.append(
            {"fullUrl": full_url, "resource": resource} if full_url else {"resource": resource}
        )

    for value in prefetch.values():
        add(value)
    if draft_orders:
        add(draft_orders)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def case_from_prefetch(
    hook_instance: str, prefetch: dict[str, Any], draft_orders: dict[str, Any] | None = None
) -> Case:
    """The ``Case`` the FHIR importer makes of the prefetch; RecordError when it makes none."""
    bundle = bundle_from_prefetch(prefetch, draft_orders)
    if not bundle["entry"]:
        raise RecordError("the prefetch holds no FHIR resources")
    case: Case | None = None
    problems: list[str] = []
    for item in read_document(bundle, Path(f"cds-hooks/{hook_instance}")):
        if item.case is not None and case is None:
            case = item.case
        elif item.error is not None:
            problems.append(f"{item.error.field}: {item.error.message}")
    if case is None:
        raise RecordError("; ".join(problems) or "no record could be built from the prefetch")
    return case


def _draft_order_names(draft_orders: dict[str, Any] | None) -> list[str]:
    names: list[str] = []
    for entry in (draft_orders or {}).get("entry") or []:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict):
            continue
        concept = res.get("medicationCodeableConcept") or res.get("code") or {}
        text = concept.get("text") if isinstance(concept, dict) else None
        if not text and isinstance(concept, dict):
            codings = concept.get("coding") or []
            text = next((c.get("display") for c in codings if isinstance(c, dict)), None)
        names.append(f"{res.get('resourceType', 'order')}: {text or 'unnamed'}")
    return names


def build_messages(
    case: Case, hook: str, draft_orders: dict[str, Any] | None = None
) -> list[ChatMessage]:
    """The agent's prompt for ``case`` at ``hook``."""
    if hook == "order-sign":
        names = _draft_order_names(draft_orders)
        situation = "The clinician is about to sign these orders:\n" + "\n".join(
            f"- {n}" for n in names or ["(none listed)"]
        )
    else:
        situation = "The clinician has just opened this patient's chart."
    user = f"Patient record\n\n{case_source_text(case)}\n\n{situation}\n\n{INSTRUCTION}"
    return [
        ChatMessage(role="system", content=SYSTEM_PROMPT),
        ChatMessage(role="user", content=user),
    ]


def prompt_hash(messages: Sequence[ChatMessage]) -> str:
    """SHA-256 of the exact messages (audit: which prompt produced a card, without PHI)."""
    blob = json.dumps([m.model_dump(mode="json") for m in messages], sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class AgentReply:
    """What the agent said, split into card parts."""

    summary: str
    detail: str
    suggestions: list[str] = field(default_factory=list)


def parse_reply(text: str) -> AgentReply:
    """Summary (first line), detail (the rest) and ``Suggest:`` lines of a proactive reply."""
    body = text.strip()
    for tok in (PROACTIVE_TOKEN, REACTIVE_TOKEN):
        if body.startswith(tok):
            body = body[len(tok) :].strip()
            break
    lines = [ln.rstrip() for ln in body.splitlines()]
    suggestions = [
        ln.strip()[len(SUGGEST_PREFIX) :].strip()
        for ln in lines
        if ln.strip().startswith(SUGGEST_PREFIX) and ln.strip()[len(SUGGEST_PREFIX) :].strip()
    ]
    prose = [ln for ln in lines if not ln.strip().startswith(SUGGEST_PREFIX)]
    first = next((i for i, ln in enumerate(prose) if ln.strip()), None)
    if first is None:
        return AgentReply("", "", suggestions)
    summary = " ".join(prose[first].split())
    detail = "\n".join(prose[first + 1 :]).strip()
    return AgentReply(summary, detail or summary, suggestions)


class ModelWorker:
    """Runs a model's ``generate`` on one thread, batching requests submitted together."""

    def __init__(self, model: Model, *, max_batch: int = 32) -> None:
        self.model = model
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[list[GenerationRequest], Future[list[Generation]]] | None]
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="behaviorsft-model", daemon=True)
        self._thread.start()

    def submit(self, requests: list[GenerationRequest]) -> list[Generation]:
        """Generate ``requests`` (blocking until they are done)."""
        fut: Future[list[Generation]] = Future()
        self._queue.put((requests, fut))
        return fut.result()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            jobs = [item]
            n = len(item[0])
            while n < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                jobs.append(more)
                n += len(more[0])
            flat = [r for reqs, _ in jobs for r in reqs]
            try:
                gens = self.model.generate(flat)
            except Exception as exc:  # every waiting call gets the failure
                for _, fut in jobs:
                    fut.set_exception(exc)
                continue
            at = 0
            for reqs, fut in jobs:
                fut.set_result(gens[at : at + len(reqs)])
                at += len(reqs)

    def close(self) -> None:
        """Stop the worker thread and release the model."""
        self._queue.put(None)
        self._thread.join(timeout=10)
        self.model.close()


class Agent:
    """A model behind the dial: messages in, a :class:`DialReading` out."""

    def __init__(
        self,
        model: Model,
        *,
        max_new_tokens: int = 256,
        max_batch: int = 32,
    ) -> None:
        self.name = model.name
        self.max_new_tokens = max_new_tokens
        self._worker = ModelWorker(model, max_batch=max_batch)

    def read(
        self, messages: Sequence[ChatMessage], *, threshold: float, force: Force, key: str = ""
    ) -> DialReading:
        """The agent's reply to ``messages`` and its decision at ``threshold``."""
        return read_dial(
            self._worker.submit,
            messages,
            threshold=threshold,
            force=force,
            max_new_tokens=self.max_new_tokens,
            key=key,
        )

    def close(self) -> None:
        """Stop the worker and free the model."""
        self._worker.close()
