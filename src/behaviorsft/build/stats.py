"""Descriptive statistics and figures of a benchmark folder (paper Appendix C, Figures 6-12).

Streams the JSONL files, so a paper-scale benchmark is never held in memory:
only counters and one float per task (its behaviour score) are kept.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from statistics import fmean

from pydantic import BaseModel, Field

from behaviorsft.records import Conversation, Task
from behaviorsft.store import iter_records
from behaviorsft.taxonomy import TABLE_ORDER, BehaviorLabel, Complexity

# Paper Table 5: averages over BehaviorBench's conversations, for comparison.
PAPER_CONVERSATION_AVERAGES = {"turns": 33.3, "characters": 6194.3, "participants": 8.7}


class ConversationStats(BaseModel):
    """Per-conversation averages and the raw per-conversation values for the figures."""

    n: int = Field(description="Conversations.")
    mean_turns: float = Field(description="Average turns per conversation.")
    mean_characters: float = Field(description="Average total characters of turn text.")
    mean_participants: float = Field(description="Average distinct participants.")
    turns: list[int] = Field(description="Turns of each conversation.")
    characters: list[int] = Field(description="Characters of each conversation.")


class TaskStats(BaseModel):
    """Counts over tasks."""

    n: int = Field(description="Tasks.")
    by_type: dict[str, int] = Field(description="Tasks per type, in table order.")
    by_category: dict[str, int] = Field(description="Tasks per category.")
    by_label: dict[str, int] = Field(description="Tasks per 5-class label.")
    by_complexity: dict[str, int] = Field(description="Tasks per complexity.")
    mean_score_by_complexity: dict[str, float] = Field(description="Mean score per complexity.")
    by_split: dict[str, int] = Field(description="Tasks per split ('unassigned' if none).")
    restraint_controls: int = Field(description="Restraint-control tasks.")
    perturbations: dict[str, int] = Field(description="Perturbed tasks per perturbation kind.")
    scores: list[float] = Field(description="Behaviour score of each task.")


def conversation_stats(path: Path) -> ConversationStats:
    """Stream a conversations file into its statistics."""
    turns, chars, parts = [], [], []
    for conv in iter_records(path, Conversation):
        turns.append(len(conv.turns))
        chars.append(sum(len(t.text) for t in conv.turns))
        parts.append(len(conv.participants))
    return ConversationStats(
        n=len(turns),
        mean_turns=fmean(turns) if turns else 0.0,
        mean_characters=fmean(chars) if chars else 0.0,
        mean_participants=fmean(parts) if parts else 0.0,
        turns=turns,
        characters=chars,
    )


def task_stats(path: Path) -> TaskStats:
    """Stream a tasks file into its statistics."""
    by_type: Counter[str] = Counter()
    by_cat: Counter[str] = Counter()
    by_label: Counter[str] = Counter()
    by_cx: Counter[str] = Counter()
    score_sum: Counter[str] = Counter()
    by_split: Counter[str] = Counter()
    pert: Counter[str] = Counter()
    controls = 0
    scores: list[float] = []
    for t in iter_records(path, Task):
        by_type[t.task_type.value] += 1
        by_cat[t.category.value] += 1
        by_label[t.behavior_label.value] += 1
        by_cx[t.complexity.value] += 1
        score_sum[t.complexity.value] += t.behavior_score  # type: ignore[assignment]
        by_split[t.split.value if t.split else "unassigned"] += 1
        controls += t.restraint_control
        if t.perturbation is not None:
            pert[t.perturbation.kind.value] += 1
        scores.append(t.behavior_score)
    return TaskStats(
        n=len(scores),
        by_type={t.value: by_type[t.value] for t in TABLE_ORDER if by_type[t.value]},
        by_category=dict(by_cat),
        by_label={lb.value: by_label[lb.value] for lb in BehaviorLabel},
        by_complexity={c.value: by_cx[c.value] for c in Complexity},
        mean_score_by_complexity={c: score_sum[c] / n for c, n in by_cx.items() if n},
        by_split=dict(sorted(by_split.items())),
        restraint_controls=controls,
        perturbations=dict(sorted(pert.items())),
        scores=scores,
    )


def write_figures(
    convs: ConversationStats | None, tasks: TaskStats | None, out: Path
) -> list[Path]:
    """Draw the paper's Appendix C figures as PNG files in ``out``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig: object, name: str) -> None:
        path = out / name
        fig.tight_layout()  # type: ignore[attr-defined]
        fig.savefig(path, dpi=120)  # type: ignore[attr-defined]
        plt.close(fig)  # type: ignore[arg-type]
        written.append(path)

    if convs is not None and convs.n:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(convs.characters, bins=30, color="#4c72b0")
        ax.axvline(convs.mean_characters, color="k", ls="--", label="mean")
        ax.set(
            xlabel="characters per conversation",
            ylabel="conversations",
            title="Dialogue length (cf. paper Fig. 6)",
        )
        ax.legend()
        save(fig, "fig06_dialogue_length.png")
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(convs.turns, bins=range(min(convs.turns), max(convs.turns) + 2), color="#55a868")
        ax.set(
            xlabel="turns per conversation",
            ylabel="conversations",
            title="Dialogue turns (cf. paper Fig. 7)",
        )
        save(fig, "fig07_dialogue_turns.png")
    if tasks is not None and tasks.n:
        fig, ax = plt.subplots(figsize=(7, 5))
        names = list(tasks.by_type)[::-1]
        ax.barh(names, [tasks.by_type[n] for n in names], color="#8172b2")
        ax.set(xlabel="tasks", title="Tasks per type (cf. paper Fig. 8)")
        save(fig, "fig08_task_types.png")
        fig, ax = plt.subplots(figsize=(5, 4))
        cx = list(tasks.by_complexity)
        ax.bar(cx, [tasks.by_complexity[c] for c in cx], color="#c44e52")
        ax.set(ylabel="tasks", title="Complexity (cf. paper Fig. 9)")
        save(fig, "fig09_complexity.png")
        fig, ax = plt.subplots(figsize=(5, 4))
        cx = list(tasks.mean_score_by_complexity)
        ax.bar(cx, [tasks.mean_score_by_complexity[c] for c in cx], color="#dd8452")
        ax.set(
            ylabel="mean behaviour score",
            ylim=(0, 1),
            title="Score by complexity (cf. paper Fig. 10)",
        )
        save(fig, "fig10_score_by_complexity.png")
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(tasks.scores, bins=[i / 20 for i in range(21)], color="#64b5cd")
        ax.set(
            xlabel="behaviour score (0 reactive - 1 proactive)",
            ylabel="tasks",
            title="Behaviour scores (cf. paper Fig. 11)",
        )
        save(fig, "fig11_behavior_scores.png")
        fig, ax = plt.subplots(figsize=(7, 4))
        labels = list(tasks.by_label)
        ax.bar(labels, [tasks.by_label[lb] for lb in labels], color="#937860")
        ax.set(ylabel="tasks", title="Behaviour labels (cf. paper Fig. 12)")
        ax.tick_params(axis="x", rotation=20)
        save(fig, "fig12_behavior_labels.png")
    return written
