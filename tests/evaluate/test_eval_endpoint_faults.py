"""`eval` against real local HTTP endpoints that misbehave (issue 18, item 6).

* nothing listens: the command stops at once naming the base URL, writes nothing, exits 2;
* 429 / 500: each retry is announced (which error, attempt n of m, the wait), and rows
  that still failed make the command exit 3 (PARTIAL);
* a one-slot server (like llama.cpp with one slot) behind ``concurrency=8``: requests
  queue past the timeout; the client lowers its concurrency, says so and which option
  to change, and every task is answered.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from behaviorsft.cli import app
from behaviorsft.evaluate.runner import load_predictions
from behaviorsft.exit_codes import ExitCode
from tests.evaluate.conftest import bench_tasks, write_bench
from tests.http_stub import LoopbackServer, Reply, completion, error

BROKEN = "for fact_retrieval test 0"  # option text of one task of the bench


class Endpoint(LoopbackServer):
    """A chat-completions server answering '<answer>B</answer>', with scripted faults.

    ``always_500``: prompts containing this text always get HTTP 500;
    ``first_429``: the first request of every other prompt gets 429 (Retry-After: 0);
    ``one_slot_s``: one request at a time, each taking this long (others queue).
    """

    def __init__(self) -> None:
        self.always_500: str | None = None
        self.first_429 = False
        self.one_slot_s = 0.0
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._slot = threading.Lock()
        super().__init__(self._respond)

    def _respond(self, body: dict[str, Any], headers: Message) -> Reply:
        user = body["messages"][-1]["content"]
        with self._lock:
            self.seen[user] += 1
            first = self.seen[user] == 1
        if self.always_500 and self.always_500 in user:
            return Reply(500, error("overloaded"))
        if self.first_429 and first:
            return Reply(429, error("slow down"), {"Retry-After": "0"})
        if self.one_slot_s:
            with self._slot:  # the server works on one request at a time
                time.sleep(self.one_slot_s)
        return Reply(body=completion("<answer>B</answer>"))


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as srv:
        yield srv


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    return write_bench(tmp_path / "bench", bench_tasks(1, 0))  # 13 test tasks


def _eval(bench: Path, out: Path, base_url: str, *options: str) -> tuple[int, str]:
    args = ["eval", "--bench", str(bench), "--model", "openai-compatible/m", "--out", str(out)]
    args += ["--base-url", base_url, "--no-progress", "--bootstrap", "0"]
    for opt in options:
        args += ["--option", opt]
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.stderr


def test_nothing_listening_stops_at_once_and_writes_nothing(bench: Path, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    out = tmp_path / "run"
    code, stderr = _eval(bench, out, base_url, "max_retries=5", "backoff_base_s=5")
    assert code == ExitCode.INPUT_ERROR
    assert f"nothing answers at {base_url}" in stderr and "--base-url" in stderr
    assert "retry" not in stderr.lower()  # no backoff was waited for
    assert not out.exists()


def test_retries_are_announced_and_failed_rows_exit_partial(
    endpoint: Endpoint, bench: Path, tmp_path: Path
) -> None:
    endpoint.always_500 = BROKEN
    endpoint.first_429 = True
    out = tmp_path / "run"
    code, stderr = _eval(
        bench, out, endpoint.base_url, "max_retries=2", "backoff_base_s=0.01"
    )  # fmt: skip
    assert code == ExitCode.PARTIAL, stderr
    assert "HTTP 429" in stderr and "HTTP 500" in stderr
    assert "attempt 2 of 3" in stderr and "waiting" in stderr
    assert "1 row(s) failed" in stderr
    rows = load_predictions(out)
    failed = [p for p in rows if p.error is not None]
    assert len(rows) == 13 and len(failed) == 1 and "HTTP 500" in (failed[0].error or "")

    endpoint.always_500 = None  # the server recovers: the rerun retries the failed row
    code, stderr = _eval(bench, out, endpoint.base_url, "max_retries=2", "backoff_base_s=0.01")
    assert code == ExitCode.OK, stderr
    assert all(p.error is None for p in load_predictions(out))


def test_one_slot_server_at_concurrency_8_lowers_the_concurrency(
    endpoint: Endpoint, bench: Path, tmp_path: Path
) -> None:
    endpoint.one_slot_s = 0.1  # 8 queued requests take 0.8 s, past the 0.35 s timeout
    out = tmp_path / "run"
    code, stderr = _eval(
        bench, out, endpoint.base_url,
        "concurrency=8", "timeout_s=0.35", "max_retries=12", "backoff_base_s=0.01",
    )  # fmt: skip
    assert code == ExitCode.OK, stderr
    assert "lowering concurrency from 8 to 4" in stderr
    assert "concurrency=" in stderr and "timeout_s=" in stderr  # which option to change
    rows = load_predictions(out)
    assert len(rows) == 13 and all(p.error is None and p.parsed_answer == "B" for p in rows)


def test_judge_against_nothing_listening_stops_at_once(bench: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["eval", "--bench", str(bench), "--model", "baseline/random", "--out", str(run)]
    assert CliRunner().invoke(app, [*args, "--no-progress", "--limit", "2"]).exit_code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/v1"
    res = CliRunner().invoke(
        app,
        [
            "judge", str(run), "--out", str(tmp_path / "j"), "--judge", "openai-compatible/j",
            "--base-url", base_url, "--no-progress", "--option", "backoff_base_s=0.01",
        ],
    )  # fmt: skip
    assert res.exit_code == ExitCode.INPUT_ERROR, res.output
    assert f"nothing answers at {base_url}" in res.stderr
    assert not (tmp_path / "j").exists()  # the corrected command starts cleanly
