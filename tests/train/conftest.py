"""Fixtures for the training tests: a small synthetic bench and tiny models built on disk.

The bench is made so that the behaviour token is learnable from the prompt,
as in real BehaviorBench tasks: each task type asks its question in its own
words, and the rationale's style follows the token (reactive rationales
report, proactive ones flag), so forcing a token visibly changes what follows.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.records import Task
from behaviorsft.store import write_jsonl
from behaviorsft.tiny import build_tiny_model
from tests.conftest import make_task_dict

DRUGS = ["amoxicillin", "heparin", "insulin", "warfarin", "digoxin", "morphine", "cefazolin"]
LABS = ["potassium", "sodium", "lactate", "creatinine", "troponin", "glucose", "hemoglobin"]

# task type -> (question template, behaviour scores used in turn). Reactive and
# proactive types get their token from the type, so it is learnable from the
# wording. The balanced type asks the same question at scores on both sides of
# 0.5: its token cannot be read off the prompt, so the only way to learn its
# rationale is to follow the token, which is what makes forcing a token work.
QUESTIONS: dict[str, tuple[str, tuple[float, ...]]] = {
    "fact_retrieval": ("What was the recorded {lab} value?", (0.1,)),
    "timeline_sequence": ("Which came first, the {lab} test or the {drug} dose?", (0.15,)),
    "explicit_error_correction": ("Is the planned {drug} order safe for this patient?", (0.9,)),
    "omission_detection": ("Which check is missing before giving {drug}?", (0.85,)),
    "reasoning_differential_evolution": (
        "How does the new {lab} result change the differential?",
        (0.45, 0.55),
    ),
    "integrity_missing_turn_inference": (
        "What did the missing turn most likely say about {drug}?",
        (0.55, 0.45),
    ),
}
REACTIVE_RATIONALE = "Stated in the record as reported."
PROACTIVE_RATIONALE = "Flag: the plan needs review now."
BALANCED_TYPES = ("reasoning_differential_evolution", "integrity_missing_turn_inference")


def synthetic_task(i: int, task_type: str, split: str, rng: random.Random) -> dict[str, Any]:
    """One valid task dict of ``task_type`` with its own wording and a random answer."""
    template, scores = QUESTIONS[task_type]
    score = scores[i % len(scores)]
    drug, lab = rng.choice(DRUGS), rng.choice(LABS)
    options = [
        {"label": letter, "text": f"{word} {lab} {drug}"}
        for letter, word in zip("ABCD", ("Low", "High", "Normal", "Absent"), strict=True)
    ]
    return make_task_dict(
        id=f"{split}-{task_type}-{i:03d}",
        case_id=f"case-{split}-{i:03d}",
        task_type=task_type,
        question=template.format(drug=drug, lab=lab),
        context={"excerpt": f"{lab} {rng.randint(2, 9)}.{rng.randint(0, 9)}; {drug} given."},
        options=options,
        answer=rng.choice("ABCD"),
        rationale=PROACTIVE_RATIONALE if score >= 0.5 else REACTIVE_RATIONALE,
        behavior_score=score,
        perturbation=None,
        option_permutation=None,
        split=split,
    )


def write_bench(
    folder: Path, counts: dict[str, int], *, seed: int = 0, extra: list[dict[str, Any]] = ()
) -> Path:
    """A BENCH folder with ``counts[split]`` tasks per task type in each split."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for split, n in counts.items():
        for task_type in QUESTIONS:
            rows.extend(synthetic_task(i, task_type, split, rng) for i in range(n))
    rows.extend(extra)
    tasks = [Task.model_validate(r) for r in rows]
    write_jsonl(folder / "tasks.jsonl", tasks)
    return folder


def corpus(bench: Path) -> list[str]:
    """Texts to train the tiny tokenizer on, so prompts are a few hundred tokens, not bytes."""
    from behaviorsft.bench import load_bench
    from behaviorsft.prompts import build_messages

    b = load_bench(bench)
    out = []
    for t in b.tasks[:40]:
        out.extend(m.content for m in build_messages(t, b.context_text(t), "behaviorsft"))
        out.append(t.rationale)
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: tiny models gain nothing from more, and on a shared
    2-core machine spinning OpenMP threads can slow a step down twentyfold."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def small_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 train, 2 val, 2 test tasks per type (6 types)."""
    return write_bench(tmp_path_factory.mktemp("bench"), {"train": 6, "val": 2, "test": 2})


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory, small_bench: Path) -> dict[str, Path]:
    """Tiny models: tied Qwen2 with spare rows (no resize) and untied Llama without (resize)."""
    texts = corpus(small_bench)
    root = tmp_path_factory.mktemp("models")
    return {
        "tied": build_tiny_model(
            root / "qwen2-tied", arch="qwen2", tie_word_embeddings=True, spare_rows=8, texts=texts
        ),
        "untied": build_tiny_model(
            root / "llama-untied",
            arch="llama",
            tie_word_embeddings=False,
            spare_rows=0,
            texts=texts,
        ),
    }
