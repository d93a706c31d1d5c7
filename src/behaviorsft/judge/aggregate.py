"""Aggregates of judged runs: mean G-Eval score per criterion, with bootstrap CIs.

Conventions (pure functions, tested against hand-computed numbers):

* A criterion's score of a run is the mean of its **scored** judgements on
  [0, 1]. Unscored judgements (``error`` set) are excluded and counted; they
  never count as 0. With several seeds every answer is one judgement.
* CIs are percentile bootstrap intervals: tasks are resampled with
  replacement, and all of a drawn task's judgements (every seed) go with it,
  as in :func:`behaviorsft.evaluate.metrics.bootstrap_ci`.
* Per category, the same is computed over the run's tasks of that category
  (reactive, balanced, proactive).

:func:`write_judge_report` writes ``aggregates.json``, ``aggregates.md`` and the
figures for one or more JUDGED folders.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from behaviorsft.evaluate.metrics import mean_std
from behaviorsft.records import Criterion, Judgement
from behaviorsft.taxonomy import Category, TaskType, category_of

LEVEL = 0.95


@dataclass
class JudgedRun:
    """The judgements of one run, with what aggregates need to know about its tasks."""

    name: str
    label: str
    judgements: list[Judgement]
    task_categories: dict[str, Category]


def bootstrap_mean_ci(
    values_by_task: Mapping[str, Sequence[float]],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> list[float] | None:
    """Percentile CI of the mean over all values, resampling tasks with replacement.

    A drawn task brings all its values, so the statistic of a resample is
    ``sum(values of drawn tasks) / count(values of drawn tasks)``. None when
    there are no values or no resamples.
    """
    groups = [list(v) for v in values_by_task.values() if len(v)]
    if n_resamples < 1 or not groups:
        return None
    sums = np.array([sum(g) for g in groups], dtype=np.float64)
    counts = np.array([len(g) for g in groups], dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(groups), size=(n_resamples, len(groups)))
    stats = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    return [float(np.percentile(stats, lo_q)), float(np.percentile(stats, hi_q))]


def criterion_summary(
    judgements: Sequence[Judgement], *, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Mean, sample std, CI, counts and methods of one criterion's judgements."""
    scored = [j for j in judgements if j.error is None and j.score is not None]
    by_task: dict[str, list[float]] = defaultdict(list)
    for j in scored:
        by_task[j.task_id].append(float(j.score))  # type: ignore[arg-type]
    mean, std = mean_std([float(j.score) for j in scored])  # type: ignore[arg-type]
    return {
        "mean": mean,
        "std": std,
        "ci": bootstrap_mean_ci(by_task, n_resamples=n_resamples, seed=seed),
        "n": len(scored),
        "tasks": len(by_task),
        "unscored": len(judgements) - len(scored),
        "methods": {
            "logprobs": sum(j.method == "logprobs" for j in scored),
            "sampling": sum(j.method == "sampling" for j in scored),
        },
    }


def summarize_run(
    run: JudgedRun,
    criteria: Sequence[Criterion],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-criterion summaries of one run, overall and per task category."""
    by_crit: dict[Criterion, list[Judgement]] = defaultdict(list)
    for j in run.judgements:
        by_crit[j.criterion].append(j)
    overall = {
        c.value: criterion_summary(by_crit[c], n_resamples=n_resamples, seed=seed) for c in criteria
    }
    per_category: dict[str, dict[str, Any]] = {}
    for cat in Category:
        in_cat = {
            c.value: criterion_summary(
                [j for j in by_crit[c] if run.task_categories.get(j.task_id) is cat],
                n_resamples=n_resamples,
                seed=seed,
            )
            for c in criteria
        }
        if any(s["n"] or s["unscored"] for s in in_cat.values()):
            per_category[cat.value] = in_cat
    errors: dict[str, int] = defaultdict(int)
    for j in run.judgements:
        if j.error is not None:
            # Group by the reason's head so a report shows kinds of failure, not every row.
            errors[re.split(r"[:(]", j.error, maxsplit=1)[0].strip()[:80]] += 1
    return {
        "name": run.name,
        "label": run.label,
        "counts": {
            "judgements": len(run.judgements),
            "scored": sum(j.error is None for j in run.judgements),
            "unscored": sum(j.error is not None for j in run.judgements),
            "predictions": len({j.prediction_id for j in run.judgements}),
        },
        "unscored_reasons": dict(sorted(errors.items())),
        "criteria": overall,
        "per_category": per_category,
    }


def criteria_in(runs: Sequence[JudgedRun]) -> list[Criterion]:
    """The criteria judged in any run, in the canonical order."""
    present = {j.criterion for r in runs for j in r.judgements}
    return [c for c in Criterion if c in present]


def aggregate(
    runs: Sequence[JudgedRun], *, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Summaries of every run over the criteria judged in any of them."""
    criteria = criteria_in(runs)
    return {
        "criteria": [c.value for c in criteria],
        "runs": [summarize_run(r, criteria, n_resamples=n_resamples, seed=seed) for r in runs],
        "bootstrap": {
            "n_resamples": n_resamples,
            "seed": seed,
            "level": LEVEL,
            "method": "percentile; tasks resampled with replacement, all seeds of a task together",
        },
        "scale": "scores on [0, 1] = (s - 1) / 4 for the judge's 1-5 scale",
    }


# --------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------


def fmt_score(summary: Mapping[str, Any]) -> str:
    """'0.912 [0.894, 0.930]', '0.912' without a CI, or '–' when nothing was scored."""
    mean = summary.get("mean")
    if mean is None:
        return "–"
    ci = summary.get("ci")
    return f"{mean:.3f}" if not ci else f"{mean:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(agg: Mapping[str, Any]) -> str:
    """The aggregates as Markdown tables: overall, per category, counts and methods."""
    crits: list[str] = list(agg["criteria"])
    runs: list[dict[str, Any]] = list(agg["runs"])
    lines = [
        "# G-Eval scores",
        "",
        "Mean score on [0, 1] ((s - 1) / 4 of the judge's 1-5 scale) with a 95% bootstrap CI "
        "(tasks resampled). Unscored items are excluded from the means and counted below. "
        "Implicitness describes style: higher is more implicit, not better.",
        "",
        _row(["run", *crits]),
        _row(["---"] * (len(crits) + 1)),
    ]
    lines += [_row([r["label"], *(fmt_score(r["criteria"][c]) for c in crits)]) for r in runs]
    for cat in Category:
        if not any(cat.value in r["per_category"] for r in runs):
            continue
        lines += ["", f"## {cat.value.title()} tasks", ""]
        lines += [_row(["run", *crits]), _row(["---"] * (len(crits) + 1))]
        for r in runs:
            sums = r["per_category"].get(cat.value)
            cells = [fmt_score(sums[c]) if sums else "–" for c in crits]
            lines.append(_row([r["label"], *cells]))
    lines += [
        "",
        "## Counts",
        "",
        "Per criterion: scored / unscored (logprobs / sampling).",
        "",
        _row(["run", *crits]),
        _row(["---"] * (len(crits) + 1)),
    ]
    for r in runs:
        cells = []
        for c in crits:
            s = r["criteria"][c]
            m = s["methods"]
            cells.append(f"{s['n']} / {s['unscored']} ({m['logprobs']} / {m['sampling']})")
        lines.append(_row([r["label"], *cells]))
    reasons = [(r["label"], k, v) for r in runs for k, v in r["unscored_reasons"].items()]
    if reasons:
        lines += ["", "Unscored, by reason:", ""]
        lines += [f"- {label}: {reason} ({n})" for label, reason, n in reasons]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _unique(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        n = seen.get(label, 0)
        seen[label] = n + 1
        out.append(label if n == 0 else f"{label} ({n + 1})")
    return out


def load_judged_runs(folders: Sequence[str | Path]) -> list[JudgedRun]:
    """Every run of one or more JUDGED folders, in the order they were judged."""
    from behaviorsft.judge.geval import judgements_path, load_judgements, read_runs

    runs: list[JudgedRun] = []
    for folder in folders:
        entries = read_runs(folder)
        if not entries:
            raise FileNotFoundError(
                f"{folder}: not a JUDGED folder (no runs.json); run `behaviorsft judge` first"
            )
        for e in entries:
            path = judgements_path(folder, e.name)
            js = load_judgements(path) if path.exists() else []
            cats = {tid: category_of(TaskType(tt)) for tid, tt in e.task_types.items()}
            runs.append(JudgedRun(e.name, e.label, js, cats))
    for run, label in zip(runs, _unique([r.label for r in runs]), strict=True):
        run.label = label
    return runs


def write_judge_report(
    folders: Sequence[str | Path], out: str | Path, *, n_bootstrap: int = 1000
) -> dict[str, Path]:
    """aggregates.json, aggregates.md and the figures of the runs in ``folders``."""
    from behaviorsft.judge.figures import density_png, grouped_bars_png

    runs = load_judged_runs(folders)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    agg = aggregate(runs, n_resamples=n_bootstrap)
    agg["folders"] = [str(Path(f).resolve()) for f in folders]
    written: dict[str, Path] = {}
    path = out_dir / "aggregates.json"
    path.write_text(json.dumps(agg, indent=2) + "\n", encoding="utf-8")
    written["json"] = path
    md = markdown(agg)
    bars = grouped_bars_png(agg, out_dir / "figure3_geval.png")
    dens = density_png(runs, out_dir / "figure2_density.png")
    if bars is not None:
        written["figure3"] = bars
        md += "\n![G-Eval scores per criterion](figure3_geval.png)\n"
    if dens is not None:
        written["figure2"] = dens
        md += "\n![Specificity and implicitness densities](figure2_density.png)\n"
    path = out_dir / "aggregates.md"
    path.write_text(md, encoding="utf-8")
    written["markdown"] = path
    return written
