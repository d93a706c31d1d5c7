"""The runner against a real local HTTP server through the openai-compatible backend.

One task's requests always get HTTP 500: after the backend's and the runner's
retries the row is recorded as an error (not a wrong answer), and once the
server recovers, rerunning the command sends exactly that one request again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.evaluate.runner import EvalConfig, load_predictions, run_eval
from tests.evaluate.conftest import bench_tasks, write_bench
from tests.http_stub import LoopbackServer, Reply, completion, error

BROKEN = "for fact_retrieval test 0"  # option text of one task in the bench


class ChatServer(LoopbackServer):
    """Answers '<answer>B</answer>' to every chat completion, except BROKEN ones (500)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.auth: list[str | None] = []
        self.broken = True
        self.lock = threading.Lock()
        super().__init__(self._respond)

    def _respond(self, body: dict[str, Any], headers: Message) -> Reply:
        with self.lock:
            self.bodies.append(body)
            self.auth.append(headers.get("Authorization"))
            fail = self.broken and BROKEN in body["messages"][-1]["content"]
        if fail:
            return Reply(500, error("overloaded"))
        return Reply(body=completion("<answer>B</answer>"))


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    pytest.importorskip("behaviorsft.models.openai_compat")
    with ChatServer() as srv:
        yield srv


def test_http_failures_become_error_rows_and_are_retried_on_rerun(
    chat_server: ChatServer, tmp_path: Path
) -> None:
    bench = write_bench(tmp_path / "bench", bench_tasks(1, 0))
    config = EvalConfig(
        bench=str(bench),
        model="openai-compatible/tiny-chat",
        out=str(tmp_path / "run"),
        base_url=chat_server.base_url,
        retries=1,
        n_bootstrap=0,
        model_options={"max_retries": 1, "backoff_base_s": 0.01, "timeout_s": 5.0},
    )
    first = run_eval(config, show_progress=False)
    broken = [b for b in chat_server.bodies if BROKEN in b["messages"][-1]["content"]]
    assert len(broken) == 4  # (1 + backend retry) x (1 + runner retry)
    assert first.errors == 1 and first.metrics["counts"]["scored"] == 12
    rows = {p.task_id: p for p in load_predictions(tmp_path / "run")}
    failed = rows["fact_retrieval-test-0"]
    assert failed.error and "500" in failed.error and failed.correct is None
    ok = rows["timeline_sequence-test-0"]
    assert ok.parsed_answer == "B" and ok.usage.completion_tokens == 4

    chat_server.broken = False
    chat_server.bodies.clear()
    second = run_eval(config, show_progress=False)
    assert (
        len(chat_server.bodies) == 1 and BROKEN in chat_server.bodies[0]["messages"][-1]["content"]
    )
    assert second.errors == 0 and second.metrics["counts"]["scored"] == 13


def test_cli_api_key_env_sends_the_key_and_never_stores_it(
    chat_server: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from behaviorsft.cli import app

    chat_server.broken = False
    monkeypatch.setenv("MY_ENDPOINT_KEY", "sk-local-test-123")
    bench = write_bench(tmp_path / "bench", bench_tasks(1, 0))
    out = tmp_path / "run"
    args = ["eval", "--bench", str(bench), "--model", "openai-compatible/tiny-chat"]
    args += ["--base-url", chat_server.base_url, "--out", str(out), "--limit", "3"]
    res = CliRunner().invoke(app, [*args, "--api-key-env", "MY_ENDPOINT_KEY"])
    assert res.exit_code == 0, res.output
    assert chat_server.auth == ["Bearer sk-local-test-123"] * 3
    for path in out.iterdir():
        assert "sk-local-test-123" not in path.read_text(encoding="utf-8")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["model_options"] == {"api_key_env": "MY_ENDPOINT_KEY"}
