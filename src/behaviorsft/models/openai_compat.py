"""One client for the OpenAI API and every OpenAI-compatible chat endpoint.

Used for ``openai/<model>`` (https://api.openai.com/v1) and
``openai-compatible/<model>`` with a ``base_url`` (vLLM serve, SGLang, Ollama,
llama.cpp server, a LiteLLM proxy, Gemini's compatible endpoint). It is also
the client the LLM-driven builder and the G-Eval judge reuse, through the
async :meth:`OpenAICompatModel.agenerate`.

Why plain ``httpx`` and not the ``openai`` SDK: the retry policy is ours to
state and test (which faults are transient, ``Retry-After``, malformed bodies,
a bounded number of attempts), and the SDK layers its own retries and
exception types on top; vLLM-only request fields (``continue_final_message``)
go in the JSON body as they are; and the request body we send is exactly the
thing we hash for the cache. ``httpx`` is already a core dependency.

Rules this module keeps:

* the API key is read from the environment only, sent only in the
  ``Authorization`` header, and never written to a cache, log or error text;
* only transient faults are retried (429 honouring ``Retry-After``, 408/409,
  5xx, timeouts, connection errors, bodies that are not the JSON of a chat
  completion), with exponential backoff and full jitter, a bounded number of
  times; any other 4xx fails at once;
* a request that still fails becomes a ``Generation`` with ``error`` set,
  never an exception that loses the rest of the batch and never a fake answer;
  the error quotes what the server replied (at most 300 characters of the
  reply body, on 4xx and 5xx alike), never the request or its headers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import hashlib
import json
import logging
import math
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from behaviorsft.models.base import (
    ChoiceRequest,
    ChoiceScores,
    Generation,
    GenerationRequest,
    ProgressCallback,
)
from behaviorsft.records import Usage

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
CACHE_FILE = "responses.sqlite"
# Bump when the cached payload or the key derivation changes, so old entries
# are not misread.
CACHE_VERSION = 1
# 408 request timeout, 409 lock conflict (OpenAI documents it as retryable),
# 425 too early, 429 rate limit; every 5xx is also transient.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
# How much of an error reply's body an error message quotes.
ERROR_BODY_CHARS = 300

PrefillMode = Literal["continue_final_message", "assistant_message"]
RetryCallback = Callable[[str, int, str, float], None]
"""``on_retry(request_key, attempt, reason, delay_s)``: called before each backoff sleep."""
NoticeCallback = Callable[[str], None]
"""``on_notice(message)``: called when the client changes how it sends (concurrency lowered)."""

T = TypeVar("T")


class EndpointUnreachableError(ConnectionError):
    """Nothing answers at the endpoint: the first requests were refused or found no host.

    Raised instead of retrying for minutes, so a wrong ``--base-url`` or a server
    that is not running is reported at once. After the endpoint has answered
    once, a refused connection is a transient fault and retried like others.
    """


class _Fatal(Exception):
    """A request that will not succeed: its message becomes ``Generation.error``.

    ``final``: the server refused the request itself (a non-transient 4xx), so a
    later attempt with the same request fails the same way; False when we only
    ran out of retries for a transient fault.
    """

    def __init__(self, reason: str, *, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final


class _Transient(Exception):
    """A fault worth another attempt; ``retry_after`` is the server's wish, if any.

    ``kind``: ``"timeout"`` (no reply in time), ``"connect"`` (no connection could
    be made: refused, no such host) or ``""`` (anything else).
    """

    def __init__(self, reason: str, retry_after: float | None = None, kind: str = "") -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.kind = kind


@dataclass
class _Reply:
    """What we keep of one chat completion (also the cached payload)."""

    content: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    top_logprobs: list[tuple[str, float]] | None
    latency_s: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "content": self.content,
                "finish_reason": self.finish_reason,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "top_logprobs": self.top_logprobs,
                "latency_s": self.latency_s,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> _Reply:
        d = json.loads(text)
        top = d.get("top_logprobs")
        return cls(
            content=d.get("content"),
            finish_reason=d.get("finish_reason"),
            prompt_tokens=d.get("prompt_tokens"),
            completion_tokens=d.get("completion_tokens"),
            top_logprobs=[(str(t), float(lp)) for t, lp in top] if top is not None else None,
            latency_s=float(d.get("latency_s") or 0.0),
        )


def run_sync(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    Inside an already running event loop (Jupyter, an async web handler)
    ``asyncio.run`` is not allowed, so the coroutine then runs on a fresh loop
    in a worker thread and this call blocks until it is done.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


def _parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, then ``Retry-After``."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the HTTP-date form
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _parse_completion(resp: httpx.Response, latency_s: float) -> _Reply:
    """Read a chat completion; anything that is not one is a transient fault."""
    if not resp.content.strip():
        raise _Transient("empty response body")
    try:
        data = resp.json()
    except ValueError:
        raise _Transient("response body is not JSON") from None
    if not isinstance(data, dict):
        raise _Transient("response body is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        # Some proxies answer 200 with {"error": ...} when the upstream failed.
        detail = data.get("error")
        raise _Transient(f"response has no choices{f' (error: {detail})' if detail else ''}")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _Transient("response choice has no message")
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text parts in order
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    elif content is not None and not isinstance(content, str):
        raise _Transient("message content is neither text nor null")
    raw_usage = data.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    return _Reply(
        content=content,
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
        top_logprobs=_first_top_logprobs(choice.get("logprobs")),
        latency_s=latency_s,
    )


def _connect_detail(exc: BaseException) -> str:
    """The operating system's reason for a failed connection ('Connection refused'), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            # asyncio words a refused connection 'Connect call failed (host, port)'
            if seen.errno and seen.errno > 0:
                return os.strerror(seen.errno)
            return str(seen.strerror)
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


def _rejects_response_format(error: str) -> bool:
    """Whether a fatal HTTP error says the endpoint does not take ``response_format``."""
    low = error.lower()
    return low.startswith(("http 400", "http 422")) and (
        "response_format" in low or "json_schema" in low
    )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _first_top_logprobs(logprobs: object) -> list[tuple[str, float]] | None:
    """(token, logprob) pairs at the first generated position, or None if not returned."""
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return None
    first = content[0]
    pairs: list[tuple[str, float]] = []
    for item in first.get("top_logprobs") or []:
        if isinstance(item, dict) and isinstance(item.get("token"), str):
            lp = item.get("logprob")
            if isinstance(lp, (int, float)) and math.isfinite(lp):
                pairs.append((item["token"], float(lp)))
    sampled = first.get("token")
    if isinstance(sampled, str) and all(t != sampled for t, _ in pairs):
        lp = first.get("logprob")
        if isinstance(lp, (int, float)) and math.isfinite(lp):
            pairs.append((sampled, float(lp)))
    return pairs


def token_probs_from_top(
    top: list[tuple[str, float]] | None, tracked: Sequence[str]
) -> dict[str, float] | None:
    """Probability of each tracked token at the first position, from top logprobs.

    Whitespace variants are summed (a judge's ``"4"`` may come back as ``" 4"``).
    A tracked token outside the returned top-k gets 0.0: its true probability is
    below the smallest one listed. None when the endpoint returned no logprobs.
    """
    if not tracked or top is None:
        return None
    out: dict[str, float] = {}
    for want in tracked:
        key = want.strip() or want
        out[want] = sum(math.exp(lp) for tok, lp in top if (tok.strip() or tok) == key)
    return out


class _CacheDB:
    """Successful replies on disk (SQLite), keyed by a hash of endpoint + request body.

    The request body holds no credentials, so neither does the cache. WAL mode
    lets several evaluation processes share one cache folder.
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CACHE_FILE
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, "
                "created REAL, reply TEXT)"
            )
            conn.commit()
            self._conn = conn
        return self._conn

    def get(self, key: str) -> _Reply | None:
        with self._lock:
            row = (
                self._connect()
                .execute("SELECT reply FROM responses WHERE key = ?", (key,))
                .fetchone()
            )
        if row is None:
            return None
        try:
            return _Reply.from_json(row[0])
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring an unreadable cache entry in %s", self.path)
            return None

    def put(self, key: str, model: str, reply: _Reply) -> None:
        with self._lock:
            conn = self._connect()
            conn.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                (key, model, time.time(), reply.to_json()),
            )
            conn.commit()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# Connections per httpx client. httpcore's pool scans all its connections for
# every queued request, so one client with 64+ connections spends more CPU
# than the requests take (measured by benchmarks/bench_llm_pipeline.py); several
# small pools, used in turn, keep that cost flat as concurrency grows.
POOL_SHARD = 8


class _Limiter:
    """At most ``limit()`` requests in flight; the limit may drop while requests wait."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self._active = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self._active < self._limit())
            self._active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self._active -= 1
            self._cond.notify_all()


@dataclass
class _LoopState:
    """HTTP clients and concurrency bound of one event loop (neither may cross loops)."""

    clients: list[httpx.AsyncClient]
    semaphore: _Limiter
    turn: int = 0

    def client(self) -> httpx.AsyncClient:
        """The next client, in turn."""
        self.turn = (self.turn + 1) % len(self.clients)
        return self.clients[self.turn]


class OpenAICompatModel:
    """Chat completions over HTTP: bounded concurrency, bounded retries, on-disk cache.

    Options (all keyword): ``base_url`` (required for ``openai-compatible``);
    ``api_key_env`` (environment variable holding the key; default
    ``OPENAI_API_KEY`` for ``openai``, none for ``openai-compatible`` so a
    real OpenAI key is never sent to a third-party server by accident);
    ``cache_dir`` (None: no cache); ``concurrency`` (requests in flight);
    ``max_retries`` (extra attempts after the first, transient faults only);
    ``timeout_s`` (per attempt); ``backoff_base_s``/``backoff_max_s``
    (exponential backoff with full jitter); ``max_retry_after_s`` (a longer
    ``Retry-After`` gives up instead of sleeping); ``prefill`` (how
    ``assistant_prefix`` is sent to an openai-compatible server);
    ``top_logprobs`` (top-k asked for when tokens are tracked); ``extra_body``
    (merged into every request body, e.g. ``{"chat_template_kwargs": ...}``;
    a None value removes that field, e.g. ``{"seed": None}``);
    ``on_retry`` (callback before each backoff sleep); ``json_schema``
    (send a request's ``response_format``; False for endpoints that reject it.
    An endpoint that answers 400/422 naming ``response_format`` is detected and
    the request re-sent without it, so this is rarely needed); ``fail_fast``
    (raise :class:`EndpointUnreachableError` when no connection can be made
    before the endpoint has ever answered, instead of retrying: a wrong URL or
    a server that is not running); ``adaptive_concurrency`` (halve the requests
    in flight when requests time out, down to 1: a server that handles fewer
    requests at once than we send queues the rest past the timeout);
    ``on_notice`` (callback with a message when the concurrency is lowered).
    """

    supports_choice_scoring = False

    def __init__(
        self,
        model: str,
        *,
        provider: Literal["openai", "openai-compatible"] = "openai-compatible",
        base_url: str | None = None,
        api_key_env: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout_s: float = 120.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        max_retry_after_s: float = 300.0,
        prefill: PrefillMode = "continue_final_message",
        top_logprobs: int = 20,
        extra_body: dict[str, Any] | None = None,
        on_retry: RetryCallback | None = None,
        json_schema: bool = True,
        fail_fast: bool = False,
        adaptive_concurrency: bool = True,
        on_notice: NoticeCallback | None = None,
    ) -> None:
        if provider not in ("openai", "openai-compatible"):
            raise ValueError(f"provider {provider!r}: expected 'openai' or 'openai-compatible'")
        if not model:
            raise ValueError("model name is empty")
        if concurrency < 1:
            raise ValueError(f"concurrency: {concurrency} given, need >= 1")
        if max_retries < 0:
            raise ValueError(f"max_retries: {max_retries} given, need >= 0")
        if prefill not in ("continue_final_message", "assistant_message"):
            raise ValueError(
                f"prefill: {prefill!r}; use 'continue_final_message' (vLLM, SGLang) "
                "or 'assistant_message' (llama.cpp server, LiteLLM to Anthropic)"
            )
        if base_url is None:
            if provider == "openai-compatible":
                raise ValueError(
                    f"openai-compatible/{model}: give --base-url, e.g. http://localhost:8000/v1 "
                    "(vLLM serve), http://localhost:11434/v1 (Ollama), "
                    "http://localhost:8080/v1 (llama.cpp server)"
                )
            base_url = OPENAI_BASE_URL
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {base_url!r}: must start with http:// or https://")
        self.provider = provider
        self.model = model
        self.name = f"{provider}/{model}"
        self.base_url = base_url.rstrip("/")
        self.endpoint = f"{self.base_url}/chat/completions"
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self.prefill = prefill
        self.top_logprobs = top_logprobs
        self.extra_body = dict(extra_body or {})
        self.on_retry = on_retry
        self.json_schema = json_schema
        self.fail_fast = fail_fast
        self.adaptive_concurrency = adaptive_concurrency
        self.on_notice = on_notice
        # Requests in flight now: starts at `concurrency`, halved on timeouts.
        self.concurrency_now = concurrency
        self._answered = False  # the endpoint has sent at least one HTTP response
        # Flipped off when the endpoint rejects response_format; the cache key
        # still hashes the intended body, so a re-run finds those replies.
        self._response_format_ok = True
        self._key_env = api_key_env or (DEFAULT_KEY_ENV if provider == "openai" else None)
        self._api_key = os.environ.get(self._key_env) if self._key_env else None
        if self._key_env and not self._api_key and (provider == "openai" or api_key_env):
            raise ValueError(
                f"{self.name}: the environment variable {self._key_env} is not set; "
                f"export {self._key_env}=... (keys are read from the environment only)"
            )
        self._cache = _CacheDB(Path(cache_dir)) if cache_dir is not None else None
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._rng = random.Random()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAICompatModel({self.name!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------------ requests

    def request_body(self, req: GenerationRequest) -> dict[str, Any]:
        """The JSON body sent for ``req`` (also what the cache key hashes)."""
        messages: list[dict[str, str]] = [
            {"role": m.role, "content": m.content} for m in req.messages
        ]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "seed": req.seed,
        }
        # OpenAI deprecated max_tokens (reasoning models reject it); many local
        # servers only know max_tokens.
        body["max_completion_tokens" if self.provider == "openai" else "max_tokens"] = (
            req.max_new_tokens
        )
        if req.stop:
            body["stop"] = list(req.stop)
        if req.track_tokens:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        if req.assistant_prefix:
            if self.provider == "openai":
                raise ValueError(
                    f"{self.name}: the OpenAI API cannot start the assistant's reply with a "
                    f"given prefix ({req.assistant_prefix!r}); run the model behind an "
                    "openai-compatible server (vLLM) or drop the forced prefix "
                    "(e.g. --behavior auto)"
                )
            messages.append({"role": "assistant", "content": req.assistant_prefix})
            if self.prefill == "continue_final_message":
                # vLLM / SGLang: render the last assistant message open-ended.
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
        if req.response_format is not None and self.json_schema:
            body["response_format"] = req.response_format
        for key, value in self.extra_body.items():
            # None removes a field a server rejects (e.g. {"seed": None}).
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return body

    def cache_key(self, body: dict[str, Any]) -> str:
        """Hash of endpoint + request body (model, messages, sampling parameters)."""
        blob = json.dumps(
            {"v": CACHE_VERSION, "endpoint": self.endpoint, "body": body},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------ public API

    def generate(
        self, requests: Sequence[GenerationRequest], *, progress: ProgressCallback | None = None
    ) -> list[Generation]:
        """Synchronous :meth:`agenerate`; safe to call from inside a running event loop."""

        async def run() -> list[Generation]:
            try:
                return await self.agenerate(requests, progress=progress)
            finally:
                await self.aclose()

        return run_sync(run)

    async def agenerate(
        self, requests: Sequence[GenerationRequest], *, progress: ProgressCallback | None = None
    ) -> list[Generation]:
        """One Generation per request, in order; at most ``concurrency`` in flight.

        Call :meth:`aclose` when done with the model on this event loop.
        """
        bodies = [self.request_body(r) for r in requests]  # config errors raise before any call

        async def one(req: GenerationRequest, body: dict[str, Any]) -> Generation:
            gen = await self._generate_one(req, body)
            if progress is not None:
                progress(1)
            return gen

        pairs = zip(requests, bodies, strict=True)
        return list(await asyncio.gather(*(one(r, b) for r, b in pairs)))

    def score_choices(
        self, requests: Sequence[ChoiceRequest], *, progress: ProgressCallback | None = None
    ) -> list[ChoiceScores]:
        """Not available over HTTP: chat endpoints do not expose full next-token logits."""
        raise NotImplementedError(
            f"{self.name}: choice scoring needs the model's logits; use an hf/ model, "
            "or generation mode for API models"
        )

    async def aclose(self) -> None:
        """Close this event loop's HTTP client."""
        loop = asyncio.get_running_loop()
        state = self._loops.pop(loop, None)
        if state is not None:
            for client in state.clients:
                await client.aclose()

    def close(self) -> None:
        """Close the cache. (The sync :meth:`generate` closes its HTTP client itself.)"""
        if self._cache is not None:
            self._cache.close()

    # ------------------------------------------------------------------ internals

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            shards = -(-self.concurrency // POOL_SHARD)
            per_shard = -(-self.concurrency // shards)
            state = _LoopState(
                clients=[
                    httpx.AsyncClient(
                        headers=headers,
                        timeout=httpx.Timeout(self.timeout_s),
                        limits=httpx.Limits(max_connections=per_shard),
                    )
                    for _ in range(shards)
                ],
                semaphore=_Limiter(lambda: self.concurrency_now),
            )
            self._loops[loop] = state
        return state

    async def _generate_one(self, req: GenerationRequest, body: dict[str, Any]) -> Generation:
        key = self.cache_key(body)
        if self._cache is not None:
            hit = await asyncio.to_thread(self._cache.get, key)
            if hit is not None:
                return self._to_generation(req, hit, cached=True)
        send = body
        if not self._response_format_ok and "response_format" in body:
            send = {k: v for k, v in body.items() if k != "response_format"}
        try:
            reply = await self._post_with_retries(send, req.key or key[:12])
        except _Fatal as e:
            if send is body and "response_format" in body and _rejects_response_format(str(e)):
                # Structured output is an optional extra: the prompt also asks
                # for JSON in text, so fall back instead of failing the batch.
                if self._response_format_ok:
                    log.warning(
                        "%s rejects response_format (%s); sending JSON-in-text requests",
                        self.endpoint,
                        str(e)[:200],
                    )
                self._response_format_ok = False
                send = {k: v for k, v in body.items() if k != "response_format"}
                try:
                    reply = await self._post_with_retries(send, req.key or key[:12])
                except _Fatal as e2:
                    return Generation(text=None, error=self._redact(str(e2)), final=e2.final)
            else:
                return Generation(text=None, error=self._redact(str(e)), final=e.final)
        if reply.content is None and reply.finish_reason == "content_filter":
            return Generation(text=None, error="the provider's content filter withheld the reply")
        if self._cache is not None:
            await asyncio.to_thread(self._cache.put, key, self.name, reply)
        return self._to_generation(req, reply, cached=False)

    def _to_generation(self, req: GenerationRequest, reply: _Reply, *, cached: bool) -> Generation:
        # Servers return only the continuation after a prefill; the contract is
        # that the text starts with the forced prefix.
        text = req.assistant_prefix + (reply.content or "")
        return Generation(
            text=text,
            usage=Usage(
                prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens
            ),
            latency_s=reply.latency_s,
            token_probs=token_probs_from_top(reply.top_logprobs, req.track_tokens),
            cached=cached,
        )

    async def _post_with_retries(self, body: dict[str, Any], label: str) -> _Reply:
        state = self._state()
        attempt = 0
        while True:
            started_at = self.concurrency_now
            try:
                async with state.semaphore:
                    return await self._post_once(state.client(), body)
            except _Transient as fault:
                if fault.kind == "connect" and self.fail_fast and not self._answered:
                    raise EndpointUnreachableError(
                        f"nothing answers at {self.base_url} ({fault}); is the server running, "
                        "and is --base-url right (host, port, and the API root, usually /v1)?"
                    ) from None
                if fault.kind == "timeout":
                    self._lower_concurrency(started_at)
                if attempt >= self.max_retries:
                    hint = ""
                    if fault.kind == "timeout":
                        hint = (
                            f"; the server took longer than timeout_s={self.timeout_s:g}s: "
                            "raise timeout_s, or lower the concurrency to what the server "
                            "handles at once"
                        )
                    raise _Fatal(f"{fault} (gave up after {attempt + 1} attempts){hint}") from None
                delay = self._delay(attempt, fault.retry_after)
                if delay is None:
                    raise _Fatal(
                        f"{fault}: the server asks to wait {fault.retry_after:.0f}s, more than "
                        f"max_retry_after_s={self.max_retry_after_s:.0f}"
                    ) from None
                log.info(
                    "%s: %s; retry %d/%d in %.2fs",
                    label,
                    fault,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                if self.on_retry is not None:
                    self.on_retry(label, attempt + 1, str(fault), delay)
                await asyncio.sleep(delay)
                attempt += 1

    def _lower_concurrency(self, started_at: int) -> None:
        """Halve the requests in flight after a timeout (once per level, down to 1)."""
        if not self.adaptive_concurrency or started_at != self.concurrency_now:
            return  # already lowered since this request started
        if self.concurrency_now <= 1:
            return
        new = max(1, self.concurrency_now // 2)
        message = (
            f"{self.endpoint}: requests time out after {self.timeout_s:g}s with "
            f"{self.concurrency_now} in flight; lowering concurrency from "
            f"{self.concurrency_now} to {new}. A server that handles fewer requests at once "
            "queues the rest: set the concurrency to what it serves in parallel (eval: "
            "--option concurrency=N, judge: --concurrency N), or raise the per-request "
            "limit (--option timeout_s=S) if single replies are slow."
        )
        self.concurrency_now = new
        if self.on_notice is not None:
            self.on_notice(message)
        else:
            log.warning("%s", message)

    async def _post_once(self, client: httpx.AsyncClient, body: dict[str, Any]) -> _Reply:
        t0 = time.perf_counter()
        try:
            resp = await client.post(self.endpoint, json=body)
        except httpx.TimeoutException:
            raise _Transient(f"timed out after {self.timeout_s:g}s", kind="timeout") from None
        except httpx.ConnectError as e:
            raise _Transient(f"connection error ({_connect_detail(e)})", kind="connect") from None
        except httpx.TransportError as e:
            raise _Transient(f"connection error ({type(e).__name__})") from None
        self._answered = True
        latency = time.perf_counter() - t0
        code = resp.status_code
        if code == 200:
            return _parse_completion(resp, latency)
        if code in RETRYABLE_STATUS or code >= 500:
            # The body tells a crash from a rejected request (llama-cpp-python answers
            # an unsupported response_format with a 500 naming it).
            detail = self._reply_excerpt(resp)
            raise _Transient(
                f"HTTP {code}: {detail}" if detail else f"HTTP {code}",
                _parse_retry_after(resp.headers),
            )
        raise _Fatal(self._describe_http_error(resp), final=True)

    def _delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Backoff before attempt ``attempt + 1``: full jitter, or the server's Retry-After."""
        if retry_after is not None:
            if retry_after > self.max_retry_after_s:
                return None
            # A little jitter on top, so many clients told the same time do not
            # all come back in the same instant.
            return retry_after + self._rng.uniform(0, self.backoff_base_s)
        cap = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return self._rng.uniform(0, cap)

    def _describe_http_error(self, resp: httpx.Response) -> str:
        code = resp.status_code
        if code in (401, 403):
            # Providers echo (part of) a bad key in the message: never repeat it.
            where = f"${self._key_env}" if self._key_env else "--api-key-env"
            return f"HTTP {code} from {self.endpoint}: authentication failed (check {where})"
        detail = self._reply_excerpt(resp)
        hint = ""
        if code == 404:
            hint = " (check the model name and that base_url ends with the API root, usually '/v1')"
        return f"HTTP {code} from {self.endpoint}: {detail or resp.reason_phrase}{hint}"

    def _reply_excerpt(self, resp: httpx.Response) -> str:
        """What the server said in an error reply, on one line, at most ERROR_BODY_CHARS.

        The error message of a JSON body (``{"error": {"message": ...}}``,
        ``{"detail": ...}``, ``{"message": ...}``), else the body itself. Only the
        reply is quoted, never the request or its headers, and the key is
        redacted in case the server echoes it.
        """
        detail = ""
        try:
            data = resp.json()
        except ValueError:
            detail = resp.text
        else:
            err = data.get("error") if isinstance(data, dict) else None
            if isinstance(err, dict):
                detail = str(err.get("message") or err)
            elif err is not None:
                detail = str(err)
            elif isinstance(data, dict) and "detail" in data:  # FastAPI-style servers
                detail = str(data["detail"])
            elif isinstance(data, dict) and "message" in data:
                detail = str(data["message"])
            elif data is not None:
                detail = resp.text
        detail = self._redact(" ".join(detail.split()))
        if len(detail) > ERROR_BODY_CHARS:
            detail = detail[: ERROR_BODY_CHARS - 3] + "..."
        return detail

    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return text
