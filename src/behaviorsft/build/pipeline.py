"""``behaviorsft build``: cases -> conversations -> tasks, with splits, resumable and parallel.

Per case, in a worker process: validate the case, take its own conversation
(dialogue sources) or render one, generate its tasks, serialise everything.
The parent writes in case order: tasks first, then the conversation, then the
case itself. A case line in ``BENCH/cases.jsonl`` therefore means its tasks and
conversation are complete, so a re-run after a crash (even SIGKILL) skips
finished cases, regenerates the interrupted one (output is deterministic per
case) and drops the task lines already written by id: no duplicate, no gap.

Memory stays flat: cases stream through; only ids, splits and counters are
kept (plus the input conversations of dialogue sources, which are small).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from behaviorsft.bench import CASES_FILE, CONVERSATIONS_FILE, TASKS_FILE
from behaviorsft.build.conversation import Rendered, render
from behaviorsft.build.splits import PAPER_PROPORTIONS, assign_splits
from behaviorsft.build.tasks import SOURCE_TYPES, case_tasks
from behaviorsft.records import Case, Conversation, Split, TaskType
from behaviorsft.sources.kb import KnowledgeBase, load_kb
from behaviorsft.store import (
    JsonlWriter,
    RecordError,
    scan_jsonl,
    validation_errors,
)

CHUNK = 32
# (file, line, case JSON, its conversation JSON if the source had one, split)
_Item = tuple[str, int, dict[str, Any], dict[str, Any] | None, str | None]


@dataclass
class BuildReport:
    """What a build wrote (cumulative over resumed runs) and what it skipped."""

    cases: int = 0
    tasks: int = 0
    new_cases: int = 0
    new_tasks: int = 0
    resumed_from: int = 0
    by_source_type: dict[str, dict[str, int]] = field(default_factory=dict)
    controls: dict[str, int] = field(default_factory=dict)
    perturbed: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    errors: list[RecordError] = field(default_factory=list)
    # Items the generators left out because their key could not be verified against the
    # record, by "<task type>: <reason>" (cases built by this run).
    dropped: Counter[str] = field(default_factory=Counter)


# Worker state (set once per process by the initializer).
_KB: KnowledgeBase | None = None
_OPTS: dict[str, Any] = {}


def _init(seed: int, types: list[str] | None) -> None:
    global _KB, _OPTS
    _KB = load_kb()
    _OPTS = {"seed": seed, "types": {TaskType(t) for t in types} if types else None}


def _one(
    item: tuple[str, int, dict[str, Any], dict[str, Any] | None, str | None],
) -> dict[str, Any]:
    path, line, case_obj, conv_obj, split = item
    assert _KB is not None
    try:
        case = Case.model_validate(case_obj)
    except ValidationError as exc:
        return {"errors": validation_errors(path, line, exc)}
    if conv_obj is not None:
        try:
            conversation = Conversation.model_validate(conv_obj)
        except ValidationError as exc:
            return {"errors": validation_errors(path, line, exc)}
        # A real dialogue (ACI-Bench, MTS-Dialog) is used as is: nothing to render, no anchors.
        rendered = Rendered(conversation=conversation)
    else:
        rendered = render(case, _KB, seed=_OPTS["seed"])
    dropped: Counter[str] = Counter()
    tasks = case_tasks(
        case,
        rendered,
        _KB,
        seed=_OPTS["seed"],
        split=Split(split) if split else None,
        types=_OPTS["types"],
        dropped=dropped,
    )
    return {
        "dropped": dict(dropped),
        "case_id": case.id,
        "case": case.model_dump_json(),
        "conversation": rendered.conversation.model_dump_json(),
        "tasks": [(t.id, t.model_dump_json()) for t in tasks],
    }


def _read_conversations(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return out
    for _, obj, _, _ in scan_jsonl(path, None, key=None):
        if isinstance(obj, dict) and isinstance(obj.get("case_id"), str):
            out[obj["case_id"]] = obj
    return out


def build_bench(
    cases_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    types: list[str] | None = None,
    proportions: tuple[float, float, float] = PAPER_PROPORTIONS,
    workers: int | None = None,
    fresh: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Build (or finish building) ``out`` from a cases JSONL file.

    ``progress(done, total)`` is called after each case. ``workers``: processes
    (default: CPU count, at most 8; 1 runs inline). Bad case lines are reported
    in ``BuildReport.errors`` as file:line: field: problem and skipped.
    """
    src = Path(cases_path)
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    if fresh:
        for name in (CASES_FILE, CONVERSATIONS_FILE, TASKS_FILE):
            (dest / name).unlink(missing_ok=True)
    report = BuildReport()

    # Pass 1: ids (for splits) and sources, from plain JSON; full validation is per case.
    ids: list[str] = []
    source_of: dict[str, str] = {}
    for line, obj, errors, _ in scan_jsonl(src, None, key="id"):
        if errors or not isinstance(obj, dict):
            report.errors.extend(errors)
            continue
        cid = obj.get("id")
        if not isinstance(cid, str) or not cid:
            report.errors.append(RecordError(str(src), line, "id", "missing or not a string"))
            continue
        ids.append(cid)
        src_obj = obj.get("source")
        source_of[cid] = src_obj.get("name", "?") if isinstance(src_obj, dict) else "?"
    splits = assign_splits(ids, seed=seed, proportions=proportions)
    conversations = _read_conversations(src.with_name(CONVERSATIONS_FILE))

    task_w = JsonlWriter(dest / TASKS_FILE)
    conv_w = JsonlWriter(dest / CONVERSATIONS_FILE, key="case_id")
    case_w = JsonlWriter(dest / CASES_FILE)
    report.resumed_from = len(case_w)
    total = len(ids)

    def items() -> Iterator[_Item]:
        for line, obj, errors, _ in scan_jsonl(src, None, key="id"):
            if errors or not isinstance(obj, dict) or obj.get("id") in case_w:
                continue
            cid = obj.get("id")
            if not isinstance(cid, str) or not cid:
                continue
            split = splits.get(cid)
            yield str(src), line, obj, conversations.get(cid), split.value if split else None

    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    done = len(case_w)
    try:
        if n_workers <= 1:
            _init(seed, types)
            results: Iterator[dict[str, Any]] = map(_one, items())
            pool = None
        else:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            pool = ctx.Pool(n_workers, initializer=_init, initargs=(seed, types))
            results = pool.imap(_one, items(), chunksize=CHUNK)
        for res in results:
            if "errors" in res:
                report.errors.extend(res["errors"])
                continue
            for tid, line in res["tasks"]:
                report.new_tasks += task_w.write_line(tid, line)
            report.dropped.update(res["dropped"])
            conv_w.write_line(res["case_id"], res["conversation"])
            report.new_cases += case_w.write_line(res["case_id"], res["case"])
            done += 1
            if progress is not None:
                progress(done, total)
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        for w in (task_w, conv_w, case_w):
            w.close()

    _count(dest / TASKS_FILE, source_of, report)
    report.cases = len(case_w)
    return report


def _count(tasks_path: Path, source_of: dict[str, str], report: BuildReport) -> None:
    """Per source x type counts, controls, perturbed items and splits, from the file."""
    by: dict[str, Counter[str]] = defaultdict(Counter)
    controls: Counter[str] = Counter()
    perturbed: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    n = 0
    with open(tasks_path, encoding="utf-8") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            t = json.loads(raw)
            n += 1
            ttype = t["task_type"]
            by[source_of.get(t["case_id"], "?")][ttype] += 1
            controls[ttype] += bool(t.get("restraint_control"))
            perturbed[ttype] += t.get("perturbation") is not None
            splits[t.get("split") or "none"] += 1
    report.tasks = n
    report.by_source_type = {s: dict(c) for s, c in sorted(by.items())}
    report.controls = dict(controls)
    report.perturbed = dict(perturbed)
    report.splits = dict(splits)


__all__ = ["SOURCE_TYPES", "BuildReport", "build_bench"]
