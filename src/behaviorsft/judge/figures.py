"""The paper's judge figures as PNG: grouped bars (Figure 3) and score densities (Figure 2).

Both use matplotlib's object API on the Agg canvas, like
:mod:`behaviorsft.evaluate.report`: no global backend switch, no display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from behaviorsft.evaluate.report import RUN_COLOURS
from behaviorsft.judge.aggregate import JudgedRun
from behaviorsft.judge.criteria import CRITERIA
from behaviorsft.records import Criterion

# Figure 3 of the paper: the four quality criteria.
BAR_CRITERIA: tuple[Criterion, ...] = (
    Criterion.UTILITY,
    Criterion.SAFETY,
    Criterion.CLARITY,
    Criterion.BEHAVIORAL_APPROPRIATENESS,
)
# Figure 2 of the paper: the two style criteria, as densities.
DENSITY_CRITERIA: tuple[Criterion, ...] = (Criterion.SPECIFICITY, Criterion.IMPLICITNESS)


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def grouped_bars_png(agg: Mapping[str, Any], path: str | Path) -> Path | None:
    """Mean score per criterion (groups) and run (bars), with 95% CI whiskers.

    Draws the Figure 3 criteria that were judged; None (and no file) when none was.
    """
    crits = [c for c in BAR_CRITERIA if c.value in agg.get("criteria", [])]
    runs: list[dict[str, Any]] = list(agg.get("runs", []))
    if not crits or not runs:
        return None
    fig = _figure(max(6.0, 1.6 * len(crits) + 0.5 * len(runs)), 4.5)
    ax = fig.add_subplot()
    x = np.arange(len(crits), dtype=float)
    width = 0.8 / len(runs)
    lows: list[float] = []
    for i, run in enumerate(runs):
        sums = [run["criteria"][c.value] for c in crits]
        means = [s["mean"] if s["mean"] is not None else np.nan for s in sums]
        err = np.array(
            [
                [m - s["ci"][0], s["ci"][1] - m]
                if s.get("ci") and s["mean"] is not None
                else [0, 0]
                for s, m in zip(sums, means, strict=True)
            ]
        ).T
        pos = x - 0.4 + width * (i + 0.5)
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        bars = ax.bar(pos, means, width, label=run["label"], color=colour, yerr=err, capsize=3)
        for rect, m, s in zip(bars, means, sums, strict=True):
            if not np.isnan(m):
                # Above the whisker, so the label never sits on the CI line.
                top = s["ci"][1] if s.get("ci") else m
                ax.annotate(
                    f"{m:.2f}",
                    (rect.get_x() + rect.get_width() / 2, top),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    fontsize=7,
                )
        lows += [s["ci"][0] if s.get("ci") else s["mean"] for s in sums if s["mean"] is not None]
    # Like the paper, zoom in on the range the means occupy; the axis label says so.
    low = min(lows, default=0.0)
    bottom = max(0.0, np.floor((low - 0.05) * 10) / 10)
    ax.set_ylim(bottom, 1.04)
    ax.set_xticks(x)
    ax.set_xticklabels([CRITERIA[c].title.replace(" ", "\n", 1) for c in crits])
    ax.set_ylabel("Average score (0-1)" + (f", axis from {bottom:.1f}" if bottom > 0 else ""))
    ax.set_title("G-Eval scores per criterion (whiskers: 95% bootstrap CI)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(len(runs), 4))
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    return out


def _density(values: Sequence[float], grid: np.ndarray) -> np.ndarray | None:
    """Gaussian KDE of ``values`` on ``grid``; None when it is undefined (<2 distinct values)."""
    from scipy.stats import gaussian_kde

    arr = np.asarray(values, dtype=float)
    if arr.size < 2 or np.ptp(arr) == 0:
        return None
    try:
        return np.asarray(gaussian_kde(arr)(grid))
    except np.linalg.LinAlgError:
        return None


def density_png(runs: Sequence[JudgedRun], path: str | Path) -> Path | None:
    """One panel per Figure 2 criterion judged: score density of each run.

    A run whose scores are all equal (no density defined) is drawn as a
    vertical line at that score. None (and no file) when neither criterion
    was judged.
    """
    crits = [
        c for c in DENSITY_CRITERIA if any(j.criterion is c for r in runs for j in r.judgements)
    ]
    if not crits:
        return None
    fig = _figure(5.5 * len(crits), 4.0)
    grid = np.linspace(-0.2, 1.2, 281)
    for k, crit in enumerate(crits):
        ax = fig.add_subplot(1, len(crits), k + 1)
        for i, run in enumerate(runs):
            values = [
                float(j.score)
                for j in run.judgements
                if j.criterion is crit and j.score is not None
            ]
            if not values:
                continue
            colour = RUN_COLOURS[i % len(RUN_COLOURS)]
            label = f"{run.label} (n={len(values)})"
            dens = _density(values, grid)
            if dens is None:
                ax.axvline(values[0], color=colour, label=label, linewidth=2)
            else:
                ax.plot(grid, dens, color=colour, label=label)
                ax.fill_between(grid, dens, alpha=0.15, color=colour)
        title = CRITERIA[crit].title
        ax.set_title(f"({'I' * (k + 1)}) Distribution of {title} Scores", fontsize=10)
        ax.set_xlabel(title)
        ax.set_ylabel("Density")
        ax.set_xlim(-0.2, 1.2)
        ax.legend(fontsize=7)
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    return out
