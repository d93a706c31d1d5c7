"""BehaviorBench-Hard: the tasks that several models fail.

A *model* is the ``model`` of a RUN's config.json; several RUN folders of the
same model (other strategies or seeds) are pooled. A model **fails** a task
when its answered rows for that task (rows with ``error`` do not count) are
wrong under the chosen rule:

``all``       every answered row is wrong (it fails on every seed; the default)
``majority``  more than half are wrong
``any``       at least one is wrong

A task is *hard* when at least ``min_failing_models`` models fail it. By
default every hard task is kept. With ``size``, that many are kept, spread
over task types in proportion to the source split (largest remainders),
preferring tasks more models fail and breaking ties with a seeded shuffle; a
type with too few hard tasks gives its share to the others. The result is a
BENCH folder (so ``behaviorsft eval --bench HARD`` works) plus
``composition.json``.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from behaviorsft.bench import CONVERSATIONS_FILE, TASKS_FILE, load_bench
from behaviorsft.evaluate.runner import (
    SPLITS,
    check_task_fingerprints,
    load_predictions,
    read_config,
)
from behaviorsft.records import Prediction, Task
from behaviorsft.store import new_manifest, write_jsonl, write_manifest
from behaviorsft.study.verdicts import exclude_rejected as drop_rejected
from behaviorsft.taxonomy import TABLE_ORDER, Category, TaskType, category_of

FAIL_RULES = ("all", "majority", "any")
COMPOSITION_FILE = "composition.json"

# What the paper reports for its Hard subset, for side-by-side comparison.
PAPER_HARD = {
    "n_tasks": 297,
    "category_share": {"proactive": 0.43, "reactive": 0.39, "balanced": 0.18},
}


def model_fails(outcomes: Sequence[bool], rule: str) -> bool:
    """Whether a model with these answered outcomes (True = correct) fails the task."""
    if not outcomes:
        return False  # never answered: no evidence either way
    wrong = sum(not ok for ok in outcomes)
    if rule == "all":
        return wrong == len(outcomes)
    if rule == "majority":
        return wrong * 2 > len(outcomes)
    if rule == "any":
        return wrong > 0
    raise ValueError(f"unknown fail rule {rule!r}; choose one of {', '.join(FAIL_RULES)}")


def failing_models(
    tasks: Mapping[str, Task],
    runs: Sequence[tuple[str, Sequence[Prediction]]],
    *,
    rule: str = "all",
) -> dict[str, set[str]]:
    """Task id -> the models that fail it, from ``(model, predictions)`` pairs."""
    outcomes: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for model, preds in runs:
        for p in preds:
            task = tasks.get(p.task_id)
            if task is None or p.error is not None:
                continue
            outcomes[p.task_id][model].append(p.parsed_answer == task.answer)
    return {
        tid: {m for m, oks in by_model.items() if model_fails(oks, rule)}
        for tid, by_model in outcomes.items()
    }


def allocate(
    weights: Mapping[TaskType, float], capacity: Mapping[TaskType, int], size: int
) -> dict[TaskType, int]:
    """Split ``size`` over types in proportion to ``weights``, at most ``capacity`` each.

    Largest-remainder rounding; what a full type cannot take goes to the
    others, again in proportion (uniformly once no weighted type is left).
    Ties follow the order of ``capacity``.
    """
    alloc = {k: 0 for k in capacity}
    remaining = min(size, sum(capacity.values()))
    while remaining > 0:
        open_keys = [k for k in capacity if alloc[k] < capacity[k]]
        w = {k: float(weights.get(k, 0)) for k in open_keys}
        if sum(w.values()) <= 0:
            w = dict.fromkeys(open_keys, 1.0)
        total = sum(w.values())
        exact = {k: remaining * w[k] / total for k in open_keys}
        share = {k: int(exact[k]) for k in open_keys}
        leftover = remaining - sum(share.values())
        for k in sorted(open_keys, key=lambda k: share[k] - exact[k])[:leftover]:
            share[k] += 1
        for k in open_keys:
            take = min(share[k], capacity[k] - alloc[k])
            alloc[k] += take
            remaining -= take
    return alloc


def select_hard(
    tasks: Sequence[Task],
    failing: Mapping[str, set[str]],
    *,
    min_failing_models: int = 2,
    size: int | None = None,
    seed: int = 0,
) -> list[Task]:
    """The hard tasks (in ``tasks`` order); with ``size``, a type-balanced subset of them."""
    hard = [t for t in tasks if len(failing.get(t.id, ())) >= min_failing_models]
    if size is None or size >= len(hard):
        return hard
    rng = random.Random(seed)
    by_type: dict[TaskType, list[Task]] = defaultdict(list)
    for t in hard:
        by_type[t.task_type].append(t)
    source_mix = Counter(t.task_type for t in tasks)
    capacity = {t: len(by_type[t]) for t in TABLE_ORDER if t in by_type}
    alloc = allocate(source_mix, capacity, size)
    keep: set[str] = set()
    for ttype, group in by_type.items():
        shuffled = list(group)
        rng.shuffle(shuffled)
        shuffled.sort(key=lambda t: -len(failing.get(t.id, ())))  # stable: shuffle breaks ties
        keep.update(t.id for t in shuffled[: alloc[ttype]])
    return [t for t in hard if t.id in keep]


def composition(tasks: Sequence[Task]) -> dict[str, Any]:
    """Counts and shares per category and per task type."""
    n = len(tasks)
    cats = Counter(category_of(t.task_type).value for t in tasks)
    types = Counter(t.task_type.value for t in tasks)
    return {
        "n_tasks": n,
        "category_count": {c.value: cats.get(c.value, 0) for c in Category},
        "category_share": {c.value: (cats.get(c.value, 0) / n if n else None) for c in Category},
        "type_count": {t.value: types.get(t.value, 0) for t in TABLE_ORDER},
    }


def build_hard(
    bench: str | Path,
    runs: Sequence[str | Path],
    out: str | Path,
    *,
    split: str | None = None,
    min_failing_models: int = 2,
    rule: str = "all",
    size: int | None = None,
    seed: int = 0,
    exclude_rejected: bool = False,
) -> dict[str, Any]:
    """Write the Hard BENCH folder at ``out``; return its composition report.

    ``exclude_rejected``: tasks a clinician study rejected (``study apply``) are
    not candidates; the manifest records how many and the verdicts file's hash.
    """
    if rule not in FAIL_RULES:
        raise ValueError(f"--fail-rule must be one of {', '.join(FAIL_RULES)}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"--split {split!r} is unknown; choose one of {', '.join(SPLITS)}")
    if min_failing_models < 1:
        raise ValueError("--min-failing-models must be at least 1")
    source = load_bench(bench)
    # The fingerprint check below reads the whole bench; only the candidates shrink.
    candidates, exclusion = source, None
    if exclude_rejected:
        candidates, exclusion = drop_rejected(source)
    configs = [read_config(r) for r in runs]
    split = split or (configs[0].split if configs else "test")
    pool = candidates.split(split)
    by_id = {t.id: t for t in pool}
    models = sorted({c.model for c in configs})
    if len(models) < min_failing_models:
        raise ValueError(
            f"{len(models)} distinct model(s) in the runs ({', '.join(models)}), but "
            f"--min-failing-models is {min_failing_models}: no task could qualify"
        )
    pairs = [(c.model, load_predictions(r)) for c, r in zip(configs, runs, strict=True)]
    for (_, preds), config, run in zip(pairs, configs, runs, strict=True):
        check_task_fingerprints(run, source, config, preds)
    failing = failing_models(by_id, pairs, rule=rule)
    hard = select_hard(pool, failing, min_failing_models=min_failing_models, size=size, seed=seed)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / TASKS_FILE, hard)
    cases = {t.case_id for t in hard}
    write_jsonl(
        out_dir / CONVERSATIONS_FILE,
        [c for cid, c in sorted(source.conversations.items()) if cid in cases],
    )
    report = {
        "source": str(Path(bench).resolve()),
        "split": split,
        "models": models,
        "runs": [str(Path(r).resolve()) for r in runs],
        "min_failing_models": min_failing_models,
        "fail_rule": rule,
        "size": size,
        "seed": seed,
        "hard": composition(hard),
        "source_split": composition(pool),
        "paper": PAPER_HARD,
        "failing_models": {t.id: sorted(failing.get(t.id, ())) for t in hard},
        "study_verdicts": exclusion.record() if exclusion else None,
    }
    (out_dir / COMPOSITION_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    manifest = new_manifest(
        "hard",
        config={
            k: report[k]
            for k in (
                "source",
                "split",
                "models",
                "runs",
                "min_failing_models",
                "fail_rule",
                "size",
                "seed",
                "study_verdicts",
            )
        },
        seeds=[seed],
        counts={"tasks": len(hard), "candidates": len(pool), "conversations": len(cases)}
        | ({"excluded_rejected": exclusion.excluded} if exclusion else {}),
        notes=[exclusion.note()] if exclusion else [],
    )
    write_manifest(out_dir, manifest)
    return report
