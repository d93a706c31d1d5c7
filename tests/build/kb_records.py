"""A coherent synthetic record of a given condition, for the linter tests."""

from __future__ import annotations

from typing import Any

from behaviorsft.build.conversation import render
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case


def kb_record(condition: str, seed: int = 7) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first synthetic case of ``condition`` and its conversation, as JSON dicts."""
    kb = load_kb()
    for i in range(200):
        case = synthesize_case(i, seed=seed, kb=kb)
        if case.conditions[0].code == condition:
            conv = render(case, kb, seed=seed).conversation
            return case.model_dump(mode="json"), conv.model_dump(mode="json")
    raise AssertionError(f"no {condition} case in the first 200")
