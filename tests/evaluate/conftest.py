"""Fixtures for the evaluation tests: a small bench on disk and a scripted model.

The scripted model is a test double at the model boundary only (it implements
the public ``Model`` protocol); everything behind it — prompts, parsing,
resume, scoring — is the real code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.examples import example_conversation
from behaviorsft.models.base import (
    ChoiceRequest,
    ChoiceScores,
    Generation,
    GenerationRequest,
    ProgressCallback,
)
from behaviorsft.records import Task, Usage
from behaviorsft.store import write_jsonl
from behaviorsft.taxonomy import TABLE_ORDER, Category, category_of
from tests.conftest import make_task_dict

SCORES = {Category.REACTIVE: 0.1, Category.BALANCED: 0.5, Category.PROACTIVE: 0.9}


def bench_tasks(per_type_test: int = 4, per_type_train: int = 4) -> list[Task]:
    """Tasks of all 13 types, answers cycling A-D, train and test splits.

    Proactive types alternate restraint controls (gold 'D', the "no issue"
    option) and tasks with an injected error.
    """
    tasks = []
    n = 0
    for ttype in TABLE_ORDER:
        cat = category_of(ttype)
        for split, count in (("test", per_type_test), ("train", per_type_train)):
            for i in range(count):
                control = cat is Category.PROACTIVE and i % 2 == 1
                overrides: dict[str, Any] = {
                    "id": f"{ttype.value}-{split}-{i}",
                    "case_id": f"case-{n % 7}",
                    "task_type": ttype.value,
                    "behavior_score": SCORES[cat],
                    "answer": "D" if control else "ABCD"[(i + n) % 3],
                    "split": split,
                    "restraint_control": control,
                    "options": [
                        {"label": "A", "text": f"Option one for {ttype.value} {split} {i}"},
                        {"label": "B", "text": f"Option two for {ttype.value} {split} {i}"},
                        {"label": "C", "text": f"Option three for {ttype.value} {split} {i}"},
                        {"label": "D", "text": "No issue: nothing needs to change."},
                    ],
                }
                if control or cat is not Category.PROACTIVE:
                    overrides["perturbation"] = None
                tasks.append(Task.model_validate(make_task_dict(**overrides)))
                n += 1
    return tasks


def write_bench(folder: Path, tasks: Sequence[Task]) -> Path:
    """Write tasks and one conversation per case into a BENCH folder."""
    base = example_conversation()
    cases = sorted({t.case_id for t in tasks})
    write_jsonl(folder / "tasks.jsonl", tasks)
    write_jsonl(
        folder / "conversations.jsonl", [base.model_copy(update={"case_id": c}) for c in cases]
    )
    return folder


@pytest.fixture
def small_bench(tmp_path: Path) -> Path:
    """A BENCH folder with 13 types x (4 test + 4 train) tasks."""
    return write_bench(tmp_path / "bench", bench_tasks())


Reply = Callable[[GenerationRequest], str]


class ScriptedModel:
    """A deterministic model: replies come from a function of the request.

    ``fail`` maps a request key to how many times its call fails before it
    succeeds (an infrastructure fault, reported as ``Generation.error``);
    keys in ``final`` always fail with an error marked final (a refused request);
    ``p_proactive`` is returned for tracked behaviour tokens; ``choice``
    gives letter probabilities for choice scoring.
    """

    def __init__(
        self,
        reply: Reply,
        *,
        name: str = "scripted/model",
        fail: dict[str, int] | None = None,
        p_proactive: float = 0.8,
        choice: Callable[[ChoiceRequest], dict[str, float]] | None = None,
        final: set[str] | None = None,
    ) -> None:
        self.name = name
        self.supports_choice_scoring = choice is not None
        self.reply = reply
        self.fail = dict(fail or {})
        self.p_proactive = p_proactive
        self.choice = choice
        self.final = set(final or ())
        self.requests: list[GenerationRequest] = []
        self.choice_requests: list[ChoiceRequest] = []
        self.closed = False

    def generate(
        self, requests: Sequence[GenerationRequest], *, progress: ProgressCallback | None = None
    ) -> list[Generation]:
        out = []
        for r in requests:
            self.requests.append(r)
            if r.key in self.final:
                out.append(Generation(text=None, error="HTTP 400: prompt too long", final=True))
                continue
            if self.fail.get(r.key, 0) > 0:
                self.fail[r.key] -= 1
                out.append(Generation(text=None, error="HTTP 503 after 3 attempts"))
                continue
            probs = None
            if r.track_tokens:
                probs = {
                    "<proactive>": self.p_proactive / 2,
                    "<reactive>": (1 - self.p_proactive) / 2,
                }
            text = r.assistant_prefix + self.reply(r)
            out.append(
                Generation(
                    text=text,
                    usage=Usage(prompt_tokens=10, completion_tokens=5),
                    latency_s=0.01,
                    token_probs=probs,
                )
            )
        if progress:
            progress(len(requests))
        return out

    def score_choices(
        self, requests: Sequence[ChoiceRequest], *, progress: ProgressCallback | None = None
    ) -> list[ChoiceScores]:
        if self.choice is None:
            raise NotImplementedError("no choice scoring")
        out = []
        for r in requests:
            self.choice_requests.append(r)
            probs = self.choice(r)
            out.append(ChoiceScores(logprobs={k: math.log(v) for k, v in probs.items()}))
        return out

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def scripted() -> type[ScriptedModel]:
    """The ScriptedModel class (fixtures cannot be imported across test files)."""
    return ScriptedModel
