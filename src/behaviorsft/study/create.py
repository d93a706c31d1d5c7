"""Make a study from a bench: pick tasks, snapshot them, and fill each rater's queue.

Task choice is stratified by task type: types take turns (in a seeded order),
each giving its next task in a seeded order, until ``n`` are chosen, so every
type is represented as evenly as the bench allows. Every rater gets every
task unless ``overlap`` says how many raters each task needs (then tasks go
to raters round-robin, so loads differ by at most one).

A rater's queue is shuffled with a seed derived from the study seed and the
rater's name; for comparison, which run is shown as Agent A, B, C is shuffled
per (rater, task) the same way and stored with the assignment, so it never
changes once the study exists.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from behaviorsft import __version__
from behaviorsft.bench import CASES_FILE, Bench, load_bench
from behaviorsft.records import Case, Conversation, Prediction, Task
from behaviorsft.store import RecordFileError, load_records
from behaviorsft.study.db import AgentResponse, Assignment, Study, StudyTask, User

MIN_RUNS, MAX_RUNS = 2, 6
AGENT_LABELS = "ABCDEF"


class StudyInputError(ValueError):
    """Bad input to ``study create`` (the message names the file, line or option)."""


class StudyExistsError(ValueError):
    """A study with that name is already in the database."""


@dataclass
class RunInput:
    """A generation run given to ``study create comparison``: its name and replies."""

    name: str
    path: Path
    replies: dict[str, str]  # task id -> reply text (behaviour tokens removed)


def seeded_rng(*parts: object) -> random.Random:
    """A random stream fixed by ``parts`` on every machine and Python version."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def stratified_sample(tasks: Sequence[Task], n: int, seed: int) -> list[Task]:
    """``n`` tasks, task types taking turns in a seeded order (see the module docstring)."""
    if n < 1:
        raise StudyInputError(f"--n {n}: need at least 1 task")
    if n > len(tasks):
        raise StudyInputError(f"--n {n}: only {len(tasks)} task(s) are available")
    by_type: dict[str, list[Task]] = defaultdict(list)
    for task in sorted(tasks, key=lambda t: t.id):
        by_type[task.task_type.value].append(task)
    types = sorted(by_type)
    seeded_rng(seed, "types").shuffle(types)
    for name in types:
        seeded_rng(seed, "type", name).shuffle(by_type[name])
    chosen: list[Task] = []
    depth = 0
    while len(chosen) < n:
        for name in types:
            if depth < len(by_type[name]) and len(chosen) < n:
                chosen.append(by_type[name][depth])
        depth += 1
    return chosen


def assign(
    task_ids: Sequence[str], raters: Sequence[str], overlap: int | None
) -> dict[str, list[str]]:
    """Rater name -> task ids; every rater every task unless ``overlap`` raters per task."""
    k = len(raters) if overlap is None else overlap
    if not 1 <= k <= len(raters):
        raise StudyInputError(f"--overlap {overlap}: must be between 1 and {len(raters)} raters")
    queues: dict[str, list[str]] = {r: [] for r in raters}
    for i, tid in enumerate(task_ids):
        for j in range(k):
            queues[raters[(i * k + j) % len(raters)]].append(tid)
    return queues


def case_summary(case: Case | None) -> str:
    """The summary shown above the conversation (demographics and presentation)."""
    if case is None:
        return ""
    parts = []
    demo = case.demographics
    who = ", ".join(
        x
        for x in (
            f"{demo.age_years:g} years" if demo.age_years is not None else "",
            demo.sex if demo.sex != "unknown" else "",
            demo.description,
        )
        if x
    )
    if who:
        parts.append(who + ".")
    if case.presentation:
        parts.append(case.presentation)
    return " ".join(parts)


def snapshot(task: Task, conversation: Conversation | None, summary: str) -> dict[str, Any]:
    """The StudyTask columns for ``task``: everything a rater's screen shows."""
    turns = [t.model_dump(mode="json") for t in conversation.turns] if conversation else []
    return {
        "task_id": task.id,
        "case_id": task.case_id,
        "task_type": task.task_type.value,
        "category": task.category.value,
        "case_summary": summary,
        "turns": turns,
        "turn_start": task.context.turn_start,
        "turn_end": task.context.turn_end,
        "excerpt": task.context.excerpt,
        "question": task.question,
        "options": [o.model_dump(mode="json") for o in task.options],
        "key": task.answer,
        "behavior_score": task.behavior_score,
    }


def _load_bench(path: Path) -> tuple[Bench, dict[str, Case]]:
    try:
        bench = load_bench(path)
    except FileNotFoundError as exc:
        raise StudyInputError(f"--bench {path}: {exc}") from None
    except RecordFileError as exc:
        raise StudyInputError(f"--bench {path}: {exc}") from None
    cases: dict[str, Case] = {}
    cases_path = path / CASES_FILE
    if cases_path.exists():
        result = load_records(cases_path, Case)
        if result.errors:
            raise StudyInputError(str(RecordFileError(result.errors)))
        needed = {t.case_id for t in bench.tasks}
        cases = {c.id: c for c in result.records if c.id in needed}
    if not bench.tasks:
        raise StudyInputError(f"--bench {path}: tasks.jsonl holds no tasks")
    return bench, cases


def _users(session: Session, raters: Sequence[str] | None) -> list[User]:
    if raters is None:
        users = list(
            session.scalars(select(User).where(User.is_admin.is_(False)).order_by(User.name))
        )
        if not users:
            raise StudyInputError(
                "no raters: add them first with `behaviorsft study users add NAME`, or name "
                "them with --raters"
            )
        return users
    if len(set(raters)) != len(raters):
        raise StudyInputError(f"--raters {' '.join(raters)}: a rater is named twice")
    found = {u.name: u for u in session.scalars(select(User).where(User.name.in_(raters)))}
    unknown = [r for r in raters if r not in found]
    if unknown:
        raise StudyInputError(
            f"--raters: unknown rater(s) {', '.join(unknown)}; add each with "
            "`behaviorsft study users add NAME` first"
        )
    return [found[r] for r in raters]


def _new_study(session: Session, name: str, **fields: Any) -> Study:
    if session.scalars(select(Study).where(Study.name == name)).one_or_none() is not None:
        raise StudyExistsError(
            f"a study named {name!r} is already in the database; give another --name"
        )
    study = Study(name=name, **fields)
    session.add(study)
    session.flush()
    return study


def _add_tasks(
    session: Session, study: Study, bench: Bench, cases: dict[str, Case], tasks: Sequence[Task]
) -> dict[str, StudyTask]:
    rows = {}
    for task in tasks:
        row = StudyTask(
            study_id=study.id,
            **snapshot(
                task,
                bench.conversation_for(task),
                case_summary(cases.get(task.case_id)),
            ),
        )
        session.add(row)
        rows[task.id] = row
    session.flush()
    return rows


def _fill_queues(
    session: Session,
    study: Study,
    users: Sequence[User],
    rows: dict[str, StudyTask],
    overlap: int | None,
    seed: int,
    runs: Sequence[str] | None = None,
) -> int:
    queues = assign(list(rows), [u.name for u in users], overlap)
    count = 0
    for user in users:
        queue = list(queues[user.name])
        seeded_rng(seed, "queue", user.name).shuffle(queue)
        for pos, tid in enumerate(queue, start=1):
            order = None
            if runs is not None:
                order = list(runs)
                seeded_rng(seed, "agents", user.name, tid).shuffle(order)
            session.add(
                Assignment(
                    study_id=study.id,
                    user_id=user.id,
                    study_task_id=rows[tid].id,
                    position=pos,
                    agent_runs=order,
                )
            )
            count += 1
    return count


def create_validation(
    engine: Engine,
    bench_path: Path,
    *,
    n: int,
    seed: int,
    raters: Sequence[str] | None = None,
    overlap: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Create a validation study; returns a summary (name, tasks per type, assignments)."""
    bench, cases = _load_bench(bench_path)
    chosen = stratified_sample(bench.tasks, n, seed)
    name = name or "validation"
    with Session(engine, expire_on_commit=False) as s, s.begin():
        users = _users(s, raters)
        assign([t.id for t in chosen], [u.name for u in users], overlap)  # checks --overlap
        study = _new_study(
            s,
            name,
            kind="validation",
            bench=str(bench_path.resolve()),
            seed=seed,
            config=_config(bench_path, n, overlap, users),
        )
        rows = _add_tasks(s, study, bench, cases, chosen)
        count = _fill_queues(s, study, users, rows, overlap, seed)
    return _summary(name, "validation", chosen, users, count)


def parse_run_arg(arg: str) -> tuple[str, Path]:
    """``PATH`` (named after its folder) or ``NAME=PATH``."""
    if "=" in arg and not Path(arg).exists():
        name, _, folder = arg.partition("=")
        if not name.strip():
            raise StudyInputError(f"--runs {arg}: empty name before '='")
        return name.strip(), Path(folder)
    path = Path(arg)
    return path.resolve().name, path


def read_run(name: str, path: Path, bench: Bench) -> RunInput:
    """The usable replies of one RUN folder: no error, some text, tasks of this bench."""
    from behaviorsft.evaluate.runner import CONFIG_FILE, PREDICTIONS_FILE
    from behaviorsft.judge.criteria import response_text

    pred_path = path / PREDICTIONS_FILE
    if not pred_path.is_file():
        raise StudyInputError(f"--runs {path}: no {PREDICTIONS_FILE}; is it a RUN folder?")
    config_path = path / CONFIG_FILE
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise StudyInputError(f"{config_path}: line {exc.lineno}: {exc.msg}") from None
        if isinstance(config, dict) and config.get("scoring") == "choice":
            raise StudyInputError(
                f"{config_path}: scoring: this run used --scoring choice, so it holds letter "
                "scores, not replies; compare runs made with --scoring generate"
            )
    result = load_records(pred_path, Prediction)
    if result.errors:
        raise StudyInputError(str(RecordFileError(result.errors)))
    known = {t.id for t in bench.tasks}
    replies: dict[str, tuple[int, str]] = {}
    for line, pred in zip(result.lines, result.records, strict=True):
        if pred.task_id not in known:
            raise StudyInputError(
                f"{pred_path}: line {line}: task_id: {pred.task_id!r} is not in the bench "
                f"{bench.path}; was the run made on another bench?"
            )
        if pred.error is not None or not (pred.raw_output or "").strip():
            continue
        # Several seeds: the lowest seed's reply, so the choice does not depend on file order.
        if pred.task_id not in replies or pred.seed < replies[pred.task_id][0]:
            replies[pred.task_id] = (pred.seed, response_text(pred.raw_output or ""))
    return RunInput(name=name, path=path, replies={k: v for k, (_, v) in replies.items()})


def create_comparison(
    engine: Engine,
    bench_path: Path,
    runs: Sequence[str],
    *,
    n: int,
    seed: int,
    raters: Sequence[str] | None = None,
    overlap: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Create a blinded comparison study of ``runs`` (each ``PATH`` or ``NAME=PATH``)."""
    if not MIN_RUNS <= len(runs) <= MAX_RUNS:
        raise StudyInputError(f"--runs: give {MIN_RUNS} to {MAX_RUNS} runs, not {len(runs)}")
    bench, cases = _load_bench(bench_path)
    parsed = [parse_run_arg(r) for r in runs]
    names = [p[0] for p in parsed]
    if len(set(names)) != len(names):
        raise StudyInputError(
            f"--runs: two runs are both named {sorted({x for x in names if names.count(x) > 1})}; "
            "name them with NAME=PATH"
        )
    inputs = [read_run(nm, path, bench) for nm, path in parsed]
    common = set(inputs[0].replies)
    for run in inputs[1:]:
        common &= set(run.replies)
    if n > len(common):
        counts = ", ".join(f"{r.name}: {len(r.replies)}" for r in inputs)
        raise StudyInputError(
            f"--n {n}: only {len(common)} task(s) have a reply without error in every run "
            f"(replies per run: {counts})"
        )
    chosen = stratified_sample([t for t in bench.tasks if t.id in common], n, seed)
    name = name or "comparison"
    with Session(engine, expire_on_commit=False) as s, s.begin():
        users = _users(s, raters)
        assign([t.id for t in chosen], [u.name for u in users], overlap)
        config = _config(bench_path, n, overlap, users)
        config["runs"] = {r.name: str(r.path.resolve()) for r in inputs}
        study = _new_study(
            s, name, kind="comparison", bench=str(bench_path.resolve()), seed=seed, config=config
        )
        rows = _add_tasks(s, study, bench, cases, chosen)
        for task in chosen:
            for run in inputs:
                s.add(
                    AgentResponse(
                        study_task_id=rows[task.id].id, run=run.name, text=run.replies[task.id]
                    )
                )
        count = _fill_queues(s, study, users, rows, overlap, seed, runs=names)
    return _summary(name, "comparison", chosen, users, count)


def _config(bench_path: Path, n: int, overlap: int | None, users: Sequence[User]) -> dict[str, Any]:
    manifest = bench_path / "manifest.json"
    return {
        "n": n,
        "overlap": overlap,
        "raters": [u.name for u in users],
        "bench_manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()
        if manifest.is_file()
        else None,
        "version": __version__,
    }


def _summary(
    name: str, kind: str, chosen: Sequence[Task], users: Sequence[User], count: int
) -> dict[str, Any]:
    per_type: dict[str, int] = defaultdict(int)
    for t in chosen:
        per_type[t.task_type.value] += 1
    return {
        "name": name,
        "kind": kind,
        "tasks": len(chosen),
        "per_type": dict(sorted(per_type.items())),
        "raters": [u.name for u in users],
        "assignments": count,
    }
