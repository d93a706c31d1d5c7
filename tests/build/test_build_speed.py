"""The build's shortcuts give what the plain computations give (build speed, session 12)."""

from __future__ import annotations

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import case_tasks
from behaviorsft.build.tasks import integrity
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case
from behaviorsft.taxonomy import TaskType

MISSING = TaskType.INTEGRITY_MISSING_TURN_INFERENCE


def _missing_turn_items(index: int, reference: bool, monkeypatch: pytest.MonkeyPatch) -> list:
    kb = load_kb()
    case = synthesize_case(index, seed=7, kb=kb)
    rendered = render(case, kb, seed=7)
    monkeypatch.setattr(integrity, "_REFERENCE_POOL", reference)
    tasks = case_tasks(case, rendered, kb, seed=7, types={MISSING})
    return [t.model_dump(mode="json") for t in tasks]


@pytest.mark.parametrize("index", range(8))
def test_missing_turn_pool_matches_reference(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-pass pool (cached norms and shares) gives the items the original
    ``grounded`` calls give, wrong options and their order included."""
    fast = _missing_turn_items(index, False, monkeypatch)
    slow = _missing_turn_items(index, True, monkeypatch)
    assert fast, "the case has missing-turn items"
    assert fast == slow
