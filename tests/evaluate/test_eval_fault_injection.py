"""Fault injection for `eval` (issue 18): SIGKILL at random moments, resume, compare.

`python -m behaviorsft.cli eval` runs as a real subprocess against a scripted
chat server on 127.0.0.1 (a little latency per request, so a kill lands while
answers are being written). It is killed at seeded random moments and resumed;
the finished RUN must hold exactly the predictions of a clean run, each id once,
with the same metrics. A second writer started while the first one runs is
refused at once with exit code 5 (BUSY) and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

import behaviorsft
from behaviorsft.exit_codes import ExitCode
from tests.evaluate.conftest import bench_tasks, write_bench
from tests.http_stub import LoopbackServer, Reply, completion

SRC = Path(behaviorsft.__file__).resolve().parents[1]
KILLS = 4


class SlowChat(LoopbackServer):
    """Answers each prompt with a letter that is a function of the prompt, after ``latency_s``.

    Requests wait while ``gate`` is clear (it is set from the start).
    """

    def __init__(self, latency_s: float) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.latency_s = latency_s
        super().__init__(self._respond)

    def _respond(self, body: dict[str, Any], headers: Message) -> Reply:
        user = body["messages"][-1]["content"]
        letter = "ABCD"[hashlib.sha256(user.encode()).digest()[0] % 4]
        self.gate.wait(timeout=60)
        time.sleep(self.latency_s)
        return Reply(body=completion(f"<answer>{letter}</answer>", usage=None))


@pytest.fixture
def chat() -> Iterator[SlowChat]:
    with SlowChat(latency_s=0.02) as srv:
        yield srv


def _command(bench: Path, out: Path, base_url: str) -> list[str]:
    return [
        sys.executable, "-m", "behaviorsft.cli", "eval",
        "--bench", str(bench), "--model", "openai-compatible/m", "--base-url", base_url,
        "--out", str(out), "--seeds", "0", "1", "--chunk-size", "4", "--bootstrap", "0",
        "--option", "concurrency=2", "--no-progress",
    ]  # fmt: skip


def _start(cmd: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _answers(run: Path) -> list[tuple[Any, ...]]:
    """Every prediction line as what must match a clean run (timestamps left out)."""
    text = (run / "predictions.jsonl").read_text()
    lines = text.split("\n")[:-1]  # a torn last line (no newline) is cut off on resume
    rows = [json.loads(line) for line in lines if line]
    keys = ("id", "task_id", "seed", "raw_output", "parsed_answer", "correct", "error")
    keys += ("task_fingerprint",)
    return sorted(tuple(json.dumps(r.get(k)) for k in keys) for r in rows)


def _metrics(run: Path) -> dict[str, Any]:
    data = json.loads((run / "metrics.json").read_text())
    return {"mean": data["mean"], "counts": data["counts"], "per_seed": data["per_seed"]}


def test_sigkilled_eval_resumes_to_a_clean_runs_predictions(chat: SlowChat, tmp_path: Path):
    bench = write_bench(tmp_path / "bench", bench_tasks(2, 0))  # 26 tasks x 2 seeds
    clean = tmp_path / "clean"
    done = _finish(_command(bench, clean, chat.base_url))
    assert done.returncode == ExitCode.OK, done.stderr
    expected = _answers(clean)
    assert len(expected) == 52

    run = tmp_path / "run"
    path = run / "predictions.jsonl"
    cmd = _command(bench, run, chat.base_url)
    rng = random.Random(18)
    killed_mid_run = 0
    for i in range(KILLS):
        proc = _start(cmd)
        if i == 0:  # somewhere in start-up (imports, bench, lock, config)
            time.sleep(rng.uniform(0.2, 1.5))
        else:  # while answers are being written: after a random number of lines
            stop_at = _lines(path) + rng.randint(1, 12)
            while proc.poll() is None and _lines(path) < stop_at:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.03))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid_run += i > 0
        proc.communicate(timeout=60)
        if path.exists():
            ids = [r[0] for r in _answers(run)]
            assert len(ids) == len(set(ids))  # never a duplicate, even between kills
    done = _finish(cmd)
    assert done.returncode == ExitCode.OK, done.stderr
    assert killed_mid_run >= 2  # most kills really landed between answers
    assert _answers(run) == expected
    assert _metrics(run) == _metrics(clean)


def test_a_concurrent_second_writer_is_refused(chat: SlowChat, tmp_path: Path) -> None:
    chat.gate.clear()  # the first writer waits for its answers until the second one is done
    bench = write_bench(tmp_path / "bench", bench_tasks(2, 0))
    run = tmp_path / "run"
    cmd = _command(bench, run, chat.base_url)
    first = _start(cmd)
    lock = run / ".behaviorsft.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.stat().st_size > 0) and first.poll() is None:
        assert time.monotonic() < deadline, "the first writer never took the lock"
        time.sleep(0.02)
    second = _finish(cmd)
    chat.gate.set()
    _, err = first.communicate(timeout=120)
    assert first.returncode == ExitCode.OK, err
    assert second.returncode == ExitCode.BUSY, second.stderr
    assert "being written by another process" in second.stderr
    ids = [r[0] for r in _answers(run)]
    assert len(ids) == len(set(ids)) == 52
