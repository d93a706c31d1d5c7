"""A coherent synthetic record of a given condition, for the linter tests."""

from __future__ import annotations

from typing import Any

from behaviorsft.build.conversation import render
from behaviorsft.records import Case, Conversation
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


def case_record(index: int, seed: int) -> tuple[Case, Conversation]:
    """Case ``index`` of ``cases synth --seed seed`` and its conversation."""
    kb = load_kb()
    case = synthesize_case(index, seed=seed, kb=kb)
    return case, render(case, kb, seed=seed).conversation


def record_rules(case: Case | dict[str, Any], conv: Conversation | dict[str, Any]) -> list[str]:
    """The rules the linter reports on one record, given as models or as JSON dicts."""
    from behaviorsft.build.lint import lint_records

    c = case.model_dump(mode="json") if isinstance(case, Case) else case
    v = conv.model_dump(mode="json") if isinstance(conv, Conversation) else conv
    return [f.rule for f in lint_records([(1, c)], [(1, v)])]


def build_item(kb: Any, index: int, seed: int) -> tuple[Any, Any, list[Any]]:
    """Case ``index`` of ``cases synth --seed seed``, its rendering and its tasks (the way
    the review-round tests rebuild a named item, e.g. 37-000452)."""
    from behaviorsft.build.tasks import case_tasks

    case = synthesize_case(index, seed=seed, kb=kb)
    rendered = render(case, kb, seed=seed)
    return case, rendered, list(case_tasks(case, rendered, kb, seed=seed))


def as_records(
    case: Any, rendered: Any, tasks: list[Any]
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A built item as the JSON records a bench folder holds."""
    return (
        case.model_dump(mode="json"),
        rendered.conversation.model_dump(mode="json"),
        [t.model_dump(mode="json") for t in tasks],
    )


def lint_rules(
    kb: Any, case: dict[str, Any], conv: dict[str, Any], tasks: list[dict[str, Any]] | None = None
) -> list[str]:
    """The rules the linter reports on one record (and its tasks)."""
    from behaviorsft.build.lint import lint_records

    found = lint_records(
        [(1, case)], [(1, conv)], kb=kb, tasks=list(enumerate(tasks, 1)) if tasks else None
    )
    return [f.rule for f in found]


class _Found:
    """Collects the rules a linter hook reports (``where.add``)."""

    def __init__(self) -> None:
        self.rules: list[str] = []

    def add(self, rule: str, message: str, turn: int | None = None) -> None:
        self.rules.append(rule)


def item_rules(task: dict[str, Any], conv: dict[str, Any] | None) -> list[str]:
    """The rules ``lint_items.lint_task`` reports on one task and its conversation."""
    from behaviorsft.build import lint_items

    found = _Found()
    lint_items.lint_task(found, task, conv)
    return found.rules
