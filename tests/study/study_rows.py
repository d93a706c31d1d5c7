"""Builders of study export rows and folders for the analysis tests (plain data, no app)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from behaviorsft.records import StudyAgentKey, StudyComparisonAnswer, StudyValidationAnswer
from behaviorsft.store import write_jsonl

STUDY = "pilot"


def vrow(rater: str, task_id: str, **fields: Any) -> StudyValidationAnswer:
    """One validation answer; the key is 'B' unless given, the answer defaults to the key."""
    data: dict[str, Any] = {
        "study": STUDY,
        "rater": rater,
        "task_id": task_id,
        "task_type": "fact_retrieval",
        "category": "reactive",
        "position": 1,
        "key": "B",
        "answer": fields.get("key", "B"),
        "confidence": "high",
        "proactivity": 0.5,
        "plausibility": "yes",
        "behavior_score": 0.1,
    }
    data.update(fields)
    return StudyValidationAnswer.model_validate(data)


def comparison_rows(
    ranks: Mapping[tuple[str, str], Mapping[str, int]],
    likert: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
    unsafe: Mapping[tuple[str, str, str], str] | None = None,
) -> tuple[list[StudyComparisonAnswer], list[StudyAgentKey]]:
    """Rows and key from ``ranks[(rater, task)][run]``; blinded labels rotate per sheet.

    The rotation makes label 'A' a different run on different sheets, as the
    app's seeded shuffle does, so only the key can tell runs apart.
    """
    rows, key = [], []
    for n, ((rater, task), by_run) in enumerate(sorted(ranks.items())):
        runs = sorted(by_run)
        shift = n % len(runs)
        order = runs[shift:] + runs[:shift]
        for pos, run in enumerate(order, 1):
            label = "ABC"[pos - 1]
            note = (unsafe or {}).get((rater, task, run))
            rows.append(
                StudyComparisonAnswer(
                    study=STUDY,
                    rater=rater,
                    task_id=task,
                    task_type="fact_retrieval",
                    agent=label,
                    position=pos,
                    rank=by_run[run],
                    likert=None if likert is None else likert[(rater, task)][run],
                    unsafe=note is not None,
                    unsafe_note=note or "",
                )
            )
            key.append(StudyAgentKey(study=STUDY, rater=rater, task_id=task, agent=label, run=run))
    return rows, key


def write_export(
    folder: Path,
    validation: Sequence[StudyValidationAnswer] = (),
    comparison: Sequence[StudyComparisonAnswer] = (),
    key: Sequence[StudyAgentKey] = (),
    *,
    meta: dict[str, Any] | None = None,
) -> Path:
    """An export folder as `study export` writes it (the JSONL files and study.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    if validation:
        write_jsonl(folder / "validation.jsonl", validation)
    if comparison:
        write_jsonl(folder / "comparison.jsonl", comparison)
    if key:
        write_jsonl(folder / "agent_key.jsonl", key)
    studies = []  # study.json as `study export` writes it: one entry per study
    for kind, rows in (("validation", validation), ("comparison", comparison)):
        for name in sorted({r.study for r in rows}):
            raters = sorted({r.rater for r in rows if r.study == name})
            studies.append(
                {"name": name, "kind": kind, "bench": "bench", "seed": 0, "raters": raters}
            )
    info = {"studies": studies, "rows": {"validation": len(validation)}}
    (folder / "study.json").write_text(json.dumps(meta or info), encoding="utf-8")
    return folder
