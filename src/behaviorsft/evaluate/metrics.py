"""Scoring, as pure functions: records in, numbers out, no I/O.

Conventions, each checked by a test with hand-computed values:

* **Macro F1 per task type** is taken over the option letters that occur as a
  gold answer or as a valid prediction of that type; per class
  ``F1 = 2TP / (2TP + FP + FN)`` (identical to scikit-learn's
  ``f1_score(average="macro", labels=<that set>)``). An unreadable answer is
  mapped to a sentinel that is not one of the classes: it is a false negative
  for the gold letter and a false positive for nothing.
* **Category and overall averages** are the unweighted means of the task-type
  Macro F1s (a category over its types; overall over all types present). This
  is the rule that reproduces the paper's appendix tables; see
  ``docs/evaluation.md`` for the worked check against Table 7.
* Rows with ``error`` (no answer could be obtained) are excluded from every
  score and only counted.
* With several seeds, every number is computed per seed, then reported as the
  mean and the sample standard deviation (``ddof=1``) across seeds.
* Bootstrap CIs resample tasks with replacement *within each task type*, so a
  resample keeps the type mix that the averages are defined over; every seed's
  answers to a drawn task go along with it. Percentile intervals.

All rates are fractions in [0, 1]; reports multiply by 100.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from behaviorsft.prompts import LABEL_STRATEGIES, binary_token_of
from behaviorsft.records import Prediction, Task
from behaviorsft.taxonomy import (
    FINE_BEHAVIOR_TOKENS,
    PROACTIVE_TOKEN,
    REACTIVE_TOKEN,
    TABLE_ORDER,
    BehaviorLabel,
    Category,
    TaskType,
    binary,
    category_of,
    three_class,
    types_in,
)

# Stands in for an answer the parser could not read: never a class of its own.
INVALID = "<invalid>"

# --------------------------------------------------------------------------
# Classification scores
# --------------------------------------------------------------------------


def _check_lengths(gold: Sequence[Any], pred: Sequence[Any]) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items but pred has {len(pred)}")


def per_class_f1(
    gold: Sequence[str],
    pred: Sequence[str | None],
    labels: Sequence[str] | None = None,
) -> dict[str, float]:
    """F1 of each class; ``None`` in ``pred`` is an unreadable answer (a miss).

    ``labels`` defaults to every class that occurs in ``gold`` or as a valid
    prediction. A listed class that never occurs at all gets no entry, since
    its F1 is undefined.
    """
    _check_lengths(gold, pred)
    if labels is None:
        labels = sorted(set(gold) | {p for p in pred if p is not None})
    tp: dict[str, int] = defaultdict(int)
    n_gold: dict[str, int] = defaultdict(int)
    n_pred: dict[str, int] = defaultdict(int)
    for g, p in zip(gold, pred, strict=True):
        n_gold[g] += 1
        if p is not None:
            n_pred[p] += 1
            tp[g] += g == p
    out: dict[str, float] = {}
    for label in labels:
        # 2TP + FP + FN = (TP + FN) + (TP + FP) = gold count + predicted count.
        denom = n_gold[label] + n_pred[label]
        if denom:
            out[label] = 2 * tp[label] / denom
    return out


def macro_f1(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None
) -> float | None:
    """Unweighted mean of the per-class F1s; None for no items."""
    scores = per_class_f1(gold, pred, labels)
    return sum(scores.values()) / len(scores) if scores else None


def accuracy(gold: Sequence[str], pred: Sequence[str | None]) -> float | None:
    """Share of items answered correctly (an unreadable answer is wrong); None for no items."""
    _check_lengths(gold, pred)
    if not gold:
        return None
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)


def invalid_rate(pred: Sequence[str | None]) -> float | None:
    """Share of unreadable answers; None for no items."""
    return sum(p is None for p in pred) / len(pred) if pred else None


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def category_averages(per_type: Mapping[TaskType, float | None]) -> dict[Category, float | None]:
    """Each category's unweighted mean over its task types present in ``per_type``."""
    return {cat: _mean(per_type.get(t) for t in types_in(cat) if t in per_type) for cat in Category}


def overall_average(per_type: Mapping[TaskType, float | None]) -> float | None:
    """Unweighted mean over every task type present (13 on a full bench)."""
    return _mean(per_type.values())


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1; None with fewer than two values)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


# --------------------------------------------------------------------------
# Behaviour labels (Table 3)
# --------------------------------------------------------------------------

FIVE_CLASSES: tuple[str, ...] = tuple(label.value for label in BehaviorLabel)
THREE_CLASSES: tuple[str, ...] = ("reactive", "balanced", "proactive")
BINARY_CLASSES: tuple[str, ...] = ("proactive", "non_proactive")


def behavior_label_scores(
    gold: Sequence[BehaviorLabel], pred: Sequence[BehaviorLabel | None]
) -> dict[str, dict[str, Any]]:
    """Per-class and Macro F1 of predicted behaviour labels in the three granularities.

    Keys ``five``, ``three`` and ``binary``, each ``{"per_class": {...},
    "macro_f1": x}``; an unreadable label is a miss in every view.
    """
    _check_lengths(gold, pred)
    views = {
        "five": (lambda lab: BehaviorLabel(lab).value, FIVE_CLASSES),
        "three": (three_class, THREE_CLASSES),
        "binary": (binary, BINARY_CLASSES),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, (collapse, classes) in views.items():
        g = [str(collapse(x)) for x in gold]
        p = [None if x is None else str(collapse(x)) for x in pred]
        per_class = per_class_f1(g, p, classes)
        out[name] = {
            "per_class": per_class,
            "macro_f1": sum(per_class.values()) / len(per_class) if per_class else None,
        }
    return out


# --------------------------------------------------------------------------
# Scored items
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """One answered task (one seed), with what scoring needs from the task."""

    task_id: str
    seed: int
    task_type: TaskType
    gold: str
    pred: str | None
    restraint_control: bool
    perturbed: bool
    gold_label: BehaviorLabel
    pred_label: BehaviorLabel | None
    gold_token: str
    pred_token: str | None
    p_proactive: float | None

    @property
    def category(self) -> Category:
        return category_of(self.task_type)

    @property
    def correct(self) -> bool:
        return self.pred == self.gold


def scored_items(
    tasks: Mapping[str, Task], predictions: Iterable[Prediction]
) -> tuple[list[Scored], list[Prediction]]:
    """Join predictions to their tasks; return (scored items, rows with ``error``).

    A prediction for a task not in ``tasks`` raises: the run does not belong
    to this bench (or the bench changed since).
    """
    items: list[Scored] = []
    errors: list[Prediction] = []
    unknown: list[str] = []
    for p in predictions:
        task = tasks.get(p.task_id)
        if task is None:
            unknown.append(p.task_id)
            continue
        if p.error is not None:
            errors.append(p)
            continue
        items.append(
            Scored(
                task_id=task.id,
                seed=p.seed,
                task_type=task.task_type,
                gold=task.answer,
                pred=p.parsed_answer,
                restraint_control=task.restraint_control,
                perturbed=task.perturbation is not None,
                gold_label=task.behavior_label,
                pred_label=p.behavior_label,
                gold_token=binary_token_of(task),
                pred_token=p.behavior_token,
                p_proactive=p.p_proactive,
            )
        )
    if unknown:
        shown = ", ".join(sorted(set(unknown))[:5])
        raise ValueError(
            f"{len(unknown)} prediction(s) refer to tasks not in the bench (e.g. {shown}); "
            "score a run against the bench it was made from"
        )
    return items, errors


# --------------------------------------------------------------------------
# Alert fatigue vs omission
# --------------------------------------------------------------------------


def _rate(hits: int, n: int) -> dict[str, Any]:
    return {"rate": hits / n if n else None, "n": n, "count": hits}


def false_alarm_rate(items: Sequence[Scored]) -> dict[str, Any]:
    """Restraint controls of proactive types where the model flagged a problem.

    On a control nothing is wrong and the gold answer is the "no issue"
    option, so any other *readable* choice is a false alarm. An unreadable
    answer raised no alarm (it is counted in the invalid rate instead).
    """
    controls = [s for s in items if s.restraint_control and s.category is Category.PROACTIVE]
    return _rate(sum(s.pred is not None and s.pred != s.gold for s in controls), len(controls))


def miss_rate(items: Sequence[Scored]) -> dict[str, Any]:
    """Proactive tasks with an injected issue where the model did not pick the right answer.

    Here an unreadable answer is a miss: the issue was not caught.
    """
    injected = [s for s in items if s.perturbed and s.category is Category.PROACTIVE]
    return _rate(sum(not s.correct for s in injected), len(injected))


def safety_scores(items: Sequence[Scored]) -> dict[str, Any]:
    """False-alarm and miss rates overall and per proactive task type."""
    per_type: dict[str, Any] = {}
    for t in types_in(Category.PROACTIVE):
        of_type = [s for s in items if s.task_type is t]
        if of_type:
            per_type[t.value] = {
                "false_alarm": false_alarm_rate(of_type),
                "miss": miss_rate(of_type),
            }
    return {"false_alarm": false_alarm_rate(items), "miss": miss_rate(items), "per_type": per_type}


# --------------------------------------------------------------------------
# One seed, then a whole run
# --------------------------------------------------------------------------


def token_scores(items: Sequence[Scored]) -> dict[str, Any]:
    """How the emitted behaviour token and P(<proactive>) line up with the task's token."""
    with_token = [s for s in items if s.pred_token is not None]
    by_cat: dict[str, Any] = {}
    for cat in Category:
        of_cat = [s for s in items if s.category is cat]
        if not of_cat:
            continue
        probs = [s.p_proactive for s in of_cat if s.p_proactive is not None]
        by_cat[cat.value] = {
            "n": len(of_cat),
            "proactive_token_rate": _mean(
                [float(s.pred_token == PROACTIVE_TOKEN) for s in of_cat if s.pred_token]
            ),
            "mean_p_proactive": _mean(probs),
        }
    return {
        "n_with_token": len(with_token),
        "token_rate": len(with_token) / len(items) if items else None,
        "token_accuracy": _mean([float(s.pred_token == s.gold_token) for s in with_token]),
        "per_category": by_cat,
        "first_token": first_token_scores(items),
    }


def is_proactive_token(token: str) -> bool:
    """``<proactive>``, or a fine-inventory token whose label is proactive."""
    if token == PROACTIVE_TOKEN:
        return True
    fine = {v: k for k, v in FINE_BEHAVIOR_TOKENS.items()}
    return token in fine and three_class(fine[token]) == "proactive"


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


_TOKEN_CLASS = {PROACTIVE_TOKEN: "proactive", REACTIVE_TOKEN: "reactive"}


def first_token_scores(items: Sequence[Scored]) -> dict[str, Any]:
    """How often the first behaviour token is the task's own token.

    ``items`` carry the model's first token in ``pred_token`` (``None``: no
    behaviour token first, a miss). Views:

    * ``binary``: gold is the task's ``<reactive>``/``<proactive>`` token (what
      BehaviorSFT trains on); accuracy, per-token F1 and their macro mean.
    * ``three``: the tasks grouped by their 3-class label (taxonomy.three_class
      of the 5-class label: reactive, balanced, proactive); per group, the share
      whose first token is the task's token and the share of ``<proactive>``.
      Balanced tasks carry ``<proactive>`` from a score of 0.5 up, else
      ``<reactive>``.
    """
    gold = [_TOKEN_CLASS[s.gold_token] for s in items]
    pred = [
        None
        if s.pred_token is None
        else ("proactive" if is_proactive_token(s.pred_token) else "reactive")
        for s in items
    ]
    per_class = per_class_f1(gold, pred, ["reactive", "proactive"])
    three: dict[str, Any] = {}
    for cls in ("reactive", "balanced", "proactive"):
        idx = [i for i, s in enumerate(items) if three_class(s.gold_label) == cls]
        if idx:
            three[cls] = {
                "n": len(idx),
                "accuracy": _share([pred[i] == gold[i] for i in idx]),
                "proactive_share": _share([pred[i] == "proactive" for i in idx]),
            }
    return {
        "n": len(items),
        "no_token": sum(p is None for p in pred),
        "binary": {
            "accuracy": _share([p == g for p, g in zip(pred, gold, strict=True)]),
            "per_class": per_class,
            "macro_f1": sum(per_class.values()) / len(per_class) if per_class else None,
        },
        "three": three,
    }


def summarize(items: Sequence[Scored], *, strategy: str | None = None) -> dict[str, Any]:
    """Every score of one seed's answers, as a JSON-ready nested dict."""
    per_type: dict[str, Any] = {}
    f1_by_type: dict[TaskType, float | None] = {}
    acc_by_type: dict[TaskType, float | None] = {}
    for t in TABLE_ORDER:
        of_type = [s for s in items if s.task_type is t]
        if not of_type:
            continue
        gold = [s.gold for s in of_type]
        pred = [s.pred for s in of_type]
        f1_by_type[t] = macro_f1(gold, pred)
        acc_by_type[t] = accuracy(gold, pred)
        per_type[t.value] = {
            "n": len(of_type),
            "macro_f1": f1_by_type[t],
            "accuracy": acc_by_type[t],
            "invalid_rate": invalid_rate(pred),
        }
    cat_avg = category_averages(f1_by_type)
    cat_acc = category_averages(acc_by_type)
    per_category: dict[str, Any] = {}
    for cat in Category:
        of_cat = [s for s in items if s.category is cat]
        if of_cat:
            per_category[cat.value] = {
                "n": len(of_cat),
                "n_types": sum(category_of(t) is cat for t in f1_by_type),
                "macro_f1": cat_avg[cat],
                # Averaged over types like the F1 (the paper's accuracy tables do so too).
                "accuracy": cat_acc[cat],
            }
    gold_all = [s.gold for s in items]
    pred_all = [s.pred for s in items]
    out: dict[str, Any] = {
        "per_type": per_type,
        "per_category": per_category,
        "overall": {
            "n": len(items),
            "n_types": len(f1_by_type),
            "macro_f1": overall_average(f1_by_type),
            "accuracy": accuracy(gold_all, pred_all),  # plain, over all answers
            "accuracy_avg": overall_average(acc_by_type),  # mean over types (Tables 6-8)
            "invalid_rate": invalid_rate(pred_all),
        },
        "safety": safety_scores(items),
    }
    if strategy in LABEL_STRATEGIES:
        out["behavior"] = behavior_label_scores(
            [s.gold_label for s in items], [s.pred_label for s in items]
        )
        out["behavior"]["invalid_rate"] = invalid_rate([s.pred_label for s in items])
    if any(s.pred_token is not None or s.p_proactive is not None for s in items):
        out["token"] = token_scores(items)
    return out


def _leaves(tree: Any, prefix: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _leaves(v, (*prefix, str(k)))
    else:
        yield prefix, tree


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def across_seeds(summaries: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Mean and sample std of every number in per-seed summaries (same shape as one summary).

    A number missing or None in some seeds is averaged over the seeds that
    have it; std is None below two values.
    """
    values: dict[tuple[str, ...], list[float]] = {}
    order: list[tuple[str, ...]] = []
    for summary in summaries:
        for path, v in _leaves(summary):
            if path not in values:
                values[path] = []
                order.append(path)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                values[path].append(float(v))
    mean: dict[str, Any] = {}
    std: dict[str, Any] = {}
    for path in order:
        m, s = mean_std(values[path])
        _set(mean, path, m)
        _set(std, path, s)
    return mean, std


def bootstrap_ci(
    items: Sequence[Scored],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile CIs of per-type, per-category and overall Macro F1 and of accuracy.

    Tasks are resampled with replacement within each task type; all seeds'
    answers to a drawn task come with it, and each resample's statistic is
    the mean over seeds, like the point estimate.
    """
    if n_resamples < 1 or not items:
        return {}
    rng = np.random.default_rng(seed)
    seeds = sorted({s.seed for s in items})
    letters = sorted({s.gold for s in items} | {s.pred for s in items if s.pred is not None})
    code = {letter: i for i, letter in enumerate(letters)}
    n_codes = len(letters)
    # Per type: gold[seed_idx, task_idx] and pred (-1 unreadable, -2 no answer for that seed).
    arrays: dict[TaskType, tuple[np.ndarray, np.ndarray]] = {}
    for t in TABLE_ORDER:
        of_type = [s for s in items if s.task_type is t]
        if not of_type:
            continue
        ids = sorted({s.task_id for s in of_type})
        pos = {tid: i for i, tid in enumerate(ids)}
        gold = np.full((len(seeds), len(ids)), -2, dtype=np.int64)
        pred = np.full((len(seeds), len(ids)), -2, dtype=np.int64)
        for s in of_type:
            si = seeds.index(s.seed)
            gold[si, pos[s.task_id]] = code[s.gold]
            pred[si, pos[s.task_id]] = -1 if s.pred is None else code[s.pred]
        arrays[t] = (gold, pred)

    def f1_codes(g: np.ndarray, p: np.ndarray) -> float | None:
        n_gold = np.bincount(g, minlength=n_codes)
        valid = p >= 0
        n_pred = np.bincount(p[valid], minlength=n_codes)
        tp = np.bincount(g[g == p], minlength=n_codes)
        denom = n_gold + n_pred
        present = denom > 0
        return float(np.mean(2 * tp[present] / denom[present])) if present.any() else None

    per_type: dict[TaskType, list[float]] = {t: [] for t in arrays}
    per_cat: dict[Category, list[float]] = {c: [] for c in Category}
    overall: list[float] = []
    acc: list[float] = []
    for _ in range(n_resamples):
        f1s: dict[TaskType, float | None] = {}
        hits = total = 0
        for t, (gold, pred) in arrays.items():
            idx = rng.integers(0, gold.shape[1], size=gold.shape[1])
            g_all, p_all = gold[:, idx], pred[:, idx]
            seed_f1s = []
            for si in range(len(seeds)):
                answered = g_all[si] >= 0
                g, p = g_all[si][answered], p_all[si][answered]
                if g.size:
                    f1 = f1_codes(g, p)
                    if f1 is not None:
                        seed_f1s.append(f1)
                    hits += int(np.sum(g == p))
                    total += g.size
            f1s[t] = float(np.mean(seed_f1s)) if seed_f1s else None
            if f1s[t] is not None:
                per_type[t].append(f1s[t])  # type: ignore[arg-type]
        for cat, v in category_averages(f1s).items():
            if v is not None:
                per_cat[cat].append(v)
        o = overall_average(f1s)
        if o is not None:
            overall.append(o)
        if total:
            acc.append(hits / total)

    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def interval(values: list[float]) -> list[float] | None:
        if not values:
            return None
        return [float(np.percentile(values, lo_q)), float(np.percentile(values, hi_q))]

    return {
        "per_type": {t.value: interval(v) for t, v in per_type.items()},
        "per_category": {c.value: interval(v) for c, v in per_cat.items() if v},
        "overall": interval(overall),
        "accuracy": interval(acc),
        "n_resamples": n_resamples,
        "seed": seed,
        "level": level,
        "method": "percentile; tasks resampled within each task type; mean over seeds",
    }


def score_run(
    tasks: Mapping[str, Task],
    predictions: Iterable[Prediction],
    *,
    strategy: str | None = None,
    n_bootstrap: int = 1000,
    bootstrap_seed: int = 0,
) -> dict[str, Any]:
    """All metrics of a run: per seed, mean and std across seeds, bootstrap CIs, counts."""
    preds = list(predictions)
    items, errors = scored_items(tasks, preds)
    seeds = sorted({p.seed for p in preds})
    per_seed = {
        str(seed): summarize([s for s in items if s.seed == seed], strategy=strategy)
        for seed in seeds
    }
    mean, std = across_seeds(list(per_seed.values()))
    return {
        "strategy": strategy,
        "seeds": seeds,
        "counts": {
            "predictions": len(preds),
            "scored": len(items),
            "errors": len(errors),
            "invalid": sum(s.pred is None for s in items),
            "tasks": len({s.task_id for s in items}),
        },
        "mean": mean,
        "std": std,
        "ci": bootstrap_ci(items, n_resamples=n_bootstrap, seed=bootstrap_seed),
        "per_seed": per_seed,
    }
