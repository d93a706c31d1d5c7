"""Majority vote over several RUN folders (the paper's Ensemble column).

Voting, per prediction id (``<task_id>@<seed>``):

* every member that has a readable answer casts one vote; a member whose row
  is missing, failed (``error``) or unreadable abstains;
* the letter with most votes wins;
* **ties** go to the tied letter of the member listed first on the command
  line (so list the strongest model first); the prediction's ``raw_output``
  records the votes and says when a tie was broken;
* no votes but some member answered (all unreadable): the row is invalid
  (scored as wrong); no member answered at all: the row is an error (not
  scored).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from behaviorsft.bench import load_bench
from behaviorsft.evaluate.metrics import score_run
from behaviorsft.evaluate.runner import (
    CONFIG_FILE,
    PREDICTIONS_FILE,
    check_task_fingerprints,
    load_predictions,
    read_config,
    write_run_outputs,
)
from behaviorsft.records import Prediction
from behaviorsft.store import write_jsonl

TIE_RULE = "ties go to the tied letter of the member listed first"


@dataclass(frozen=True)
class Vote:
    """Outcome of one majority vote."""

    answer: str | None  # None: no readable vote
    counts: dict[str, int]
    tie: bool  # more than one letter had the top count


def majority_vote(answers: Sequence[str | None]) -> Vote:
    """Majority letter of ``answers`` (in member order; None abstains); ties: first listed."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return Vote(None, {}, False)
    top = max(counts.values())
    tied = {letter for letter, c in counts.items() if c == top}
    winner = next(a for a in answers if a in tied)
    return Vote(winner, dict(sorted(counts.items())), len(tied) > 1)


def _describe(vote: Vote, members: Sequence[str], answers: Sequence[str | None]) -> str:
    tally = " ".join(f"{k}={v}" for k, v in vote.counts.items()) or "none"
    each = ", ".join(f"{m}={a or '-'}" for m, a in zip(members, answers, strict=True))
    tie = f"; tie broken: {TIE_RULE}" if vote.tie else ""
    answer = f"\n<answer>{vote.answer}</answer>" if vote.answer else ""
    return f"votes: {tally} ({each}){tie}{answer}"


def ensemble_predictions(
    members: Sequence[str], runs: Sequence[Sequence[Prediction]], *, name: str = "ensemble"
) -> list[Prediction]:
    """One voted Prediction per id found in any member run, in first-seen order."""
    by_id: list[dict[str, Prediction]] = [{p.id: p for p in run} for run in runs]
    ids: dict[str, Prediction] = {}
    for run in runs:
        for p in run:
            ids.setdefault(p.id, p)
    out = []
    now = datetime.now(timezone.utc)
    for pid, first in ids.items():
        rows = [m.get(pid) for m in by_id]
        answered = [r for r in rows if r is not None and r.error is None]
        base: dict[str, Any] = {
            "id": pid,
            "task_id": first.task_id,
            "model": name,
            "strategy": "ensemble",
            "seed": first.seed,
            "created_at": now,
        }
        if not answered:
            out.append(Prediction(**base, error="no member produced an answer"))
            continue
        answers = [r.parsed_answer if r is not None and r.error is None else None for r in rows]
        vote = majority_vote(answers)
        correct_votes = {r.correct for r in answered if r.parsed_answer == vote.answer}
        out.append(
            Prediction(
                **base,
                raw_output=_describe(vote, members, answers),
                parsed_answer=vote.answer,
                valid=vote.answer is not None,
                correct=bool(vote.answer is not None and correct_votes == {True}),
            )
        )
    return out


def run_ensemble(
    runs: Sequence[str | Path],
    out: str | Path,
    *,
    bench: str | Path | None = None,
    label: str | None = None,
    n_bootstrap: int = 1000,
) -> dict[str, Any]:
    """Vote over ``runs`` and write a RUN folder at ``out``; returns its metrics.

    The bench comes from the members' config.json (they must agree) unless
    given.
    """
    if len(runs) < 2:
        raise ValueError("an ensemble needs at least two RUN folders")
    seen: dict[Path, str | Path] = {}
    for r in runs:
        first = seen.setdefault(Path(r).resolve(), r)
        if first is not r:
            raise ValueError(
                f"RUN {r} is given twice (also as {first}): each member votes once; "
                "list distinct runs"
            )
    configs = [read_config(r) for r in runs]
    benches = {str(Path(c.bench).resolve()) for c in configs}
    if bench is None:
        if len(benches) > 1:
            raise ValueError(
                f"the runs were made on different benches ({sorted(benches)}); pass --bench"
            )
        bench = benches.pop()
    splits = {c.split for c in configs}
    members = [c.display_label for c in configs]
    member_preds = [load_predictions(r) for r in runs]
    for r, run_preds in zip(runs, member_preds, strict=True):
        if not run_preds:
            # It would abstain on every task: the "ensemble" would be the others alone.
            raise ValueError(f"{r}: no predictions; run `behaviorsft eval` on it first")
    loaded = load_bench(bench)
    for run, member, run_preds in zip(runs, configs, member_preds, strict=True):
        check_task_fingerprints(run, loaded, member, run_preds)
    name = "ensemble/" + "+".join(c.model for c in configs)
    preds = ensemble_predictions(members, member_preds, name=name)
    tasks = {t.id: t for t in loaded.tasks}
    metrics = score_run(tasks, preds, strategy="ensemble", n_bootstrap=n_bootstrap)
    metrics["label"] = label or f"Ensemble ({len(runs)})"
    metrics["model"] = name
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "bench": str(Path(bench).resolve()),
        "model": name,
        "out": str(out_dir),
        "strategy": "ensemble",
        "split": splits.pop() if len(splits) == 1 else "mixed",
        "label": metrics["label"],
        "members": [str(Path(r).resolve()) for r in runs],
        "member_labels": members,
        "tie_rule": TIE_RULE,
    }
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    write_jsonl(out_dir / PREDICTIONS_FILE, preds)
    write_run_outputs(
        out_dir, config, preds, metrics, stage="ensemble", notes=[f"majority vote; {TIE_RULE}"]
    )
    return metrics
