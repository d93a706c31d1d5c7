"""The OpenAI-compatible client against a real HTTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.models import load_model
from behaviorsft.models.base import GenerationRequest, Model
from behaviorsft.models.openai_compat import OpenAICompatModel
from behaviorsft.records import ChatMessage
from tests.http_stub import LoopbackServer
from tests.http_stub import Reply as StubReply

SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"


@dataclass
class Reply:
    """One scripted answer: status, raw body (None: a normal completion), headers, delay."""

    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class FakeServer(LoopbackServer):
    """A chat-completions server that follows a script, then echoes the last user message."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.default_delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        super().__init__(self._respond)

    def _respond(self, body: dict[str, Any], headers: Message) -> StubReply:
        with self._lock:
            self.requests.append(body)
            self.auth.append(headers.get("Authorization"))
            reply = self.script.popleft() if self.script else Reply()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(reply.delay_s or self.default_delay_s)
        finally:
            with self._lock:
                self.in_flight -= 1
        payload = reply.body if reply.body is not None else self.completion(body)
        return StubReply(reply.status, payload, reply.headers)

    @staticmethod
    def completion(body: dict[str, Any]) -> bytes:
        last_user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": f"echo: {last_user}"},
            "finish_reason": "stop",
        }
        if body.get("logprobs"):
            top = [("4", 0.6), (" 3", 0.3), ("x", 0.05)]
            choice["logprobs"] = {
                "content": [
                    {
                        "token": "4",
                        "logprob": math.log(0.6),
                        "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in top],
                    }
                ]
            }
        return json.dumps(
            {
                "id": "cmpl-1",
                "object": "chat.completion",
                "choices": [choice],
                "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
            }
        ).encode()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


def _req(text: str, **kw: Any) -> GenerationRequest:
    return GenerationRequest(messages=(ChatMessage(role="user", content=text),), **kw)


def _model(server: FakeServer, **kw: Any) -> OpenAICompatModel:
    options: dict[str, Any] = {"max_retries": 3, "backoff_base_s": 0.01, "timeout_s": 5.0}
    options.update(kw)
    model = load_model("openai-compatible/tiny-chat", base_url=server.base_url, **options)
    assert isinstance(model, OpenAICompatModel)
    return model


def test_scripted_success_in_order_with_usage(server: FakeServer) -> None:
    model = _model(server)
    assert isinstance(model, Model) and model.name == "openai-compatible/tiny-chat"
    done: list[int] = []
    gens = model.generate([_req(f"q{i}", max_new_tokens=7) for i in range(5)], progress=done.append)
    assert [g.text for g in gens] == [f"echo: q{i}" for i in range(5)]
    assert sum(done) == 5
    assert gens[0].usage.prompt_tokens == 11 and gens[0].usage.completion_tokens == 3
    assert gens[0].latency_s is not None and not gens[0].cached
    body = server.requests[0]
    assert body["model"] == "tiny-chat" and body["max_tokens"] == 7
    assert body["temperature"] == 0.0 and body["seed"] == 0
    assert "logprobs" not in body and "continue_final_message" not in body
    # No key configured for a third-party server: none is sent.
    assert server.auth == [None] * 5


def test_429_honours_retry_after(server: FakeServer) -> None:
    server.script.append(Reply(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "1"}))
    delays: list[tuple[int, str, float]] = []
    model = _model(server, on_retry=lambda key, n, why, d: delays.append((n, why, d)))
    gen = model.generate([_req("hello", key="k1")])[0]
    assert gen.text == "echo: hello" and gen.error is None
    assert len(server.requests) == 2
    assert len(delays) == 1
    attempt, reason, delay = delays[0]
    assert attempt == 1 and "429" in reason
    assert delay >= 1.0  # the server's wish, not the 0.01 s backoff base


def test_retry_after_ms_and_http_date_forms() -> None:
    import httpx

    from behaviorsft.models.openai_compat import _parse_retry_after

    assert _parse_retry_after(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert _parse_retry_after(httpx.Headers({"retry-after": "3"})) == 3.0
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert _parse_retry_after(httpx.Headers({"retry-after": past})) == 0.0
    assert _parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert _parse_retry_after(httpx.Headers({})) is None


def test_too_long_retry_after_gives_up(server: FakeServer) -> None:
    server.script.append(Reply(429, b"{}", {"Retry-After": "3600"}))
    gen = _model(server, max_retry_after_s=10).generate([_req("x")])[0]
    assert gen.text is None and gen.error is not None and "3600" in gen.error
    assert len(server.requests) == 1


def test_500_then_success(server: FakeServer) -> None:
    server.script.extend([Reply(500, b"oops"), Reply(503, b"")])
    reasons: list[str] = []
    gen = _model(server, on_retry=lambda k, n, why, d: reasons.append(why)).generate([_req("a")])[0]
    assert gen.text == "echo: a"
    assert len(server.requests) == 3
    assert reasons == ["HTTP 500: oops", "HTTP 503"]  # the body, when there is one


LLAMA_CPP_500 = json.dumps(
    {
        "error": {
            "message": "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
            "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]",
            "type": "internal_server_error",
        }
    }
).encode()


def test_5xx_error_says_what_the_server_replied(server: FakeServer) -> None:
    # llama-cpp-python rejects a json_schema response_format with a 500: only its body
    # tells that apart from a crash.
    server.script.extend([Reply(500, LLAMA_CPP_500)] * 2)
    gen = _model(server, max_retries=1).generate([_req("a")])[0]
    assert gen.error is not None and "HTTP 500" in gen.error
    assert "Input should be 'text' or 'json_object'" in gen.error
    assert "2 attempts" in gen.error


@pytest.mark.parametrize("status", [500, 400])
def test_error_body_excerpt_is_bounded_and_holds_no_key(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setenv("MY_SERVER_KEY", SECRET)
    body = f"upstream said: key {SECRET} was used; " + "x" * 5000
    server.script.append(Reply(status, body.encode()))
    gen = _model(server, max_retries=0, api_key_env="MY_SERVER_KEY").generate([_req("a")])[0]
    assert gen.error is not None and "upstream said" in gen.error
    assert SECRET not in gen.error and "Bearer" not in gen.error
    assert len(gen.error) < 600


def test_4xx_error_keeps_a_body_in_any_json_shape(server: FakeServer) -> None:
    server.script.append(Reply(422, b'{"message": "messages: field required", "code": 17}'))
    gen = _model(server).generate([_req("a")])[0]
    assert gen.error is not None and "messages: field required" in gen.error


def test_retries_are_bounded(server: FakeServer) -> None:
    server.script.extend([Reply(502, b"bad gateway")] * 5)
    gen = _model(server, max_retries=2).generate([_req("a")])[0]
    assert gen.text is None and gen.error is not None
    assert "HTTP 502" in gen.error and "3 attempts" in gen.error
    assert not gen.final  # transient: a later run may succeed
    assert len(server.requests) == 3


def test_timeout_is_retried(server: FakeServer) -> None:
    server.script.append(Reply(delay_s=2.0))
    reasons: list[str] = []
    model = _model(server, timeout_s=0.3, on_retry=lambda k, n, why, d: reasons.append(why))
    gen = model.generate([_req("slow")])[0]
    assert gen.text == "echo: slow"
    assert len(reasons) == 1 and "timed out" in reasons[0]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b'{"id": "x"}', b'{"choices": []}', b"[1, 2]"],
    ids=["malformed", "empty", "no-choices", "empty-choices", "not-object"],
)
def test_malformed_bodies_are_retried(server: FakeServer, body: bytes) -> None:
    server.script.append(Reply(200, body))
    gen = _model(server).generate([_req("m")])[0]
    assert gen.text == "echo: m"
    assert len(server.requests) == 2


def test_extra_body_adds_and_removes_fields(server: FakeServer) -> None:
    model = _model(server, extra_body={"seed": None, "chat_template_kwargs": {"x": 1}})
    assert model.generate([_req("e")])[0].text == "echo: e"
    body = server.requests[0]
    assert "seed" not in body and body["chat_template_kwargs"] == {"x": 1}


def test_400_is_not_retried(server: FakeServer) -> None:
    server.script.append(Reply(400, b'{"error": {"message": "max_tokens is too large: 99999"}}'))
    gen = _model(server).generate([_req("a")])[0]
    assert gen.text is None and gen.error is not None
    assert "HTTP 400" in gen.error and "max_tokens is too large" in gen.error
    assert gen.final  # callers must not ask again
    assert len(server.requests) == 1


def test_404_hints_at_base_url(server: FakeServer) -> None:
    server.script.append(Reply(404, b'{"detail": "Not Found"}'))
    gen = _model(server).generate([_req("a")])[0]
    assert gen.error is not None and "/v1" in gen.error and len(server.requests) == 1


def test_connection_refused_is_an_error_row() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = load_model(
        "openai-compatible/x",
        base_url=f"http://127.0.0.1:{port}/v1",
        max_retries=1,
        backoff_base_s=0.01,
    )
    gen = model.generate([_req("a")])[0]
    assert gen.text is None and gen.error is not None and "connection error" in gen.error


def test_concurrency_bound_is_respected(server: FakeServer) -> None:
    server.default_delay_s = 0.15
    gens = _model(server, concurrency=3).generate([_req(f"c{i}") for i in range(12)])
    assert [g.text for g in gens] == [f"echo: c{i}" for i in range(12)]
    assert server.max_in_flight <= 3
    assert server.max_in_flight >= 2  # requests really did overlap


def test_cache_hit_sends_nothing_and_holds_no_key(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_SERVER_KEY", SECRET)
    cache = tmp_path / "cache"
    reqs = [_req("one"), _req("two", temperature=0.7, seed=1), _req("one", max_new_tokens=3)]
    first = _model(server, cache_dir=cache, api_key_env="MY_SERVER_KEY").generate(reqs)
    assert len(server.requests) == 3
    assert server.auth == [f"Bearer {SECRET}"] * 3
    model = _model(server, cache_dir=cache, api_key_env="MY_SERVER_KEY")
    again = model.generate(reqs)
    model.close()
    assert len(server.requests) == 3  # all three answered from the cache
    assert [g.text for g in again] == [g.text for g in first]
    assert all(g.cached for g in again) and not any(g.cached for g in first)
    assert again[0].usage == first[0].usage
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert SECRET.encode() not in path.read_bytes()
    assert SECRET not in repr(model)


def test_errors_are_not_cached(server: FakeServer, tmp_path: Path) -> None:
    server.script.append(Reply(400, b'{"error": {"message": "bad"}}'))
    model = _model(server, cache_dir=tmp_path)
    assert model.generate([_req("a")])[0].error is not None
    assert model.generate([_req("a")])[0].text == "echo: a"
    assert len(server.requests) == 2


def test_auth_failure_never_echoes_the_key(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    msg = json.dumps({"error": {"message": f"Incorrect API key provided: {SECRET}"}})
    server.script.extend([Reply(500, b"{}"), Reply(401, msg.encode())])
    caplog.set_level("DEBUG")
    model = load_model("openai/gpt-test", base_url=server.base_url, backoff_base_s=0.01)
    gen = model.generate([_req("a")])[0]
    assert server.auth[0] == f"Bearer {SECRET}"
    assert gen.error is not None and "401" in gen.error and "OPENAI_API_KEY" in gen.error
    assert SECRET not in gen.error
    assert SECRET not in caplog.text
    assert server.requests[0]["max_completion_tokens"] == 512


def test_openai_needs_a_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        load_model("openai/gpt-4o-mini")
    with pytest.raises(ValueError, match="GEMINI_API_KEY"):
        load_model(
            "openai-compatible/gemini-2.0-flash",
            base_url="http://127.0.0.1:9/v1",
            api_key_env="GEMINI_API_KEY",
        )


def test_openai_compatible_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match="--base-url"):
        load_model("openai-compatible/llama3")
    with pytest.raises(ValueError, match="http"):
        load_model("openai-compatible/llama3", base_url="localhost:8000/v1")


def test_track_tokens_reads_top_logprobs(server: FakeServer) -> None:
    gen = _model(server).generate([_req("rate it", track_tokens=("3", "4", "5"))])[0]
    body = server.requests[0]
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    assert gen.token_probs is not None
    assert gen.token_probs["4"] == pytest.approx(0.6)
    assert gen.token_probs["3"] == pytest.approx(0.3)  # " 3" counted as "3"
    assert gen.token_probs["5"] == 0.0  # outside the top-k


def test_assistant_prefix_uses_continue_final_message(server: FakeServer) -> None:
    gen = _model(server).generate([_req("q", assistant_prefix="<proactive>")])[0]
    body = server.requests[0]
    assert body["messages"][-1] == {"role": "assistant", "content": "<proactive>"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert gen.text == "<proactive>echo: q"
    plain = _model(server, prefill="assistant_message").generate(
        [_req("q", assistant_prefix="<answer>")]
    )[0]
    assert "continue_final_message" not in server.requests[1]
    assert server.requests[1]["messages"][-1]["content"] == "<answer>"
    assert plain.text == "<answer>echo: q"


def test_openai_rejects_assistant_prefix(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    model = load_model("openai/gpt-test", base_url=server.base_url)
    with pytest.raises(ValueError, match="prefix"):
        model.generate([_req("q", assistant_prefix="<proactive>")])
    assert server.requests == []


def test_sync_generate_inside_a_running_event_loop(server: FakeServer) -> None:
    model = _model(server)

    async def notebook_cell() -> list[str | None]:
        return [g.text for g in model.generate([_req("in loop")])]

    assert asyncio.run(notebook_cell()) == ["echo: in loop"]


def test_async_api_shares_one_concurrency_bound(server: FakeServer) -> None:
    server.default_delay_s = 0.1
    model = _model(server, concurrency=2)

    async def judge() -> list[list[str | None]]:
        try:
            batches = await asyncio.gather(
                *(model.agenerate([_req(f"b{b}-{i}") for i in range(3)]) for b in range(3))
            )
            return [[g.text for g in batch] for batch in batches]
        finally:
            await model.aclose()

    texts = asyncio.run(judge())
    assert texts == [[f"echo: b{b}-{i}" for i in range(3)] for b in range(3)]
    assert server.max_in_flight <= 2


def test_choice_scoring_is_not_offered(server: FakeServer) -> None:
    model = _model(server)
    assert model.supports_choice_scoring is False
    with pytest.raises(NotImplementedError, match="hf/"):
        model.score_choices([])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fail_fast_raises_at_once_when_nothing_listens() -> None:
    from behaviorsft.models.openai_compat import EndpointUnreachableError

    retries: list[str] = []
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    model = load_model(
        "openai-compatible/x",
        base_url=base_url,
        max_retries=5,
        backoff_base_s=10.0,
        fail_fast=True,
        on_retry=lambda k, n, why, d: retries.append(why),
    )
    with pytest.raises(EndpointUnreachableError, match=f"nothing answers at {base_url}"):
        model.generate([_req("a"), _req("b")])
    assert retries == []  # no backoff was waited for


def test_fail_fast_retries_once_the_endpoint_has_answered(server: FakeServer) -> None:
    model = _model(server, fail_fast=True, max_retries=1)
    assert model.generate([_req("a")])[0].text == "echo: a"
    server.close()  # the server goes away mid-run: a transient fault now
    gen = model.generate([_req("b")])[0]
    assert gen.text is None and gen.error is not None and "connection error" in gen.error


def test_timeouts_lower_the_concurrency_once_per_level(server: FakeServer) -> None:
    notices: list[str] = []
    server.script.extend([Reply(delay_s=1.0)] * 4)  # the first 4 requests time out
    model = _model(server, concurrency=4, timeout_s=0.3, on_notice=notices.append)
    gens = model.generate([_req(f"t{i}") for i in range(4)])
    assert [g.text for g in gens] == [f"echo: t{i}" for i in range(4)]
    # four requests timed out together at concurrency 4: lowered once, not four times
    assert model.concurrency_now == 2
    assert len(notices) == 1 and "lowering concurrency from 4 to 2" in notices[0]
    assert "concurrency" in notices[0] and "timeout_s" in notices[0]
