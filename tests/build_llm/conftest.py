"""A scripted chat-completions server on 127.0.0.1 for the LLM builder's tests and benchmark.

``ScriptedLLM`` speaks the OpenAI chat-completions API over real HTTP. It
recognises the stage of each request from the prompt (the system text of the
builder's versioned prompts), answers like a compliant but imperfect LLM
(summaries quote the source; task drafts first put the answer first and make
it the longest option, and fix that when re-asked), and remembers the answers
it wrote so that the blind verifier can answer correctly. It counts every
request and the tokens of every reply it delivered, and can inject faults per
stage and case: 429 with Retry-After, 500, a hang past the client's timeout,
truncated JSON, schema-invalid JSON, a refusal, a 400 rejecting
``response_format``. With ``llama_cpp_python`` set it behaves as
llama-cpp-python's server (0.3.x) does: any request whose ``response_format``
is ``json_schema`` gets HTTP 500 with that server's validation message
(``json_object`` and plain requests are answered). It can also hold every
request after the N-th unanswered (to kill a client mid-run).

Run as a script it serves until killed (used by benchmarks/bench_llm_pipeline.py)::

    python tests/build_llm/conftest.py --latency 0.1 --port-file PORT
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.build.llm.prompts import PROMPTS
from behaviorsft.taxonomy import Category, TaskType, category_of, label_for_score
from tests.http_stub import LoopbackServer, Reply

# Option vocabulary: no word here appears in any question the server writes, so
# "pick the option that repeats the question" has nothing to go on.
VOCAB = (
    "aspirin",
    "heparin",
    "lactate",
    "troponin",
    "sepsis",
    "fluids",
    "oxygen",
    "imaging",
    "biopsy",
    "culture",
    "potassium",
    "insulin",
    "glucose",
    "dialysis",
    "antibiotics",
    "steroids",
    "nebuliser",
    "diuretic",
    "catheter",
    "transfusion",
    "warfarin",
    "ceftriaxone",
    "ultrasound",
    "echocardiogram",
    "bronchoscopy",
    "endoscopy",
    "cortisol",
    "thyroxine",
    "magnesium",
    "bicarbonate",
    "albumin",
    "ferritin",
    "platelets",
    "fibrinogen",
    "amylase",
    "lipase",
    "bilirubin",
    "creatinine",
    "sodium",
    "calcium",
    "phosphate",
    "ammonia",
    "procalcitonin",
)
# No word in common with the scripted questions ("... for this <type> item"), as
# NO_ISSUE (the type name is in them too: no "action"): an accidental overlap would
# hand the overlap heuristic every control.
NO_ACTION = "Nothing more is needed now"
NO_ISSUE = "Nothing here requires action"
REFUSAL = "I'm sorry, but I can't help with that request."
SCORES = {Category.REACTIVE: 0.2, Category.BALANCED: 0.5, Category.PROACTIVE: 0.85}


@dataclass
class Fault:
    """An injected fault: ``kind`` for the next ``times`` requests of a stage (and case)."""

    stage: str
    kind: str  # 429 | 500 | hang | truncated | invalid | refusal | 400rf
    case_id: str | None = None
    task_type: str | None = None
    times: int = 1


def stage_of(body: dict[str, Any]) -> str:
    """The builder prompt a request was rendered from (by its system text)."""
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    for name, prompt in PROMPTS.items():
        if system.startswith(prompt.system):
            return name
    return "unknown"


def _first_user(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def case_of(body: dict[str, Any]) -> str | None:
    m = re.search(r"Case id: (\S+)", _first_user(body))
    return m.group(1) if m else None


def _phrase(rng: random.Random, low: int, high: int) -> str:
    """Words from VOCAB, between ``low`` and ``high`` characters long (inclusive)."""
    for _ in range(200):
        words: list[str] = []
        while len(" ".join(words)) < low:
            words.append(rng.choice(VOCAB))
        text = " ".join(words).capitalize()
        if len(text) <= high:
            return text
    raise AssertionError(f"no phrase of {low}-{high} characters")


class ScriptedLLM(LoopbackServer):
    """The server. ``requests`` holds every request body, in arrival order."""

    def __init__(self, latency_s: float = 0.0, hang_s: float = 3.0) -> None:
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.stages: Counter[str] = Counter()
        self.answered: list[str] = []  # body hashes of delivered 200 replies
        self.usage_served = 0  # prompt + completion tokens of delivered 200 replies
        self.wrong_cases: set[str] = set()  # the verifier answers these wrongly
        self.options_only_cases: set[str] = set()  # ... and these from the options alone
        self.flag_cases: set[str] = set()  # the fact check flags a turn of these
        self.never_fix_length = False  # re-asked drafts keep the longest answer
        self.hold_after: int | None = None  # requests after this many are never answered
        self.llama_cpp_python = False  # reject response_format json_schema with HTTP 500
        self._answers: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        super().__init__(self._reply, keep_alive=True, queue_size=256)  # as real servers

    # ------------------------------------------------------------------ control

    def _reply(self, body: dict[str, Any], headers: Message) -> Reply:
        status, reply_headers, content, delay, counted = self._respond(body)
        time.sleep(delay)
        if counted is None:  # held: never answered
            while self.hold_after is not None:
                time.sleep(0.05)
            return Reply(0)

        def delivered() -> None:
            with self._lock:
                self.answered.append(_hash(body))
                self.usage_served += counted

        return Reply(status, content, reply_headers, delivered if counted else None)

    def stop(self) -> None:
        self.hold_after = None
        self.close()

    def inject(self, stage: str, kind: str, **kw: Any) -> None:
        """Add a fault (see :class:`Fault`)."""
        self.faults.append(Fault(stage, kind, **kw))

    @property
    def count(self) -> int:
        return len(self.requests)

    # ------------------------------------------------------------------ answering

    def _respond(
        self, body: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes, float, int | None]:
        stage = stage_of(body)
        case = case_of(body)
        with self._lock:
            self.requests.append(body)
            self.stages[stage] += 1
            if self.hold_after is not None and len(self.requests) > self.hold_after:
                return 0, {}, b"", 0.0, None
            fault = self._take_fault(stage, case, body)
        rf = body.get("response_format")
        if self.llama_cpp_python and isinstance(rf, dict) and rf.get("type") == "json_schema":
            # What llama-cpp-python 0.3.x answers (its pydantic error, wrapped as a 500).
            detail = (
                "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]"
            )
            msg = json.dumps({"error": {"message": detail, "type": "internal_server_error"}})
            return 500, {}, msg.encode(), 0.0, 0
        if fault == "429":
            return 429, {"Retry-After": "1"}, b'{"error": {"message": "rate limited"}}', 0.0, 0
        if fault == "500":
            return 500, {}, b'{"error": {"message": "upstream failed"}}', 0.0, 0
        if fault == "400rf" and "response_format" in body:
            msg = b'{"error": {"message": "response_format is not supported by this model"}}'
            return 400, {}, msg, 0.0, 0
        content = self._content(stage, body)
        if fault == "truncated":
            content = content[: len(content) // 2]
        elif fault == "invalid":
            content = json.dumps({"unexpected": True, "facts": [], "turns": [], "answer": 7})
        elif fault == "refusal":
            content = REFUSAL
        prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
        completion_tokens = len(content) // 4 + 1
        payload = json.dumps(
            {
                "id": "cmpl-scripted",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        ).encode()
        if fault == "hang":
            # Answered after the client gave up: delivered to nobody, not counted.
            return 200, {}, payload, self.hang_s, 0
        return 200, {}, payload, self.latency_s, prompt_tokens + completion_tokens

    def _take_fault(self, stage: str, case: str | None, body: dict[str, Any]) -> str | None:
        user = _first_user(body)
        for f in self.faults:
            if f.times <= 0 or f.stage != stage:
                continue
            if f.case_id is not None and f.case_id != case:
                continue
            if f.task_type is not None and f"Task type: {f.task_type}" not in user:
                continue
            f.times -= 1
            return f.kind
        return None

    def _content(self, stage: str, body: dict[str, Any]) -> str:
        user = _first_user(body)
        attempt = sum(m["role"] == "assistant" for m in body["messages"])
        case = case_of(body) or "?"
        if stage == "summary":
            return json.dumps(self._summary(user))
        if stage == "conversation":
            return json.dumps(self._conversation(user))
        if stage == "fact-check":
            flagged = [{"turn": 1, "unsupported_claims": ["an invented value"]}]
            return json.dumps({"flagged": flagged if case in self.flag_cases else []})
        if stage in ("task", "augment"):
            ttype = TaskType(re.search(r"Task type: (\w+)", user).group(1))  # type: ignore[union-attr]
            n_turns = int(re.search(r"turns 0\.\.(\d+)", user).group(1)) + 1  # type: ignore[union-attr]
            fix = attempt > 0 and not self.never_fix_length
            out = self._draft(stage, case, ttype, n_turns, fix)
            return json.dumps(out)
        if stage in ("verify", "verify-options-only"):
            return json.dumps(self._verify(stage, case, user))
        return "{}"

    @staticmethod
    def _summary(user: str) -> dict[str, Any]:
        source = user.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0]
        lines = [ln.strip().lstrip("- ").strip() for ln in source.splitlines()]
        lines = [ln for ln in lines if len(ln.split()) >= 3][:6]
        facts = [{"section": "history", "text": ln, "quote": ln} for ln in lines]
        return {"facts": facts, "final_diagnosis": None}

    @staticmethod
    def _conversation(user: str) -> dict[str, Any]:
        facts = re.findall(r"^(\d+): \w+: (.+)$", user, re.M)
        turns: list[dict[str, Any]] = [
            {"speaker": "Patient", "role": "patient", "text": "I have felt unwell for days."}
        ]
        for i, text in facts:
            turns.append(
                {"speaker": "Dr. Rao", "role": "attending", "text": text, "fact_ids": [int(i)]}
            )
            turns.append({"speaker": "Patient", "role": "patient", "text": f"Noted, item {i}."})
        turns[1]["table"] = {"title": "Labs", "columns": ["Test", "Value"], "rows": [["Na", "140"]]}
        turns[3]["image"] = "Chest radiograph"
        return {"turns": turns}

    def _draft(
        self, stage: str, case: str, ttype: TaskType, n_turns: int, fix: bool
    ) -> dict[str, Any]:
        rng = random.Random(f"{case}|{ttype.value}")
        correct = _phrase(rng, 40, 56)
        n = len(correct)
        if fix:  # re-asked: half longer, half shorter than the answer
            pool = [_phrase(rng, n + 4, n + 30) for _ in range(4)]
            pool += [_phrase(rng, 12, n - 4) for _ in range(4)]
        else:  # the LLM habit: answer first and longest
            pool = [_phrase(rng, 12, n - 6) for _ in range(6)]
        pool = list(dict.fromkeys(p for p in pool if p.lower() != correct.lower()))
        score = SCORES[category_of(ttype)]
        common = {
            "rationale": f"Stated in the conversation of {case}.",
            "behavior_score": score,
            "behavior_label": label_for_score(score).value,
            "complexity": "advanced",
            "turn_start": 0,
            "turn_end": n_turns - 1,
        }
        question = f"Per the dialogue, which statement holds for this {ttype.value} item ({case})?"
        if stage == "task":
            self._answers[question] = {"correct": correct}
            control: dict[str, Any] = {}
            if ttype is TaskType.PREDICTIVE_NEXT_ACTION:
                done = f"Ward round for {case}: the planned steps are all done already."
                control = {
                    "no_action_option": NO_ACTION,
                    "control_excerpt": done,
                    "control_rationale": "Everything due has been done.",
                }
                self._answers[question] |= {"control_excerpt": done, "no_action": NO_ACTION}
            return {
                "question": question,
                "correct_option": correct,
                "distractors": pool,
                "missing_turn": 3 if ttype is TaskType.INTEGRITY_MISSING_TURN_INFERENCE else None,
                **control,
                **common,
            }
        before, after = rng.sample(VOCAB, 2)
        clean = f"Handover note for {case}: continue {before} and review tomorrow."
        perturbed = f"Handover note for {case}: continue {after} and review tomorrow."
        self._answers[question] = {
            "correct": correct,
            "perturbed": perturbed,
            "no_issue": NO_ISSUE,
        }
        return {
            "clean_excerpt": clean,
            "perturbed_excerpt": perturbed,
            "original": before,
            "modified": after,
            "description": f"{before} replaced by {after}.",
            "question": question,
            "correct_option": correct,
            "no_issue_option": NO_ISSUE,
            "distractors": pool,
            "control_rationale": "The note matches the conversation.",
            **common,
        }

    def _verify(self, stage: str, case: str, user: str) -> dict[str, Any]:
        options = dict(re.findall(r"^([A-F])\. (.+)$", user, re.M))
        q = re.search(r"^Question: (.+)$", user, re.M)
        known = self._answers.get(q.group(1) if q else "")
        if known is None:
            return {"answer": None, "reason": "unknown question"}
        want = known["correct"]
        if "perturbed" in known and known["perturbed"] not in user and stage == "verify":
            want = known["no_issue"]
        if "control_excerpt" in known and known["control_excerpt"] in user:
            want = known["no_action"]
        right = next((k for k, v in options.items() if v == want), None)
        if stage == "verify-options-only":
            hit = case in self.options_only_cases
            return {"answer": right if hit else None, "reason": "options only"}
        if case in self.wrong_cases:
            wrong = next(k for k in options if k != right)
            return {"answer": wrong, "reason": "scripted mistake"}
        return {"answer": right, "reason": "scripted"}


def _hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def body_hash(body: dict[str, Any]) -> str:
    """Identity of a request body (what the server saw)."""
    return _hash(body)


def cache_rows(cache_dir: Path) -> int:
    """Replies in the client's on-disk cache (read from another process, WAL-safe)."""
    path = cache_dir / "responses.sqlite"
    if not path.exists():
        return 0
    conn = sqlite3.connect(path, timeout=30)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def write_text_cases(path: Path, n: int) -> Path:
    """A free-text JSONL of ``n`` short case reports."""
    lines = []
    for i in range(n):
        text = (
            f"A {40 + i}-year-old woman presented with fever and productive cough for {i + 2} "
            "days.\n\nHISTORY: She has type 2 diabetes treated with metformin.\n\n"
            f"EXAMINATION: Temperature 38.{i % 10} C, crackles at the right base.\n\n"
            "DIAGNOSTICS: Chest radiograph showed right lower lobe consolidation. "
            f"White cell count {10 + i}.2 per nanolitre.\n\n"
            "FINAL DIAGNOSIS: Community-acquired pneumonia."
        )
        lines.append(json.dumps({"id": f"case-{i:03d}", "text": text}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def llm_server() -> Iterator[ScriptedLLM]:
    srv = ScriptedLLM().start()
    try:
        yield srv
    finally:
        srv.stop()


async def _serve_async(srv: ScriptedLLM, port_file: Path) -> None:  # pragma: no cover
    """The same scripted replies (``srv._respond``) over an asyncio HTTP/1.1 server.

    For the benchmark: a thread per connection, each sleeping out the injected
    latency under the GIL, costs the server more CPU than the client under test
    uses, on the same two cores. Here the latency is an ``asyncio.sleep`` and
    connections are kept alive, as a real inference server does.
    """
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = json.loads(await reader.readexactly(length))
                status, headers, content, delay, _ = srv._respond(body)
                await asyncio.sleep(delay)
                extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
                    f"Content-Length: {len(content)}\r\n\r\n".encode()
                    + content
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    port_file.write_text(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


def main() -> None:  # pragma: no cover - used by the benchmark
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument(
        "--threaded", action="store_true", help="Use the tests' thread-per-connection server."
    )
    args = parser.parse_args()
    srv = ScriptedLLM(latency_s=args.latency)
    if args.threaded:
        args.port_file.write_text(str(srv.port))
        srv.httpd.serve_forever(poll_interval=0.05)
    else:
        import asyncio

        srv.httpd.server_close()  # only its reply logic is used
        asyncio.run(_serve_async(srv, args.port_file))


if __name__ == "__main__":
    main()
