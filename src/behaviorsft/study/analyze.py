"""The study's statistics, as pure functions of the exported rows (no I/O).

Phase 1 (validation) rows are :class:`StudyValidationAnswer`, one per rater and
task; phase 2 (comparison) rows are :class:`StudyComparisonAnswer`, one per
rater, task and blinded agent, de-anonymised with :class:`StudyAgentKey`.

Conventions, chosen once here:

* **Bootstrap CIs resample tasks** (with replacement, all of a task's ratings
  together), because one task's ratings by several raters are not independent.
  95% percentile intervals from ``numpy.random.default_rng(seed)``; the same
  seed gives the same interval. ``None`` when there are fewer than two tasks
  or ``n_bootstrap`` is 0.
* **ICC(3,1) and ICC(3,k)**: two-way mixed effects, consistency (Shrout and
  Fleiss 1979; pingouin's ``ICC3``/``ICC3k`` rows). Tasks are the targets and
  raters the judges; only tasks every rater answered enter (a two-way ANOVA
  needs a complete table), and the number dropped is reported.
* **Krippendorff's alpha, ordinal**: from the coincidence matrix, with the
  ordinal distance over the observed values; any missing value is allowed,
  and units with fewer than two values do not count.
* **Verdicts** (:class:`VerdictRules`): a task is rejected when more than
  ``wrong_share`` of the raters who answered it chose another answer than the
  key, or more than ``implausible_share`` of those who rated its plausibility
  said "no". Defaults 0.5 and 0.5: a strict majority.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from behaviorsft.judge.aggregate import bootstrap_mean_ci
from behaviorsft.records import (
    StudyAgentKey,
    StudyComparisonAnswer,
    StudyValidationAnswer,
    StudyVerdict,
)

CONFIDENCE_LEVELS = ("low", "moderate", "high")
PLAUSIBILITY_LEVELS = ("yes", "no", "unsure")
CATEGORIES = ("reactive", "balanced", "proactive")
DEFAULT_BOOTSTRAP = 2000


# --------------------------------------------------------------------------
# Generic pieces
# --------------------------------------------------------------------------


def bootstrap_ci(
    groups: Sequence[Sequence[float]], *, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile CI of the mean over all values, resampling whole groups (tasks):
    the judge's ``bootstrap_mean_ci``, with None for fewer than two non-empty groups
    (one task has no spread to resample). ``groups[i]`` holds task ``i``'s values."""
    kept = {str(i): g for i, g in enumerate(groups) if len(g)}
    if len(kept) < 2:
        return None
    ci = bootstrap_mean_ci(kept, n_resamples=n_bootstrap, seed=seed)
    return None if ci is None else (ci[0], ci[1])


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return float(np.mean(vals)) if vals else None


def _summary(
    groups: Mapping[str, Sequence[float]], *, n_bootstrap: int, seed: int
) -> dict[str, Any]:
    """Mean, 95% task-bootstrap CI and counts of values grouped by task."""
    flat = [v for g in groups.values() for v in g]
    return {
        "mean": _mean(flat),
        "ci": bootstrap_ci(list(groups.values()), n_bootstrap=n_bootstrap, seed=seed),
        "n": len(flat),
        "n_tasks": sum(1 for g in groups.values() if len(g)),
    }


def distribution(values: Iterable[str | None], levels: Sequence[str]) -> dict[str, Any]:
    """Counts and shares of each level (unanswered values are counted apart)."""
    counts = Counter(values)
    missing = counts.pop(None, 0)
    unknown = sorted(str(x) for x in set(counts) - set(levels))
    if unknown:
        raise ValueError(f"unknown level(s) {unknown}; expected {list(levels)}")
    n = sum(counts.values())
    return {
        "counts": {lvl: counts.get(lvl, 0) for lvl in levels},
        "shares": {lvl: (counts.get(lvl, 0) / n if n else None) for lvl in levels},
        "n": n,
        "unanswered": missing,
    }


# --------------------------------------------------------------------------
# Agreement: ICC(3) and Krippendorff's alpha
# --------------------------------------------------------------------------


def _float_table(table: np.ndarray | Sequence[Sequence[float | None]]) -> np.ndarray:
    """A 2-D float array with NaN for None."""
    rows = [[np.nan if v is None else float(v) for v in row] for row in table]
    width = len(rows[0]) if rows else 0
    if any(len(r) != width for r in rows):
        raise ValueError("every row of the table needs the same number of raters")
    return np.array(rows, dtype=float).reshape(len(rows), width)


def icc3(
    table: np.ndarray | Sequence[Sequence[float | None]], *, alpha: float = 0.05
) -> dict[str, Any]:
    """ICC(3,1) and ICC(3,k) of a targets x raters table (two-way mixed, consistency).

    Rows with a missing value (``None``/NaN) are dropped first; ``dropped``
    says how many. With ``n`` targets and ``k`` raters::

        MSR = SS_rows / (n - 1)                       between-targets mean square
        MSE = SS_error / ((n - 1)(k - 1))             residual mean square
        ICC(3,1) = (MSR - MSE) / (MSR + (k - 1) MSE)
        ICC(3,k) = (MSR - MSE) / MSR

    with the F test ``F = MSR / MSE`` and the confidence intervals of
    McGraw and Wong (1996), as pingouin reports them. Values are None when
    fewer than two complete targets or raters remain, or the table has no
    variance at all.
    """
    from scipy import stats

    x = _float_table(table)
    complete = ~np.isnan(x).any(axis=1)
    x = x[complete]
    n, k = x.shape
    out: dict[str, Any] = {
        "icc3_1": None,
        "icc3_k": None,
        "ci_icc3_1": None,
        "ci_icc3_k": None,
        "F": None,
        "df1": None,
        "df2": None,
        "p_value": None,
        "n_targets": int(n),
        "n_raters": int(k),
        "dropped": int((~complete).sum()),
    }
    if n < 2 or k < 2:
        return out
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_error = ss_total - ss_rows - ss_cols
    df1, df2 = n - 1, (n - 1) * (k - 1)
    msr, mse = ss_rows / df1, ss_error / df2
    if msr <= 0:
        return out  # every target rated alike: reliability is undefined
    out["icc3_1"] = float((msr - mse) / (msr + (k - 1) * mse))
    out["icc3_k"] = float((msr - mse) / msr)
    out["df1"], out["df2"] = int(df1), int(df2)
    if mse > 0:
        f = msr / mse
        out["F"] = float(f)
        out["p_value"] = float(stats.f.sf(f, df1, df2))
        f_lo = f / stats.f.ppf(1 - alpha / 2, df1, df2)
        f_hi = f * stats.f.ppf(1 - alpha / 2, df2, df1)
        out["ci_icc3_1"] = [float((f_lo - 1) / (f_lo + k - 1)), float((f_hi - 1) / (f_hi + k - 1))]
        out["ci_icc3_k"] = [float(1 - 1 / f_lo), float(1 - 1 / f_hi)]
    return out


def krippendorff_alpha_ordinal(units: Sequence[Sequence[float | None]]) -> dict[str, Any]:
    """Krippendorff's alpha with the ordinal metric; ``units[u]`` holds unit u's values.

    Missing values (``None``/NaN) are skipped; a unit with fewer than two
    values is not pairable and does not count. With the coincidence matrix
    ``o[c][k] = sum over units of (pairs c-k in the unit) / (m_u - 1)``, its
    margins ``n_c`` and total ``n``, the ordinal distance is
    ``d(c, k) = (sum of n_g for g from c to k - (n_c + n_k) / 2) ** 2``, and
    ``alpha = 1 - (n - 1) * sum(o * d) / sum(n_c n_k d)``.

    Returns alpha (None when undefined: fewer than two pairable values, or a
    single observed value) with the number of pairable units and values.
    """
    cleaned = [
        [float(v) for v in unit if v is not None and not (isinstance(v, float) and math.isnan(v))]
        for unit in units
    ]
    pairable = [u for u in cleaned if len(u) >= 2]
    values = sorted({v for u in pairable for v in u})
    out: dict[str, Any] = {
        "alpha": None,
        "n_units": len(pairable),
        "n_values": sum(len(u) for u in pairable),
    }
    if len(values) < 2:
        return out
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for unit in pairable:
        counts = np.zeros(len(values))
        for v in unit:
            counts[index[v]] += 1
        # ordered pairs of distinct raters: c-k pairs = n_c n_k, minus self pairs on the diagonal
        pairs = np.outer(counts, counts) - np.diag(counts)
        o += pairs / (len(unit) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    cum = np.concatenate([[0.0], np.cumsum(n_c)])
    lo = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
    hi = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
    d = (cum[hi + 1] - cum[lo] - (n_c[lo] + n_c[hi]) / 2) ** 2
    expected = (np.outer(n_c, n_c) * d).sum()
    if expected == 0:
        return out
    out["alpha"] = float(1 - (n - 1) * (o * d).sum() / expected)
    return out


# --------------------------------------------------------------------------
# Phase 1: validation
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictRules:
    """When a validated task is rejected (each share is of the raters who gave that answer)."""

    wrong_share: float = 0.5  # reject when more than this share chose another answer than the key
    implausible_share: float = 0.5  # reject when more than this share said "no" to plausibility

    def __post_init__(self) -> None:
        for name in ("wrong_share", "implausible_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


def _by_task(rows: Iterable[StudyValidationAnswer]) -> dict[str, list[StudyValidationAnswer]]:
    out: dict[str, list[StudyValidationAnswer]] = defaultdict(list)
    for r in rows:
        out[r.task_id].append(r)
    return dict(sorted(out.items()))


def _correct(r: StudyValidationAnswer) -> bool | None:
    return None if r.answer is None else r.answer == r.key


def accuracy(
    rows: Sequence[StudyValidationAnswer], *, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
) -> dict[str, Any]:
    """MCQ accuracy against the key: overall, per category, per task type and per rater.

    Only answered rows count; each figure has a 95% CI from resampling tasks.
    """

    def summary(attr: str | None = None, value: str = "") -> dict[str, Any]:
        groups: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            ok = _correct(r)
            if ok is not None and (attr is None or getattr(r, attr) == value):
                groups[r.task_id].append(float(ok))
        return _summary(groups, n_bootstrap=n_bootstrap, seed=seed)

    return {
        "overall": summary(),
        "by_category": {c: summary("category", c) for c in _present(rows, "category", CATEGORIES)},
        "by_type": {t: summary("task_type", t) for t in sorted({r.task_type for r in rows})},
        "by_rater": {x: summary("rater", x) for x in sorted({r.rater for r in rows})},
        "unanswered": sum(1 for r in rows if r.answer is None),
    }


def _present(rows: Sequence[Any], attr: str, order: Sequence[str]) -> list[str]:
    seen = {getattr(r, attr) for r in rows}
    return [c for c in order if c in seen] + sorted(seen - set(order))


def slider_table(
    rows: Sequence[StudyValidationAnswer],
) -> tuple[list[str], list[str], list[list[float | None]]]:
    """(task ids, raters, tasks x raters slider values, None where untouched or not assigned)."""
    tasks = sorted({r.task_id for r in rows})
    raters = sorted({r.rater for r in rows})
    ti = {t: i for i, t in enumerate(tasks)}
    ri = {x: j for j, x in enumerate(raters)}
    table: list[list[float | None]] = [[None] * len(raters) for _ in tasks]
    for r in rows:
        table[ti[r.task_id]][ri[r.rater]] = r.proactivity
    return tasks, raters, table


def slider_vs_behavior(rows: Sequence[StudyValidationAnswer]) -> dict[str, Any]:
    """Mean slider per task against the builder's behaviour score: Spearman, Pearson, n."""
    from scipy import stats

    sliders: dict[str, list[float]] = defaultdict(list)
    score: dict[str, float] = {}
    for r in rows:
        if r.proactivity is not None:
            sliders[r.task_id].append(r.proactivity)
        if r.behavior_score is not None:
            score[r.task_id] = r.behavior_score
    pairs = [(float(np.mean(v)), score[t]) for t, v in sorted(sliders.items()) if t in score]
    out: dict[str, Any] = {
        "n": len(pairs),
        "spearman": None,
        "spearman_p": None,
        "pearson": None,
        "pearson_p": None,
        "note": "",
    }
    if len(pairs) < 3:
        out["note"] = "fewer than 3 tasks have both a slider value and a behaviour score"
        return out
    a, b = np.array(pairs).T
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        out["note"] = "the slider means or the behaviour scores are all equal"
        return out
    rho = stats.spearmanr(a, b)
    r = stats.pearsonr(a, b)
    out.update(
        spearman=float(rho.statistic),
        spearman_p=float(rho.pvalue),
        pearson=float(r.statistic),
        pearson_p=float(r.pvalue),
    )
    return out


def task_details(
    rows: Sequence[StudyValidationAnswer], rules: VerdictRules
) -> list[dict[str, Any]]:
    """One entry per task: key, answers, plausibility counts, notes, slider mean, verdict."""
    out = []
    for task_id, answers in _by_task(rows).items():
        first = answers[0]
        given = [r for r in answers if r.answer is not None]
        wrong = [r for r in given if r.answer != r.key]
        rated = [r for r in answers if r.plausibility is not None]
        plaus: Counter[str] = Counter(str(r.plausibility) for r in rated)
        sliders = [r.proactivity for r in answers if r.proactivity is not None]
        responders = sum(1 for r in answers if r.answer is not None or r.plausibility is not None)
        reasons = []
        if given and len(wrong) / len(given) > rules.wrong_share:
            chosen = Counter(r.answer for r in wrong).most_common()
            reasons.append(
                f"{len(wrong)}/{len(given)} raters chose another answer than the key "
                f"{first.key} ({', '.join(f'{a} x{n}' for a, n in chosen)})"
            )
        if rated and plaus["no"] / len(rated) > rules.implausible_share:
            reasons.append(f"judged implausible by {plaus['no']}/{len(rated)} raters")
        out.append(
            {
                "task_id": task_id,
                "task_type": first.task_type,
                "category": first.category,
                "key": first.key,
                "answers": {r.rater: r.answer for r in answers},
                "n_answered": len(given),
                "n_wrong": len(wrong),
                "plausibility": {lvl: plaus.get(lvl, 0) for lvl in PLAUSIBILITY_LEVELS},
                "slider_mean": _mean(sliders),
                "behavior_score": first.behavior_score,
                "notes": {r.rater: r.note for r in answers if r.note.strip()},
                "n_raters": responders,
                "verdict": None if responders == 0 else ("rejected" if reasons else "accepted"),
                "reasons": reasons,
                "review": bool(wrong or plaus.get("no") or plaus.get("unsure")) and not reasons,
            }
        )
    return out


def verdicts(details: Sequence[Mapping[str, Any]], study: str) -> list[StudyVerdict]:
    """The verdict rows of the tasks at least one rater answered (see :func:`task_details`)."""
    return [
        StudyVerdict(
            task_id=d["task_id"],
            verdict=d["verdict"],
            reasons=list(d["reasons"]),
            study=study,
            n_raters=d["n_raters"],
        )
        for d in details
        if d["verdict"] is not None
    ]


def analyze_validation(
    rows: Sequence[StudyValidationAnswer],
    *,
    rules: VerdictRules = VerdictRules(),
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Every phase 1 number: accuracy, Figure 18 distributions, agreement, verdicts."""
    tasks, raters, table = slider_table(rows)
    details = task_details(rows, rules)
    return {
        "n_tasks": len(tasks),
        "raters": raters,
        "n_rows": len(rows),
        "accuracy": accuracy(rows, n_bootstrap=n_bootstrap, seed=seed),
        "confidence": distribution((r.confidence for r in rows), CONFIDENCE_LEVELS),
        "plausibility": distribution((r.plausibility for r in rows), PLAUSIBILITY_LEVELS),
        "confidence_by_rater": {
            x: distribution((r.confidence for r in rows if r.rater == x), CONFIDENCE_LEVELS)
            for x in raters
        },
        "plausibility_by_rater": {
            x: distribution((r.plausibility for r in rows if r.rater == x), PLAUSIBILITY_LEVELS)
            for x in raters
        },
        "slider": {
            "icc": icc3(table),
            "alpha_ordinal": krippendorff_alpha_ordinal(table),
            "untouched": sum(1 for r in rows if r.proactivity is None),
            "mean": _mean(r.proactivity for r in rows if r.proactivity is not None),
        },
        "slider_vs_behavior": slider_vs_behavior(rows),
        "rules": {"wrong_share": rules.wrong_share, "implausible_share": rules.implausible_share},
        "tasks": details,
        "rejected": [d["task_id"] for d in details if d["verdict"] == "rejected"],
        "review": [d["task_id"] for d in details if d["review"]],
        "unrated": [d["task_id"] for d in details if d["verdict"] is None],
    }


# --------------------------------------------------------------------------
# Phase 2: comparison
# --------------------------------------------------------------------------


class AgentKeyError(ValueError):
    """A comparison row has no entry in the de-anonymisation key."""


def deanonymise(
    rows: Sequence[StudyComparisonAnswer], key: Sequence[StudyAgentKey]
) -> list[tuple[str, StudyComparisonAnswer]]:
    """``(run, row)`` for each row; raises naming the rows the key does not cover."""
    runs = {(k.rater, k.task_id, k.agent): k.run for k in key}
    missing = [r for r in rows if (r.rater, r.task_id, r.agent) not in runs]
    if missing:
        shown = ", ".join(f"rater {r.rater} task {r.task_id} agent {r.agent}" for r in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise AgentKeyError(f"the agent key has no run for {shown}{more}")
    return [(runs[(r.rater, r.task_id, r.agent)], r) for r in rows]


def complete_rankings(
    rows: Sequence[tuple[str, StudyComparisonAnswer]],
) -> tuple[list[tuple[str, StudyComparisonAnswer]], int]:
    """The rows of (rater, task) rankings with every agent ranked; and how many were incomplete."""
    by_sheet: dict[tuple[str, str], list[tuple[str, StudyComparisonAnswer]]] = defaultdict(list)
    for run, r in rows:
        by_sheet[(r.rater, r.task_id)].append((run, r))
    kept, incomplete = [], 0
    for sheet in by_sheet.values():
        if all(r.rank is not None for _, r in sheet):
            kept.extend(sheet)
        else:
            incomplete += 1
    return kept, incomplete


def analyze_comparison(
    rows: Sequence[StudyComparisonAnswer],
    key: Sequence[StudyAgentKey],
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Every phase 2 number: mean rank and Likert per agent (Figure 19), alpha, unsafe flags."""
    named = deanonymise(rows, key)
    ranked, incomplete = complete_rankings(named)
    agents = sorted({run for run, _ in named})
    per_agent: dict[str, Any] = {}
    for agent in agents:
        ranks: dict[str, list[float]] = defaultdict(list)
        likert: dict[str, list[float]] = defaultdict(list)
        for run, r in ranked:
            if run == agent and r.rank is not None:
                ranks[r.task_id].append(r.rank)
        for run, r in named:
            if run == agent and r.likert is not None:
                likert[r.task_id].append(r.likert)
        flags = [
            {"rater": r.rater, "task_id": r.task_id, "note": r.unsafe_note}
            for run, r in named
            if run == agent and r.unsafe
        ]
        n_rows = sum(1 for run, _ in named if run == agent)
        per_agent[agent] = {
            "rank": _summary(ranks, n_bootstrap=n_bootstrap, seed=seed),
            "likert": _summary(likert, n_bootstrap=n_bootstrap, seed=seed),
            "first_place": sum(1 for run, r in ranked if run == agent and r.rank == 1),
            "unsafe": {
                "count": len(flags),
                "share": len(flags) / n_rows if n_rows else None,
                "flags": flags,
            },
        }
    raters = sorted({r.rater for r in rows})
    units: dict[tuple[str, str], dict[str, float | None]] = defaultdict(dict)
    for run, r in named:
        units[(r.task_id, run)][r.rater] = None if r.likert is None else float(r.likert)
    rank_units: dict[tuple[str, str], dict[str, float | None]] = defaultdict(dict)
    for run, r in ranked:
        rank_units[(r.task_id, run)][r.rater] = None if r.rank is None else float(r.rank)
    return {
        "n_tasks": len({r.task_id for r in rows}),
        "raters": raters,
        "agents": agents,
        "n_rows": len(rows),
        "incomplete_rankings": incomplete,
        "per_agent": per_agent,
        "likert_alpha_ordinal": krippendorff_alpha_ordinal(
            [[u.get(x) for x in raters] for _, u in sorted(units.items())]
        ),
        "rank_alpha_ordinal": krippendorff_alpha_ordinal(
            [[u.get(x) for x in raters] for _, u in sorted(rank_units.items())]
        ),
        "best_mean_rank": min(
            (a for a in agents if per_agent[a]["rank"]["mean"] is not None),
            key=lambda a: per_agent[a]["rank"]["mean"],
            default=None,
        ),
        "best_likert": max(
            (a for a in agents if per_agent[a]["likert"]["mean"] is not None),
            key=lambda a: per_agent[a]["likert"]["mean"],
            default=None,
        ),
    }
