"""Shortcut baselines: answers that use no model at all.

They are the floor every model column is read against. ``baseline/random``
shows chance on each task type (it differs between types because the number of
options does); ``baseline/longest`` shows how much an answer-length shortcut
would earn, which the builder's audit keeps at chance or below. A model that
does not beat them has learned nothing about the case.

They are evaluated by the same runner as models (``behaviorsft eval --model
baseline/random``), so their RUN folders, metrics and report columns are the
same as any model's.
"""

from __future__ import annotations

import hashlib
import random

from behaviorsft.records import Task

BASELINES: dict[str, str] = {
    "random": "a uniformly random option, seeded by task id and seed",
    "longest": "the option with the most characters (ties broken at random, seeded)",
}


def _rng(task: Task, seed: int, kind: str) -> random.Random:
    # A stable per-(task, seed) stream: the same answer on every run and machine,
    # independent of the order or subset of tasks evaluated.
    digest = hashlib.sha256(f"{kind}|{task.id}|{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def baseline_answer(task: Task, kind: str, seed: int = 0) -> str:
    """The letter baseline ``kind`` picks for ``task``."""
    if kind not in BASELINES:
        raise ValueError(
            f"baseline/{kind}: unknown baseline; choose one of "
            + ", ".join(f"baseline/{k}" for k in BASELINES)
        )
    rng = _rng(task, seed, kind)
    if kind == "random":
        return rng.choice([o.label for o in task.options])
    longest = max(len(o.text) for o in task.options)
    # Ties at random, not "first": a first-wins rule would mix a position bias in.
    return rng.choice([o.label for o in task.options if len(o.text) == longest])


def describe(kind: str) -> str:
    """The raw_output written for a baseline prediction (says what produced it)."""
    return f"[baseline/{kind}: {BASELINES[kind]}]"
