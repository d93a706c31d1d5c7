"""Fixtures for the judge tests: a scripted G-Eval server on 127.0.0.1 and RUN folders on disk.

The server speaks the OpenAI chat-completions protocol and is the only test
double: the client, prompts, parsing, resume, aggregation and figures behind
it are the real code.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.evaluate.runner import EvalConfig, config_dict
from behaviorsft.examples import example_conversation, example_tasks
from behaviorsft.records import Prediction
from behaviorsft.store import write_jsonl
from tests.http_stub import LoopbackServer, Reply

# Top log-probabilities at the first position of every greedy form-filling reply.
# 0.2 sits on a non-score token, so the weights must be renormalised:
# (5*0.4 + 4*0.2 + 3*0.2) / 0.8 = 4.25  ->  (4.25 - 1) / 4 = 0.8125.
DIST: dict[str, float] = {"5": 0.4, " 4": 0.2, "3": 0.2, "The": 0.2}
DIST_RAW = 4.25
DIST_SCORE = 0.8125

# Sampled replies by seed; seed 4 has no readable score.
SAMPLE_REPLIES = [
    "5\nExcellent.",
    "Score: 4 - good",
    "**4**\nGood.",
    "3/5\nAdequate.",
    "I cannot rate this reply.",
]
SAMPLES_MEAN = (5 + 4 + 4 + 3) / 4  # 4.0 -> 0.75

STEPS_REPLY = (
    "1. Read the clinical record and the question.\n"
    "2. Read the assistant's reply.\n"
    "3. Assign a score from 1 to 5 by the criterion."
)
FAIL_MARKER = "FAIL-ME"


@dataclass
class JudgeServer:
    """A scripted G-Eval judge.

    Steps prompts get :data:`STEPS_REPLY`; greedy form prompts get "5\\n..." and,
    when ``logprobs`` is on and the request asks, :data:`DIST` as top
    log-probabilities; sampled form prompts (temperature > 0) get
    ``SAMPLE_REPLIES[seed]``. A prompt containing :data:`FAIL_MARKER` gets HTTP 500.
    """

    logprobs: bool = True
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

        def respond(body: dict[str, Any], headers: Message) -> Reply:
            with self._lock:
                self.requests.append(body)
            return Reply(*self.reply(body))

        self.server = LoopbackServer(respond)
        self.base_url = self.server.base_url

    @staticmethod
    def prompt(body: dict[str, Any]) -> str:
        return str(body["messages"][-1]["content"])

    def reply(self, body: dict[str, Any]) -> tuple[int, bytes]:
        prompt = self.prompt(body)
        if FAIL_MARKER in prompt:
            return 500, b'{"error": {"message": "scripted failure"}}'
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if prompt.rstrip().endswith("Evaluation Steps:"):
            content = STEPS_REPLY
        elif body.get("temperature", 0) > 0:
            content = SAMPLE_REPLIES[int(body["seed"]) % len(SAMPLE_REPLIES)]
        else:
            content = "5\nThe reply is accurate and complete."
            if self.logprobs and body.get("logprobs"):
                top = [{"token": t, "logprob": math.log(p)} for t, p in DIST.items()]
                choice["logprobs"] = {
                    "content": [{"token": "5", "logprob": math.log(0.4), "top_logprobs": top}]
                }
        choice["message"] = {"role": "assistant", "content": content}
        data = {"id": "x", "object": "chat.completion", "choices": [choice]}
        return 200, json.dumps(data).encode()

    def form_requests(self) -> list[dict[str, Any]]:
        """Requests that were form-filling prompts (not steps prompts)."""
        return [b for b in self.requests if not self.prompt(b).rstrip().endswith("Steps:")]

    def steps_requests(self) -> list[dict[str, Any]]:
        return [b for b in self.requests if self.prompt(b).rstrip().endswith("Steps:")]


@pytest.fixture
def judge_server() -> Iterator[JudgeServer]:
    srv = JudgeServer()
    with srv.server:
        yield srv


# Replies of a model under evaluation, one per example task.
OUTPUTS = {
    "example:cap-001:fact_retrieval": "<reactive> SpO2 was 89% on room air. <answer>B</answer>",
    "example:cap-001:reasoning_differential_evolution": (
        "<proactive> Consolidation makes lobar pneumonia the leading diagnosis. <answer>C</answer>"
    ),
    "example:cap-001:explicit_error_correction": (
        "<proactive> Stop amoxicillin-clavulanate: penicillin anaphylaxis. <answer>C</answer>"
    ),
    "example:cap-001:omission_detection:control": (
        "<proactive> Cultures, imaging and allergies are documented. <answer>C</answer>"
    ),
}


def write_bench(folder: Path) -> Path:
    """The four example tasks and their conversation as a BENCH folder."""
    write_jsonl(folder / "tasks.jsonl", example_tasks())
    write_jsonl(folder / "conversations.jsonl", [example_conversation()])
    return folder


def make_run(
    root: Path,
    name: str,
    outputs: dict[str, str] | None = None,
    *,
    seeds: Sequence[int] = (0,),
    label: str | None = None,
    failed: Sequence[str] = (),
) -> Path:
    """A RUN folder whose predictions are ``outputs`` (task id -> raw output) at each seed.

    Task ids in ``failed`` get a prediction that failed at eval time (no reply).
    """
    bench = root / "bench"
    if not (bench / "tasks.jsonl").exists():
        write_bench(bench)
    run = root / name
    run.mkdir(parents=True)
    config = EvalConfig(
        bench=str(bench.resolve()),
        model="openai-compatible/under-test",
        out=str(run),
        strategy="behaviorsft",
        label=label or name,
    )
    (run / "config.json").write_text(json.dumps(config_dict(config)), encoding="utf-8")
    answer = {t.id: t.answer for t in example_tasks()}
    preds = []
    for seed in seeds:
        for tid, text in (outputs or OUTPUTS).items():
            base: dict[str, Any] = {
                "task_id": tid,
                "model": config.model,
                "strategy": config.strategy,
                "seed": seed,
            }
            if tid in failed:
                preds.append(Prediction(**base, error="HTTP 503 after 3 attempts"))
            else:
                preds.append(
                    Prediction(
                        **base,
                        raw_output=text,
                        parsed_answer=answer[tid],
                        valid=True,
                        correct=True,
                    )
                )
    write_jsonl(run / "predictions.jsonl", preds)
    return run


def client_options() -> dict[str, Any]:
    """Fast retries, so failure tests take milliseconds of backoff."""
    return {"max_retries": 1, "backoff_base_s": 0.001, "backoff_max_s": 0.01, "timeout_s": 10.0}
