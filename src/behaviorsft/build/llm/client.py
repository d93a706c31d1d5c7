"""Structured LLM calls: ask, validate with pydantic, re-ask with the error, account for usage.

One call of :meth:`StructuredClient.call` is one logical question to the model:

1. the prompt is rendered and sent through the shared HTTP client
   (:class:`behaviorsft.models.openai_compat.OpenAICompatModel`: bounded
   concurrency, retries with backoff for 429/5xx/timeouts, on-disk cache), with
   the endpoint's JSON-schema mode when it has one. Structured output is an
   extra, never a requirement: an endpoint that rejects ``json_schema`` (with
   any status: llama-cpp-python answers 500) is asked with ``json_object``,
   then in plain text, and the format that worked is kept for the rest of the
   run (see :class:`FormatLadder`);
2. the reply's JSON object is read (code fences and prose around it are
   tolerated) and validated against the prompt's pydantic schema, with a
   context (the source text, the number of turns) for cross-field checks;
3. on a validation failure the model is re-asked, at most ``max_reasks``
   times, with its previous reply and the validation errors appended to the
   conversation; an optional ``check`` (a soft rule such as "the answer must not
   be the longest option") is re-asked the same way;
4. what still fails is returned with its reason, never raised: the stage
   records it as a failed item.

Every HTTP reply's token usage is summed into the result (re-asks included,
replies served from the cache included, since they were paid once), so a
stage record carries exactly what it cost and totals computed from the stage
files count each paid call once, however often a run was resumed.

Why not ``instructor``: it wraps the ``openai`` SDK client, and our HTTP
client deliberately is not the SDK (see ``models/openai_compat.py``); the
re-ask loop it would give us is the twenty lines of :meth:`StructuredClient.call`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError

from behaviorsft.build.llm.prompts import Prompt
from behaviorsft.models.base import GenerationRequest
from behaviorsft.models.openai_compat import OpenAICompatModel
from behaviorsft.records import ChatMessage

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)

DEFAULT_MAX_REASKS = 2
# Replies that are a refusal rather than an attempt at JSON.
_REFUSAL = re.compile(
    r"\b(i('| a)?m sorry|i can(no|')t|i cannot|i am unable|i'm unable|unable to (help|assist|"
    r"comply)|can't (help|assist)|not able to (help|assist))\b",
    re.IGNORECASE,
)


class Prices(BaseModel):
    """What tokens cost, in US dollars per million tokens (0: unknown / free)."""

    input_per_m: float = Field(0.0, ge=0, description="USD per 1M prompt tokens.")
    output_per_m: float = Field(0.0, ge=0, description="USD per 1M completion tokens.")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollar cost of the given token counts."""
        return (prompt_tokens * self.input_per_m + completion_tokens * self.output_per_m) / 1e6

    @property
    def known(self) -> bool:
        """True when at least one price was given."""
        return self.input_per_m > 0 or self.output_per_m > 0


class CallInfo(BaseModel):
    """What one structured call took: attempts, tokens, cache use, and how it ended."""

    prompt_id: str = Field(description="Prompt name and version, e.g. 'summary/v1'.")
    attempts: int = Field(0, ge=0, description="Replies obtained (1 + re-asks).")
    requests: int = Field(0, ge=0, description="Replies that came over HTTP (not the cache).")
    cached: int = Field(0, ge=0, description="Replies served from the on-disk cache.")
    prompt_tokens: int = Field(0, ge=0, description="Prompt tokens of all replies.")
    completion_tokens: int = Field(0, ge=0, description="Completion tokens of all replies.")
    error: str | None = Field(None, description="Why no valid answer was obtained, if so.")
    check_failed: str | None = Field(
        None, description="A soft check that still failed after the re-asks (answer kept)."
    )


@dataclass
class CallResult(Generic[M]):
    """A validated answer (or None) and what it took."""

    value: M | None
    info: CallInfo
    raw: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


def extract_json(text: str) -> Any:
    """The JSON object in a reply: the whole text, else inside a code fence, else first {..last }.

    Raises ValueError with a message fit to send back to the model.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("the reply was empty; answer with the JSON object")
    candidates = [stripped]
    fence = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.DOTALL)
    if fence:
        candidates.append(fence.group(1).strip())
    lo, hi = stripped.find("{"), stripped.rfind("}")
    if lo != -1 and hi > lo:
        candidates.append(stripped[lo : hi + 1])
    last_error = ""
    for cand in candidates:
        try:
            return json.loads(cand)
        except json.JSONDecodeError as exc:
            last_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if lo == -1:
        raise ValueError("the reply contains no JSON object; answer with the JSON object only")
    raise ValueError(f"the reply is not valid JSON ({last_error}); it may have been cut off")


def format_validation_error(exc: ValidationError) -> str:
    """Pydantic errors as short lines ``path: message`` (what the model is told to fix)."""
    lines = []
    for err in exc.errors(include_url=False)[:20]:
        where = ".".join(str(p) for p in err["loc"]) or "(object)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"- {where}: {msg}")
    return "\n".join(lines)


def _reask_message(problem: str) -> ChatMessage:
    return ChatMessage(
        role="user",
        content="Your reply could not be used:\n"
        + problem
        + "\nReply again with the corrected JSON object only.",
    )


# Structured-output formats, most to least structured; "text" sends no response_format.
FORMATS: tuple[str, ...] = ("json_schema", "json_object", "text")
# An error that says the endpoint did not take the response_format it was sent.
_FORMAT_REJECTED = re.compile(r"response_format|json_schema|json_object", re.IGNORECASE)
# The statuses servers reject a request body with (llama-cpp-python: 500; others 400/422).
# Not 429/502/503/504 (rate limits, a busy or restarting server), nor a refused
# connection or a timeout: no response format would fix those.
_HTTP_ERROR = re.compile(r"\bHTTP (400|415|422|500|501)\b")
# Full ladders (every format failed) after which an endpoint is taken to be broken,
# not picky: later requests stop trying other formats.
_MAX_FAILED_LADDERS = 2


@dataclass
class FormatLadder:
    """Which ``response_format`` an endpoint takes, learnt once per run and shared.

    Until a request succeeds, one request at a time probes: it is sent with
    ``json_schema`` (with at most one retry); if that fails with HTTP
    400/415/422/500/501 (or any error naming the response format), the same
    request is sent with ``json_object``, then without ``response_format``.
    The first format that gets an answer is kept for every later request of
    the run. Once a format has worked, only an error that names the response
    format moves further down.
    """

    level: int = 0
    confirmed: bool = False
    failed_ladders: int = 0
    fallbacks: list[str] = field(default_factory=list)  # "rejected ... (why); using ..."
    _locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    @property
    def format(self) -> str:
        return FORMATS[self.level]

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lk = self._locks.get(loop)
        if lk is None:
            lk = self._locks[loop] = asyncio.Lock()
        return lk

    def step_down(self, to: int, reason: str) -> None:
        if to <= self.level:
            return
        why = " ".join(reason.split())[:300]
        note = f"rejected response_format {FORMATS[self.level]} ({why}); using {FORMATS[to]}"
        log.info("endpoint %s", note)
        self.fallbacks.append(note)
        self.level = to


# One ladder per HTTP client (one endpoint and model), for all structured clients using it.
_LADDERS: weakref.WeakKeyDictionary[OpenAICompatModel, FormatLadder] = weakref.WeakKeyDictionary()


def format_ladder(model: OpenAICompatModel) -> FormatLadder:
    """The response-format ladder of ``model`` (created on first use)."""
    ladder = _LADDERS.get(model)
    if ladder is None:
        ladder = _LADDERS[model] = FormatLadder()
    return ladder


@dataclass
class StructuredClient:
    """Validated JSON answers from an OpenAI-compatible model, with usage accounting.

    ``json_mode``: send ``response_format`` (JSON schema) with each request,
    falling back to ``json_object`` and plain text for endpoints that reject
    it (:class:`FormatLadder`). ``on_reply(cached)`` is called for each reply,
    ``on_failure()`` for each request that ended in an error (its last
    attempt; the HTTP client's ``on_retry`` sees the earlier ones).
    """

    model: OpenAICompatModel
    max_reasks: int = DEFAULT_MAX_REASKS
    json_mode: bool = True
    seed: int = 0
    temperature: float = 0.0
    on_reply: Callable[[bool], None] | None = None
    on_failure: Callable[[], None] | None = None

    @property
    def ladder(self) -> FormatLadder:
        return format_ladder(self.model)

    def _response_format(self, prompt: Prompt[Any], level: int) -> dict[str, Any] | None:
        fmt = FORMATS[level]
        if fmt == "json_schema":
            return prompt.response_format()
        if fmt == "json_object":
            return {"type": "json_object"}
        return None

    async def _send(
        self,
        prompt: Prompt[Any],
        messages: list[ChatMessage],
        key: str,
        level: int,
        model: OpenAICompatModel | None = None,
    ) -> Any:
        req = GenerationRequest(
            messages=tuple(messages),
            key=key,
            max_new_tokens=prompt.max_new_tokens,
            temperature=self.temperature,
            seed=self.seed,
            response_format=self._response_format(prompt, level) if self.json_mode else None,
        )
        gen = (await (model or self.model).agenerate([req]))[0]
        if (gen.error is not None or gen.text is None) and self.on_failure is not None:
            self.on_failure()
        return gen

    def _quick_model(self) -> OpenAICompatModel:
        """The same client (endpoint, connections, cache, callbacks) with at most one retry."""
        quick = copy.copy(self.model)
        quick.max_retries = min(self.model.max_retries, 1)
        return quick

    async def _ask(self, prompt: Prompt[Any], messages: list[ChatMessage], key: str) -> Any:
        """One request, in the best response format the endpoint is known (or found) to take."""
        ladder = self.ladder
        if not self.json_mode or not self.model.json_schema:
            return await self._send(prompt, messages, key, len(FORMATS) - 1)
        if not ladder.confirmed:
            async with ladder.lock():
                if not ladder.confirmed:
                    return await self._probe(prompt, messages, key, ladder)
        level = ladder.level
        gen = await self._send(prompt, messages, key, level)
        while (
            gen.error is not None
            and level < len(FORMATS) - 1
            and _FORMAT_REJECTED.search(gen.error)
        ):
            # One step below the format this request was sent with: requests rejected
            # together step the ladder down once, not once each.
            ladder.step_down(level + 1, gen.error)
            level = max(level + 1, ladder.level)
            gen = await self._send(prompt, messages, key, level)
        return gen

    async def _probe(
        self, prompt: Prompt[Any], messages: list[ChatMessage], key: str, ladder: FormatLadder
    ) -> Any:
        first = None
        for level in range(ladder.level, len(FORMATS)):
            # The first try of json_schema gets one retry, not the client's full backoff:
            # a server that rejects it (llama-cpp-python: HTTP 500, which is retried)
            # then costs two requests and no wait, once per run. The other formats
            # get every retry, so a passing fault at start costs at most json_schema.
            quick = level == 0 and ladder.failed_ladders == 0
            gen = await self._send(
                prompt, messages, key, level, self._quick_model() if quick else None
            )
            if gen.error is None and gen.text is not None:
                if level != ladder.level:
                    ladder.step_down(level, (first.error if first is not None else "") or "")
                ladder.confirmed = True
                return gen
            first = first or gen
            err = gen.error or ""
            if not (_HTTP_ERROR.search(err) or _FORMAT_REJECTED.search(err)):
                break  # a refused connection or a timeout: no format would help
        ladder.failed_ladders += 1
        if ladder.failed_ladders >= _MAX_FAILED_LADDERS:
            ladder.confirmed = True  # broken, not picky: stop multiplying failed requests
        return first

    async def call(
        self,
        prompt: Prompt[M],
        values: dict[str, Any],
        *,
        key: str,
        context: dict[str, Any] | None = None,
        check: Callable[[M], str | None] | None = None,
    ) -> CallResult[M]:
        """Ask ``prompt`` with ``values``; validate, re-ask on failure, never raise for the model.

        ``key`` names the call in logs. ``context`` goes to the schema's
        validators. ``check`` returns a problem text (re-asked like a
        validation error) or None; if it still fails after the re-asks, the
        last valid answer is returned with ``info.check_failed`` set.
        """
        messages = list(prompt.render(**values))
        info = CallInfo(prompt_id=prompt.id)
        fallback: M | None = None
        last_check: str | None = None
        raw: str | None = None
        for attempt in range(self.max_reasks + 1):
            gen = await self._ask(prompt, messages, f"{key}#{attempt}" if attempt else key)
            if gen.error is not None or gen.text is None:
                # The HTTP client already retried transient faults: this is final.
                info.error = f"request failed: {gen.error}"
                break
            info.attempts += 1
            if gen.cached:
                info.cached += 1
            else:
                info.requests += 1
            if self.on_reply is not None:
                self.on_reply(gen.cached)
            info.prompt_tokens += gen.usage.prompt_tokens or 0
            info.completion_tokens += gen.usage.completion_tokens or 0
            raw = gen.text
            problem, value = self._validate(prompt, gen.text, context)
            if value is not None and check is not None:
                fallback = value
                last_check = check(value)
                problem = last_check
            if problem is None:
                info.error = None
                return CallResult(value, info, raw)
            info.error = problem
            messages += [ChatMessage(role="assistant", content=gen.text), _reask_message(problem)]
        if fallback is not None:
            info.error, info.check_failed = None, last_check
            return CallResult(fallback, info, raw)
        if info.error and info.attempts:
            info.error = f"no valid answer after {info.attempts} replies: {info.error}"
        return CallResult(None, info, raw)

    @staticmethod
    def _validate(
        prompt: Prompt[M], text: str, context: dict[str, Any] | None
    ) -> tuple[str | None, M | None]:
        try:
            data = extract_json(text)
        except ValueError as exc:
            if "{" not in text and _REFUSAL.search(text):
                return f"the model refused: {' '.join(text.split())[:200]}", None
            return str(exc), None
        if not isinstance(data, dict):
            return "the reply must be a JSON object ({...}), not a list or a value", None
        try:
            return None, prompt.schema.model_validate(data, context=context or {})
        except ValidationError as exc:
            return "the JSON does not match the schema:\n" + format_validation_error(exc), None
