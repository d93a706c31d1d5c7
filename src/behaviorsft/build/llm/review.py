"""Export a BENCH folder for physician review: one CSV and one JSON file, same rows.

Each row is one task with what a reviewer needs to judge it without opening
other files: the case presentation, the context the model sees (turns in
range and any note), the question, the options, the answer and its rationale,
the behaviour score and label, the injected challenge (if any), and what the
automatic checks found (verification flags, fact-check flags of the turns
shown). Empty ``review_*`` columns follow, for the validation phase of the
clinician study (paper Appendix H: correctness of the ground truth,
confidence, proactivity 0-1, clinical plausibility, comment), so the CSV can
be filled in a spreadsheet and the JSON loaded by the study app.

Works on any BENCH (programmatic ones have no ``llm/`` files: those columns
stay empty).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from behaviorsft.bench import load_bench, task_context_text
from behaviorsft.build.llm.pipeline import DROPPED, LLM_CONVERSATIONS, LLM_DIR, VERIFICATION
from behaviorsft.build.llm.stages import ConversationRecord, VerifyRecord
from behaviorsft.records import OPTION_LETTERS, Case, Task
from behaviorsft.store import load_records, scan_jsonl

REVIEW_CSV = "review.csv"
REVIEW_JSON = "review.json"
# Filled in by the reviewer (Appendix H, phase 1); exported empty.
REVIEW_FIELDS = (
    "review_answer_correct",  # yes / no: is the designated answer right?
    "review_confidence",  # low / moderate / high
    "review_proactivity",  # 0.0 (reactive) .. 1.0 (proactive)
    "review_plausible",  # yes / no / unsure
    "review_comment",
)


class ReviewRow(BaseModel):
    """One task as a physician reviews it."""

    model_config = ConfigDict(extra="forbid")
    task_id: str = Field(description="Task id.")
    case_id: str = Field(description="Case id.")
    task_type: str = Field(description="Task type.")
    category: str = Field(description="reactive / balanced / proactive.")
    split: str | None = Field(description="Split.")
    status: str = Field(description="'kept', or 'dropped' (by the verification policy).")
    case_presentation: str = Field(description="The case's presentation, as imported.")
    final_diagnosis: str | None = Field(description="Final diagnosis of the case, if known.")
    context: str = Field(description="What the model sees before the question.")
    question: str = Field(description="The question.")
    options: dict[str, str] = Field(description="Letter -> option text.")
    answer: str = Field(description="Letter of the designated answer.")
    answer_text: str = Field(description="Text of the designated answer.")
    rationale: str = Field(description="Why the answer is right (as generated).")
    behavior_score: float = Field(description="Behaviour score 0..1.")
    behavior_label: str = Field(description="5-class behaviour label.")
    complexity: str = Field(description="intermediate / advanced.")
    restraint_control: bool = Field(description="True if nothing is wrong on purpose.")
    perturbation: str = Field(description="Injected challenge: kind, original -> modified.")
    verification_flags: list[str] = Field(description="Flags of the blind verification.")
    fact_check_flags: list[str] = Field(description="Unsupported claims in the turns shown.")
    generator: str = Field(description="Generator, model and prompt id.")


def _cases(folder: Path) -> dict[str, Case]:
    path = folder / "cases.jsonl"
    if not path.exists():
        return {}
    return {c.id: c for c in load_records(path, Case).records}


def _by_id(path: Path, model: type[BaseModel], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not path.exists():
        return out
    for _, obj, errs, _ in scan_jsonl(path, None, key=None):
        if not errs and isinstance(obj, dict):
            rec = model.model_validate(obj)
            out[getattr(rec, key)] = rec
    return out


def review_rows(bench: str | os.PathLike[str], *, include_dropped: bool = False) -> list[ReviewRow]:
    """The review rows of a BENCH folder (tasks in file order, then dropped ones if asked)."""
    folder = Path(bench)
    b = load_bench(folder)
    cases = _cases(folder)
    verify: dict[str, VerifyRecord] = _by_id(folder / LLM_DIR / VERIFICATION, VerifyRecord, "id")
    convs: dict[str, ConversationRecord] = _by_id(
        folder / LLM_DIR / LLM_CONVERSATIONS, ConversationRecord, "case_id"
    )
    tasks: list[tuple[Task, str]] = [(t, "kept") for t in b.tasks]
    dropped_path = folder / LLM_DIR / DROPPED
    if include_dropped and dropped_path.exists():
        tasks += [(t, "dropped") for t in load_records(dropped_path, Task).records]
    rows = []
    for task, status in tasks:
        case = cases.get(task.case_id)
        conv_rec = convs.get(task.case_id)
        conversation = b.conversations.get(task.case_id) or (
            conv_rec.conversation if conv_rec else None
        )
        lo, hi = task.context.turn_start, task.context.turn_end
        fact_flags = [
            f"turn {f.turn}: {claim}"
            for f in (conv_rec.flags if conv_rec else [])
            if lo is not None and hi is not None and lo <= f.turn <= hi
            for claim in f.claims
        ]
        p = task.perturbation
        gen = task.generator
        rows.append(
            ReviewRow(
                task_id=task.id,
                case_id=task.case_id,
                task_type=task.task_type.value,
                category=task.category.value,
                split=task.split.value if task.split else None,
                status=status,
                case_presentation=case.presentation if case else "",
                final_diagnosis=case.final_diagnosis if case else None,
                context=task_context_text(task, conversation),
                question=task.question,
                options={o.label: o.text for o in task.options},
                answer=task.answer,
                answer_text=task.answer_text,
                rationale=task.rationale,
                behavior_score=task.behavior_score,
                behavior_label=task.behavior_label.value,
                complexity=task.complexity.value,
                restraint_control=task.restraint_control,
                perturbation=(
                    f"{p.kind.value}: {p.original!r} -> {p.modified!r} ({p.description})"
                    if p
                    else ""
                ),
                verification_flags=list(verify[task.id].flags) if task.id in verify else [],
                fact_check_flags=fact_flags,
                generator=" ".join(x for x in (gen.name, gen.model, gen.prompt_id) if x),
            )
        )
    return rows


def export_review(
    bench: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    include_dropped: bool = False,
) -> tuple[Path, Path, int]:
    """Write ``review.csv`` and ``review.json`` into ``out``; return both paths and the row count.

    The CSV has one column per option letter (``option_A`` .. ``option_F``,
    empty when a task has fewer) and joins list fields with `` | ``.
    """
    rows = review_rows(bench, include_dropped=include_dropped)
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    json_path = dest / REVIEW_JSON
    payload = [{**r.model_dump(mode="json"), **dict.fromkeys(REVIEW_FIELDS)} for r in rows]
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", "utf-8")
    csv_path = dest / REVIEW_CSV
    head = [f for f in ReviewRow.model_fields if f != "options"]
    letters = [f"option_{x}" for x in OPTION_LETTERS]
    columns = [*head[:10], *letters, *head[10:], *REVIEW_FIELDS]
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            flat: dict[str, Any] = {}
            for k, v in r.model_dump(mode="json").items():
                if k == "options":
                    flat.update({f"option_{x}": v.get(x, "") for x in OPTION_LETTERS})
                elif isinstance(v, list):
                    flat[k] = " | ".join(v)
                else:
                    flat[k] = "" if v is None else v
            writer.writerow({**flat, **dict.fromkeys(REVIEW_FIELDS, "")})
    return csv_path, json_path, len(rows)
