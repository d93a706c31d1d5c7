"""Structured calls: JSON extraction, re-asks with the validation error, response_format."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.build.llm.client import Prices, StructuredClient, extract_json
from behaviorsft.build.llm.prompts import SUMMARY, TASK, Prompt, find_span
from behaviorsft.build.llm.stages import answer_is_longest, length_problem, select_distractors
from behaviorsft.models import load_model
from behaviorsft.models.base import GenerationRequest
from behaviorsft.models.openai_compat import OpenAICompatModel
from behaviorsft.records import ChatMessage
from behaviorsft.taxonomy import TaskType
from tests.build_llm.conftest import ScriptedLLM, write_text_cases

SOURCE = "A 54-year-old man.\nPotassium   6.8 mmol/L on admission.\nHe takes lisinopril daily."


def _model(server: ScriptedLLM, tmp_path: Path, **kw: Any) -> OpenAICompatModel:
    m = load_model(
        "openai-compatible/scripted",
        base_url=server.base_url,
        cache_dir=tmp_path / "cache",
        backoff_base_s=0.01,
        timeout_s=5.0,
        **kw,
    )
    assert isinstance(m, OpenAICompatModel)
    return m


def _summary_call(model: OpenAICompatModel, **kw: Any) -> Any:
    client = StructuredClient(model, **kw)

    async def go() -> Any:
        try:
            return await client.call(
                SUMMARY,
                {"case_id": "c1", "source": SOURCE},
                key="c1",
                context={"source": SOURCE},
            )
        finally:
            await model.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('Here you go: {"a": {"b": 2}} Hope this helps.', {"a": {"b": 2}}),
        ("  [1, 2]  ", [1, 2]),
    ],
)
def test_extract_json_reads_messy_replies(text: str, expected: Any) -> None:
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ('{"facts": [{"text": "x", "quo', "cut off"),
        ("I'm sorry, I can't help with that.", "no JSON object"),
    ],
)
def test_extract_json_explains_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extract_json(text)


def test_find_span_ignores_case_and_spacing() -> None:
    # "A 54-year-old man.\n" is 19 characters; the span keeps the source's own spacing.
    assert find_span(SOURCE, "potassium 6.8 mmol/L") == (19, 41)
    assert SOURCE[19:41] == "Potassium   6.8 mmol/L"
    assert find_span(SOURCE, "sodium 140") is None


def test_reask_sends_the_validation_error_and_counts_every_reply(
    llm_server: ScriptedLLM, tmp_path: Path
) -> None:
    llm_server.inject("summary", "invalid")
    res = _summary_call(_model(llm_server, tmp_path))
    assert res.ok and res.info.attempts == 2 and res.info.requests == 2
    reask = llm_server.requests[1]["messages"]
    assert reask[-2]["role"] == "assistant" and reask[-1]["role"] == "user"
    assert "does not match the schema" in reask[-1]["content"]
    assert "facts" in reask[-1]["content"]
    assert res.info.prompt_tokens + res.info.completion_tokens == llm_server.usage_served


def test_refusal_is_recorded_after_the_reasks(llm_server: ScriptedLLM, tmp_path: Path) -> None:
    llm_server.inject("summary", "refusal", times=3)
    res = _summary_call(_model(llm_server, tmp_path), max_reasks=2)
    assert not res.ok and llm_server.count == 3
    assert res.info.error is not None and "refused" in res.info.error
    assert "after 3 replies" in res.info.error


def test_quote_not_in_source_is_rejected_with_its_index() -> None:
    bad = {
        "facts": [
            {"section": "history", "text": "x", "quote": "Potassium 6.8 mmol/L"},
            {"section": "history", "text": "y", "quote": "sodium 131"},
            {"section": "history", "text": "z", "quote": "He takes lisinopril"},
        ]
    }
    with pytest.raises(ValueError, match=r"facts \[1\]"):
        SUMMARY.schema.model_validate(bad, context={"source": SOURCE})


def test_request_body_gains_response_format_only_when_asked(tmp_path: Path) -> None:
    m = load_model("openai-compatible/x", base_url="http://127.0.0.1:9/v1")
    assert isinstance(m, OpenAICompatModel)
    msgs = (ChatMessage(role="user", content="hi"),)
    plain = m.request_body(GenerationRequest(messages=msgs))
    # Exactly the body (and so the cache key) of before response_format existed.
    assert plain == {
        "model": "x",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": 0,
        "max_tokens": 512,
    }
    rf = SUMMARY.response_format()
    with_rf = m.request_body(GenerationRequest(messages=msgs, response_format=rf))
    assert with_rf["response_format"]["json_schema"]["name"] == "summary"
    assert m.cache_key(with_rf) != m.cache_key(plain)
    off = load_model("openai-compatible/x", base_url="http://127.0.0.1:9/v1", json_schema=False)
    assert isinstance(off, OpenAICompatModel)
    assert "response_format" not in off.request_body(
        GenerationRequest(messages=msgs, response_format=rf)
    )


def test_endpoint_rejecting_response_format_falls_back_to_json_in_text(
    llm_server: ScriptedLLM, tmp_path: Path
) -> None:
    llm_server.inject("summary", "400rf", times=99)
    res = _summary_call(_model(llm_server, tmp_path))
    assert res.ok
    assert "response_format" in llm_server.requests[0]
    assert "response_format" not in llm_server.requests[1]
    # Cached under the intended body: a new client asks nothing.
    n = llm_server.count
    again = _summary_call(_model(llm_server, tmp_path))
    assert again.ok and again.info.cached == 1 and llm_server.count in (n, n + 1)


def test_prompt_placeholders_are_checked() -> None:
    with pytest.raises(KeyError, match="missing values"):
        TASK.render(task_type="fact_retrieval")
    with pytest.raises(ValueError, match="plain names"):
        Prompt(name="bad", version=1, system="s", user="{a.b}", schema=SUMMARY.schema)


def test_prices_and_length_rules() -> None:
    assert Prices(input_per_m=0.15, output_per_m=0.6).cost(1_000_000, 500_000) == pytest.approx(
        0.45
    )
    assert not Prices().known
    correct = "x" * 40
    assert length_problem(correct, ["y" * 10] * 6, 4) is not None  # answer is the longest
    assert length_problem(correct, ["y" * 50, "z" * 55, "y" * 20, "z" * 25], 4) is None
    # Every 5th case (per type) gets the answer as its longest option, no more.
    hits = [answer_is_longest(s, TaskType.FACT_RETRIEVAL) for s in range(100)]
    assert sum(hits) == 20
    import random

    pool = ["a" * n for n in (10, 20, 30, 50, 60, 70)]
    pool = [p + str(i) for i, p in enumerate(pool)]
    picked = select_distractors(correct, pool, 4, random.Random(0), [], longest=True)
    # Only three shorter exist: a full option set wins, so one longer one is taken.
    assert len(picked) == 4 and sum(len(p) > 40 for p in picked) == 1
    picked = select_distractors(correct, pool[:3] + ["b" * 35], 4, random.Random(0), [], True)
    assert all(len(p) < 40 for p in picked)
    picked = select_distractors(correct, pool, 4, random.Random(0), [], longest=False)
    assert len(picked) == 4 and any(len(p) > 40 for p in picked)


def test_cli_build_llm_and_review_export(llm_server: ScriptedLLM, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from behaviorsft.cli_build_llm import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    cases = write_text_cases(tmp_path / "reports.jsonl", 2)
    bench = tmp_path / "bench"
    args = [
        "build-llm",
        "--cases",
        str(cases),
        "--out",
        str(bench),
        "--model",
        "openai-compatible/scripted",
        "--base-url",
        llm_server.base_url,
        "--concurrency",
        "4",
        "--types",
        "fact_retrieval",
        "--types",
        "omission_detection",
        "--verify",
        "flag",
        "--price-input",
        "0.15",
        "--price-output",
        "0.6",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 cases completed, 0 failed" in result.output
    usage = json.loads((bench / "llm/usage.json").read_text())
    assert usage["stages"]["total"]["cost_usd"] > 0
    result = runner.invoke(app, ["review-export", str(bench), "--out", str(tmp_path / "rv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rv/review.csv").exists()
    bad = runner.invoke(app, [*args[:6], "hf/tiny", "--verify", "drop"])
    assert bad.exit_code == 2 and "vllm serve" in bad.output
    bad = runner.invoke(app, [*args[:9], "--verify", "maybe"])
    assert bad.exit_code != 0 and "--verify" in bad.output
