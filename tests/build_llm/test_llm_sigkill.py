"""A build killed with SIGKILL mid-run and re-run: no duplicates, no re-paid calls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from behaviorsft.bench import load_bench
from behaviorsft.build.llm import build_llm_bench
from tests.build_llm.conftest import ScriptedLLM, body_hash, cache_rows, write_text_cases

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import sys
from behaviorsft.build.llm import build_llm_bench
build_llm_bench(sys.argv[1], sys.argv[2], model="openai-compatible/scripted",
                base_url=sys.argv[3], concurrency=4, verify="flag",
                model_options={"backoff_base_s": 0.01, "timeout_s": 60})
"""


def _wait(cond: object, what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_sigkill_then_rerun_completes_without_duplicates_or_repaid_calls(tmp_path: Path):
    server = ScriptedLLM().start()
    try:
        cases = write_text_cases(tmp_path / "reports.jsonl", 5)
        bench = tmp_path / "bench"
        # Requests after the 70th are held unanswered: the child is mid-run when killed.
        server.hold_after = 70
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(cases), str(bench), server.base_url],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait(lambda: server.count > 70, "the child to reach the held requests")
            # Every answered reply is in the child's cache before the kill, so a re-run
            # must not pay for any of them again.
            _wait(
                lambda: cache_rows(bench / "llm/cache") == len(server.answered),
                "the child to cache what it was given",
            )
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
        assert child.returncode == -signal.SIGKILL
        paid_before = set(server.answered)
        n_before = server.count
        server.hold_after = None

        rep = build_llm_bench(
            cases,
            bench,
            model="openai-compatible/scripted",
            base_url=server.base_url,
            concurrency=4,
            verify="flag",
            model_options={"backoff_base_s": 0.01},
        )
        assert (rep.completed, rep.failed) == (5, 0)
        asked_again = {body_hash(b) for b in server.requests[n_before:]}
        assert not asked_again & paid_before, "a reply paid for before the kill was re-requested"
        assert rep.resumed_from < 5  # the kill really happened mid-run

        for name, key in [
            ("tasks.jsonl", "id"),
            ("cases.jsonl", "id"),
            ("conversations.jsonl", "case_id"),
            ("llm/drafts.jsonl", "id"),
            ("llm/verification.jsonl", "id"),
            ("llm/outcomes.jsonl", "id"),
        ]:
            ids = [json.loads(x)[key] for x in (bench / name).read_text().splitlines() if x]
            assert not [i for i, n in Counter(ids).items() if n > 1], name

        # Same tasks as an uninterrupted build (fresh server memory is not needed: the
        # reference run has its own cache, so every request is new to it).
        ref = tmp_path / "ref"
        build_llm_bench(
            cases,
            ref,
            model="openai-compatible/scripted",
            base_url=server.base_url,
            concurrency=4,
            verify="flag",
        )
        ids = sorted(t.model_dump_json() for t in load_bench(bench).tasks)
        assert ids == sorted(t.model_dump_json() for t in load_bench(ref).tasks)
    finally:
        server.stop()
