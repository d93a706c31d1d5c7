"""`study export`: the answers as long-format CSV and JSONL, and the agent key apart.

Files written to ``OUT``::

    validation.csv / .jsonl   one StudyValidationAnswer per saved (rater, task)
    comparison.csv / .jsonl   one StudyComparisonAnswer per saved (rater, task, agent)
    agent_key.csv / .jsonl    one StudyAgentKey per assigned (rater, task, agent):
                              which run each blinded label stood for; mode 0600,
                              for the administrator only
    study.json                the studies: name, kind, seed, bench, tasks, raters,
                              assignment and answer counts (no run names)

Rows are sorted by study, rater, queue position (and agent), so two exports
of the same database are byte-identical. Only assignments that were saved
at least once have answer rows; an unanswered field is empty (None).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from behaviorsft import __version__
from behaviorsft.records import (
    SCHEMA_VERSION,
    Record,
    StudyAgentKey,
    StudyComparisonAnswer,
    StudyValidationAnswer,
)
from behaviorsft.study.create import AGENT_LABELS
from behaviorsft.study.db import (
    Assignment,
    ComparisonAnswer,
    Study,
    StudyTask,
    User,
    ValidationAnswer,
    as_utc,
)

VALIDATION = "validation"
COMPARISON = "comparison"
AGENT_KEY = "agent_key"
STUDY_FILE = "study.json"


def _rows(
    session: Session, studies: Sequence[Study]
) -> tuple[list[StudyValidationAnswer], list[StudyComparisonAnswer], list[StudyAgentKey]]:
    validation: list[StudyValidationAnswer] = []
    comparison: list[StudyComparisonAnswer] = []
    keys: list[StudyAgentKey] = []
    for study in studies:
        q = (
            select(Assignment, StudyTask, User)
            .join(StudyTask, StudyTask.id == Assignment.study_task_id)
            .join(User, User.id == Assignment.user_id)
            .where(Assignment.study_id == study.id)
            .order_by(User.name, Assignment.position)
        )
        for a, task, user in session.execute(q).all():
            if study.kind == "validation":
                v = session.get(ValidationAnswer, a.id)
                if v is None:
                    continue
                validation.append(
                    StudyValidationAnswer(
                        study=study.name,
                        rater=user.name,
                        task_id=task.task_id,
                        task_type=task.task_type,
                        category=task.category,
                        position=a.position,
                        key=task.key,
                        answer=v.answer,
                        correct=None if v.answer is None else v.answer == task.key,
                        confidence=v.confidence,
                        proactivity=v.proactivity,
                        plausibility=v.plausibility,
                        note=v.note,
                        behavior_score=task.behavior_score,
                        saved_at=as_utc(v.saved_at),
                    )
                )
                continue
            runs = a.agent_runs or []
            for label, run in zip(AGENT_LABELS, runs, strict=False):
                keys.append(
                    StudyAgentKey(
                        study=study.name,
                        rater=user.name,
                        task_id=task.task_id,
                        agent=label,
                        run=run,
                    )
                )
            answers = {
                c.agent: c
                for c in session.scalars(
                    select(ComparisonAnswer).where(ComparisonAnswer.assignment_id == a.id)
                )
            }
            for pos, label in enumerate(AGENT_LABELS[: len(runs)], start=1):
                c = answers.get(label)
                if c is None:
                    continue
                comparison.append(
                    StudyComparisonAnswer(
                        study=study.name,
                        rater=user.name,
                        task_id=task.task_id,
                        task_type=task.task_type,
                        agent=label,
                        position=pos,
                        rank=c.rank,
                        likert=c.likert,
                        unsafe=c.unsafe,
                        unsafe_note=c.unsafe_note,
                        saved_at=as_utc(c.saved_at),
                    )
                )
    return validation, comparison, keys


def _iso(value: Any) -> str | None:
    when = as_utc(value)
    return when.isoformat() if when is not None else None


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _write(
    out: Path, stem: str, model: type[Record], rows: Sequence[Record], mode: int | None = None
) -> dict[str, str]:
    """``stem``.csv and ``stem``.jsonl, written atomically (created with ``mode`` if given)."""
    fields = list(model.model_fields)
    paths = {}
    for ext in ("csv", "jsonl"):
        final = out / f"{stem}.{ext}"
        tmp = out / f".{stem}.{ext}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode if mode is not None else 0o644
        )
        if mode is not None:
            os.fchmod(fd, mode)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if ext == "csv":
                writer = csv.DictWriter(fh, fieldnames=fields)
                writer.writeheader()
                for row in rows:
                    data = row.model_dump(mode="json")
                    writer.writerow({k: _csv_value(data[k]) for k in fields})
            else:
                for row in rows:
                    fh.write(row.model_dump_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        paths[ext] = final.name
    return paths


@dataclass
class StudyRows:
    """Everything ``study export`` writes, in memory (for ``study analyze --db``)."""

    validation: list[StudyValidationAnswer]
    comparison: list[StudyComparisonAnswer]
    agent_key: list[StudyAgentKey]
    studies: list[dict[str, Any]]  # the "studies" list of study.json


def export_rows(engine: Engine, *, study: str | None = None) -> StudyRows:
    """The export's rows of every study (or of ``study``), without writing anything."""
    with Session(engine) as s:
        q = select(Study).order_by(Study.id)
        if study is not None:
            q = q.where(Study.name == study)
        studies = list(s.scalars(q))
        if study is not None and not studies:
            names = ", ".join(s.scalars(select(Study.name).order_by(Study.id))) or "none"
            raise ValueError(f"--study {study}: no such study (the database has: {names})")
        validation, comparison, keys = _rows(s, studies)
        meta = []
        for st in studies:
            assigned = s.execute(
                select(Assignment.user_id, Assignment.study_task_id).where(
                    Assignment.study_id == st.id
                )
            ).all()
            meta.append(
                {
                    "name": st.name,
                    "kind": st.kind,
                    "seed": st.seed,
                    "bench": st.bench,
                    "created_at": _iso(st.created_at),
                    "n_tasks": len({t for _, t in assigned}),
                    "raters": [
                        u
                        for u in s.scalars(
                            select(User.name)
                            .where(User.id.in_({u for u, _ in assigned}))
                            .order_by(User.name)
                        )
                    ],
                    "overlap": st.config.get("overlap"),
                    "n_agents": len(st.config.get("runs") or {}) or None,
                    "assignments": len(assigned),
                    "answer_rows": sum(
                        1
                        for r in (validation if st.kind == "validation" else comparison)
                        if r.study == st.name
                    ),
                }
            )
    return StudyRows(validation, comparison, keys, meta)


def export_study(engine: Engine, out: Path, *, study: str | None = None) -> dict[str, Any]:
    """Write the export files of every study (or of ``study``) to ``out``; returns study.json."""
    rows = export_rows(engine, study=study)
    validation, comparison, keys = rows.validation, rows.comparison, rows.agent_key
    out.mkdir(parents=True, exist_ok=True)
    files = {
        VALIDATION: _write(out, VALIDATION, StudyValidationAnswer, validation),
        COMPARISON: _write(out, COMPARISON, StudyComparisonAnswer, comparison),
        AGENT_KEY: _write(out, AGENT_KEY, StudyAgentKey, keys, mode=0o600),
    }
    summary = {
        "schema_version": SCHEMA_VERSION,
        "behaviorsft_version": __version__,
        "studies": rows.studies,
        "files": files,
        "rows": {VALIDATION: len(validation), COMPARISON: len(comparison), AGENT_KEY: len(keys)},
    }
    tmp = out / f".{STUDY_FILE}.tmp"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out / STUDY_FILE)
    return summary
