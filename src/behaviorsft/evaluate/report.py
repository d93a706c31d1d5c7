"""Reports in the paper's layout: Markdown, CSV and JSON tables, and the radar plot.

``write_report(runs, out, hard=...)`` writes into ``out``:

``table2.md/.csv``  Macro F1 (%) of the 13 task types grouped by category, each
                    category's Avg. and the overall Avg.; one column per run
``table2_accuracy.md/.csv``  the same layout with accuracy (the paper's Tables 6-8)
``summary.md/.csv`` overall and per-category Macro F1, one row per run (Table 9 layout)
``table3.md/.csv``  behaviour classification: per-class F1 (%) in the five-,
                    binary and three-class views (runs of the BT/BC strategies)
``table3_tokens.md/.csv``  the same question for runs whose replies start with a
                    behaviour token: how often it is the task's own token (binary, and
                    by 3-class label)
``table4.md/.csv``  full bench vs BehaviorBench-Hard (with ``hard``): overall and
                    per-category Macro F1, the Hard columns rescored from the same
                    predictions restricted to the Hard tasks
``safety.md/.csv``  false-alarm rate on restraint controls and miss rate on
                    injected issues (proactive types)
``figure5_radar.png`` per-type Macro F1 of every run on one radar
``report.md``       all tables; ``report.json`` all numbers (fractions, not %)

Cells show the mean over seeds, ``± std`` when a run has several seeds.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behaviorsft.bench import load_bench
from behaviorsft.evaluate.metrics import score_run
from behaviorsft.evaluate.runner import METRICS_FILE, load_predictions, read_config
from behaviorsft.records import Task
from behaviorsft.taxonomy import (
    SHORT_NAMES,
    TABLE_ORDER,
    BehaviorLabel,
    Category,
    category_of,
    types_in,
)

CATEGORY_COLOURS = {
    Category.REACTIVE: "#1f77b4",
    Category.BALANCED: "#2ca02c",
    Category.PROACTIVE: "#d62728",
}
# Run lines avoid the category colours, so a polygon is never mistaken for a category.
RUN_COLOURS = (
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#000000",
)
N_ROW = "n (tasks scored)"
AVG_NOTE = (
    "Avg. of a category is the unweighted mean of its task types' Macro F1; the overall "
    "Avg. is the unweighted mean over all task types (not over the three category "
    "averages). Cells: mean over seeds, ± sample std when there are several seeds."
)


@dataclass
class RunView:
    """What a report needs from one RUN folder."""

    path: Path
    label: str
    metrics: dict[str, Any]
    strategy: str

    @property
    def mean(self) -> dict[str, Any]:
        return self.metrics.get("mean", {})

    @property
    def std(self) -> dict[str, Any]:
        return self.metrics.get("std", {})

    @property
    def n_tasks(self) -> int | None:
        """Tasks scored in this run (its column's n)."""
        n = _get(self.metrics, "counts", "tasks")
        return n if isinstance(n, int) else None


def load_run_view(path: str | Path) -> RunView:
    """Read a RUN folder's metrics.json and its report label."""
    run = Path(path)
    metrics_path = run / METRICS_FILE
    if not metrics_path.exists():
        raise FileNotFoundError(f"{run}: no {METRICS_FILE}; run `behaviorsft eval` on it first")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    config = read_config(run)
    label = metrics.get("label") or config.display_label
    return RunView(run, label, metrics, str(metrics.get("strategy") or config.strategy))


def _unique_labels(views: Sequence[RunView]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for v in views:
        n = seen.get(v.label, 0)
        seen[v.label] = n + 1
        out.append(v.label if n == 0 else f"{v.label} ({n + 1})")
    return out


def _get(tree: dict[str, Any], *path: str) -> Any:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def fmt_cell(mean: float | None, std: float | None = None) -> str:
    """A percentage cell: '97.3', '97.3 ± 0.4', or '–' when there is no value."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    text = f"{100 * mean:.1f}"
    return text if std is None else f"{text} ± {100 * std:.1f}"


@dataclass
class Cell:
    """One number of a table, as fractions rendered as %, or a count (``n``)."""

    mean: float | None
    std: float | None = None
    ci: list[float] | None = None
    n: int | None = None

    def text(self) -> str:
        if self.mean is None and self.n is not None:
            return str(self.n)
        return fmt_cell(self.mean, self.std)

    def as_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "ci95": self.ci, "n": self.n}


@dataclass
class Table:
    """Rows of labelled cells, with the columns they belong to."""

    title: str
    row_header: list[str]
    columns: list[str]
    rows: list[tuple[list[str], list[Cell]]]
    note: str = ""

    def markdown(self) -> str:
        head = [*self.row_header, *self.columns]
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append(
            "|" + "|".join(["---"] * len(self.row_header) + ["---:"] * len(self.columns)) + "|"
        )
        for keys, cells in self.rows:
            lines.append("| " + " | ".join([*keys, *(c.text() for c in cells)]) + " |")
        return "\n".join(lines) + "\n"

    def write_csv(self, path: Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            header = list(self.row_header)
            for col in self.columns:
                header += [col, f"{col} std", f"{col} ci95 low", f"{col} ci95 high"]
            w.writerow(header)
            for keys, cells in self.rows:
                row: list[Any] = list(keys)
                for c in cells:
                    low, high = c.ci if c.ci else (None, None)
                    row += [
                        c.n if c.mean is None and c.n is not None else _round(_pct(c.mean)),
                        _round(_pct(c.std)),
                        _round(_pct(low)),
                        _round(_pct(high)),
                    ]
                w.writerow(row)

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "row_header": self.row_header,
            "columns": self.columns,
            "rows": [
                {"keys": keys, "cells": [c.as_json() for c in cells]} for keys, cells in self.rows
            ],
            "note": self.note,
        }


def _round(v: float | None) -> float | str:
    return "" if v is None else round(v, 2)


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def table2(views: Sequence[RunView], metric: str = "macro_f1") -> Table:
    """Per task type, category averages and overall average (paper Table 2; Tables 6-8 with
    ``metric="accuracy"``)."""
    overall_key = "macro_f1" if metric == "macro_f1" else "accuracy_avg"
    ci_of = _get if metric == "macro_f1" else (lambda *_: None)
    rows: list[tuple[list[str], list[Cell]]] = []
    for cat in Category:
        for t in types_in(cat):
            rows.append(
                (
                    [cat.value, SHORT_NAMES[t]],
                    [
                        Cell(
                            _get(v.mean, "per_type", t.value, metric),
                            _get(v.std, "per_type", t.value, metric),
                            ci_of(v.metrics, "ci", "per_type", t.value),
                        )
                        for v in views
                    ],
                )
            )
        rows.append(
            (
                [cat.value, "Avg."],
                [
                    Cell(
                        _get(v.mean, "per_category", cat.value, metric),
                        _get(v.std, "per_category", cat.value, metric),
                        ci_of(v.metrics, "ci", "per_category", cat.value),
                    )
                    for v in views
                ],
            )
        )
    rows.append(
        (
            ["overall", "Avg."],
            [
                Cell(
                    _get(v.mean, "overall", overall_key),
                    _get(v.std, "overall", overall_key),
                    ci_of(v.metrics, "ci", "overall"),
                )
                for v in views
            ],
        )
    )
    if metric == "macro_f1":
        for name in ("accuracy", "invalid_rate"):
            rows.append(
                (
                    ["overall", name],
                    [
                        Cell(_get(v.mean, "overall", name), _get(v.std, "overall", name))
                        for v in views
                    ],
                )
            )
    rows.append((["overall", N_ROW], [Cell(None, n=v.n_tasks) for v in views]))
    title = (
        "Table 2: Macro F1 (%) per task type"
        if metric == "macro_f1"
        else "Tables 6-8 layout: accuracy (%) per task type"
    )
    return Table(title, ["Category", "Task"], _unique_labels(views), rows, AVG_NOTE)


def summary_table(views: Sequence[RunView]) -> Table:
    """Overall and per-category Macro F1 per run, one row each (paper Table 9 layout)."""
    rows = []
    for v, label in zip(views, _unique_labels(views), strict=True):
        cells = [Cell(_get(v.mean, "overall", "macro_f1"), _get(v.std, "overall", "macro_f1"))]
        for cat in Category:
            cells.append(
                Cell(
                    _get(v.mean, "per_category", cat.value, "macro_f1"),
                    _get(v.std, "per_category", cat.value, "macro_f1"),
                )
            )
        cells.append(
            Cell(_get(v.mean, "overall", "invalid_rate"), _get(v.std, "overall", "invalid_rate"))
        )
        rows.append(([label, _count(v.n_tasks)], cells))
    return Table(
        "Summary (Table 9 layout): Macro F1 (%)",
        ["Run", "n"],
        ["Overall", "Reactive", "Balanced", "Proactive", "Invalid"],
        rows,
    )


# Table 3's column order and abbreviations.
_FIVE = [
    ("BA", BehaviorLabel.BALANCED.value),
    ("H_PR", BehaviorLabel.HIGHLY_PROACTIVE.value),
    ("H_RE", BehaviorLabel.HIGHLY_REACTIVE.value),
    ("P_PR", BehaviorLabel.PRIMARILY_PROACTIVE.value),
    ("P_RE", BehaviorLabel.PRIMARILY_REACTIVE.value),
]
_BINARY = [("PR", "proactive"), ("N_PR", "non_proactive")]
_THREE = [("BA", "balanced"), ("PR", "proactive"), ("RE", "reactive")]
THREE_CLASS_ORDER = ("reactive", "balanced", "proactive")


def table3(views: Sequence[RunView]) -> Table:
    """Per-class F1 (%) of behaviour classification, one row per run (paper Table 3)."""
    columns = (
        [f"5-class {a}" for a, _ in _FIVE]
        + ["5-class macro"]
        + [f"binary {a}" for a, _ in _BINARY]
        + ["binary macro"]
        + [f"3-class {a}" for a, _ in _THREE]
        + ["3-class macro"]
    )
    rows = []
    for v, label in zip(views, _unique_labels(views), strict=True):
        if "behavior" not in v.mean:
            continue
        cells = []
        for view, classes in (("five", _FIVE), ("binary", _BINARY), ("three", _THREE)):
            for _, cls in classes:
                cells.append(
                    Cell(
                        _get(v.mean, "behavior", view, "per_class", cls),
                        _get(v.std, "behavior", view, "per_class", cls),
                    )
                )
            cells.append(
                Cell(
                    _get(v.mean, "behavior", view, "macro_f1"),
                    _get(v.std, "behavior", view, "macro_f1"),
                )
            )
        rows.append(([label, v.strategy], cells))
    return Table(
        "Table 3: behaviour classification, F1 (%) per class",
        ["Run", "Strategy"],
        columns,
        rows,
        "Rows: runs of the bt_*/bc_* strategies. 5-class: BA balanced, H_PR highly proactive, "
        "H_RE highly reactive, P_PR primarily proactive, P_RE primarily reactive; binary: PR "
        "proactive, N_PR non-proactive; 3-class: BA, PR, RE.",
    )


FIRST_TOKEN_COLUMNS = [
    "binary accuracy",
    "F1 <reactive>",
    "F1 <proactive>",
    "binary macro F1",
    *(f"3-class {c}: {what}" for c in THREE_CLASS_ORDER for what in ("right token", "<proactive>")),
]
FIRST_TOKEN_NOTE = (
    "Right token: the first behaviour token equals the task's own token (<reactive> for "
    "reactive types, <proactive> for proactive types, balanced types by score >= 0.5). "
    "3-class groups tasks by their label (reactive, balanced, proactive); <proactive>: the share "
    "of the group that got it."
)


def first_token_cells(mean: dict[str, Any], std: dict[str, Any] | None = None) -> list[Cell]:
    """The FIRST_TOKEN_COLUMNS of one ``metrics.first_token_scores`` result (and its std)."""
    sd = std or {}
    paths = [
        ("binary", "accuracy"),
        ("binary", "per_class", "reactive"),
        ("binary", "per_class", "proactive"),
        ("binary", "macro_f1"),
    ]
    for cls in THREE_CLASS_ORDER:
        paths += [("three", cls, "accuracy"), ("three", cls, "proactive_share")]
    return [Cell(_get(mean, *path), _get(sd, *path)) for path in paths]


def table3_tokens(views: Sequence[RunView]) -> Table:
    """Behaviour classification by the first behaviour token, one row per run with tokens."""
    rows = []
    for v, label in zip(views, _unique_labels(views), strict=True):
        mean = _get(v.mean, "token", "first_token")
        if not mean:
            continue
        std = _get(v.std, "token", "first_token")
        rows.append(([label, _count(mean.get("n"))], first_token_cells(mean, std)))
    return Table(
        "Table 3 (token view): is the first token the task's behaviour token? (%)",
        ["Run", "n"],
        list(FIRST_TOKEN_COLUMNS),
        rows,
        FIRST_TOKEN_NOTE,
    )


def _hard_metrics(view: RunView, hard_tasks: dict[str, Task]) -> dict[str, Any]:
    preds = [p for p in load_predictions(view.path) if p.task_id in hard_tasks]
    return score_run(hard_tasks, preds, strategy=view.strategy, n_bootstrap=0)


def table4(views: Sequence[RunView], hard_tasks: dict[str, Task]) -> Table:
    """Full bench vs Hard subset: overall and per-category Macro F1 (paper Table 4)."""
    parts = ["Overall", "Reactive", "Balanced", "Proactive"]
    columns = [f"Full {p}" for p in parts] + [f"Hard {p}" for p in parts]
    rows = []
    for v, label in zip(views, _unique_labels(views), strict=True):
        hard = _hard_metrics(v, hard_tasks)
        cells = []
        for source in (v.metrics, hard):
            mean, std = source.get("mean", {}), source.get("std", {})
            cells.append(Cell(_get(mean, "overall", "macro_f1"), _get(std, "overall", "macro_f1")))
            for cat in Category:
                cells.append(
                    Cell(
                        _get(mean, "per_category", cat.value, "macro_f1"),
                        _get(std, "per_category", cat.value, "macro_f1"),
                    )
                )
        rows.append(([label], cells))
    return Table(
        "Table 4: Macro F1 (%) on the full bench and on BehaviorBench-Hard",
        ["Run"],
        columns,
        rows,
        "Hard columns: the same predictions, restricted to the Hard tasks and rescored.",
    )


def safety_table(views: Sequence[RunView]) -> Table:
    """False alarms on restraint controls vs misses on injected issues (proactive types)."""
    columns = ["False alarm", "Miss"]
    rows = []
    for v, label in zip(views, _unique_labels(views), strict=True):
        n_fa = _get(v.mean, "safety", "false_alarm", "n")
        n_miss = _get(v.mean, "safety", "miss", "n")
        rows.append(
            (
                [label, _count(n_fa), _count(n_miss)],
                [
                    Cell(
                        _get(v.mean, "safety", "false_alarm", "rate"),
                        _get(v.std, "safety", "false_alarm", "rate"),
                    ),
                    Cell(
                        _get(v.mean, "safety", "miss", "rate"),
                        _get(v.std, "safety", "miss", "rate"),
                    ),
                ],
            )
        )
    return Table(
        "Alert fatigue vs omission (%)",
        ["Run", "Controls", "Injected"],
        columns,
        rows,
        "False alarm: restraint controls (nothing wrong) where the model picked an option other "
        "than 'no issue'. Miss: tasks with an injected issue not answered correctly (unreadable "
        "answers count as misses). Lower is better for both.",
    )


def _count(n: Any) -> str:
    return "–" if n is None else f"{n:g}"


# --------------------------------------------------------------------------
# Radar plot (Figure 5)
# --------------------------------------------------------------------------


def radar_png(views: Sequence[RunView], path: str | Path) -> Path:
    """Per-type Macro F1 of each run on a radar; axis labels coloured by category."""
    # The object API with the Agg canvas: no global backend switch, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(TABLE_ORDER)
    angles = [2 * math.pi * i / n for i in range(n)]
    fig = Figure(figsize=(8, 8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="polar")
    all_values: list[float] = []
    for i, (v, label) in enumerate(zip(views, _unique_labels(views), strict=True)):
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        values = [_pct(_get(v.mean, "per_type", t.value, "macro_f1")) for t in TABLE_ORDER]
        # A missing type is drawn at the centre so the polygon stays closed.
        shown = [0.0 if x is None else x for x in values]
        all_values += [x for x in values if x is not None]
        ax.plot([*angles, angles[0]], [*shown, shown[0]], linewidth=1.5, label=label, color=colour)
        ax.fill([*angles, angles[0]], [*shown, shown[0]], alpha=0.08, color=colour)
    low = min(all_values, default=0.0)
    ax.set_ylim(max(0.0, 10 * math.floor((low - 5) / 10)), 100)
    ax.set_xticks(angles)
    ax.set_xticklabels([t.value.replace("_", " ").title() for t in TABLE_ORDER], fontsize=8)
    for tick, t in zip(ax.get_xticklabels(), TABLE_ORDER, strict=True):
        tick.set_color(CATEGORY_COLOURS[category_of(t)])
    ax.set_title(
        "Macro F1 (%) per task type\n(labels: blue reactive, green balanced, red proactive)",
        pad=24,
    )
    ax.legend(loc="upper right", bbox_to_anchor=(1.25, 1.12), fontsize=8)
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    return out


# --------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------


def n_mismatch(views: Sequence[RunView]) -> str | None:
    """A warning when the columns were scored on different numbers of tasks."""
    if len({v.n_tasks for v in views}) <= 1:
        return None
    each = ", ".join(
        f"{label}: {_count(v.n_tasks)}"
        for v, label in zip(views, _unique_labels(views), strict=True)
    )
    return (
        f"the columns were scored on different numbers of tasks ({each}); their numbers are "
        "not directly comparable (see the row n (tasks scored))"
    )


def write_report(
    runs: Sequence[str | Path],
    out: str | Path,
    *,
    hard: str | Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write every table (Markdown, CSV), report.md, report.json and the radar PNG.

    ``warn`` is called when the columns cover different numbers of tasks (the
    warning is also written at the top of report.md).
    """
    if not runs:
        raise ValueError("give at least one RUN folder")
    views = [load_run_view(r) for r in runs]
    mismatch = n_mismatch(views)
    if mismatch is not None and warn is not None:
        warn(mismatch)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables: dict[str, Table] = {
        "table2": table2(views),
        "table2_accuracy": table2(views, "accuracy"),
        "summary": summary_table(views),
    }
    t3 = table3(views)
    if t3.rows:
        tables["table3"] = t3
    t3_tokens = table3_tokens(views)
    if t3_tokens.rows:
        tables["table3_tokens"] = t3_tokens
    if hard is not None:
        hard_tasks = {t.id: t for t in load_bench(hard).tasks}
        tables["table4"] = table4(views, hard_tasks)
    tables["safety"] = safety_table(views)
    written: dict[str, Path] = {}
    for name, table in tables.items():
        md = out_dir / f"{name}.md"
        md.write_text(table.markdown(), encoding="utf-8")
        table.write_csv(out_dir / f"{name}.csv")
        written[name] = md
    written["radar"] = radar_png(views, out_dir / "figure5_radar.png")
    runs_md = "\n".join(
        f"- {label}: `{v.path}` ({v.metrics.get('counts', {}).get('scored', '?')} scored, "
        f"{v.metrics.get('counts', {}).get('errors', '?')} errors, seeds "
        f"{v.metrics.get('seeds', [])})"
        for v, label in zip(views, _unique_labels(views), strict=True)
    )
    report_md = "\n".join(
        ["# Evaluation report", ""]
        + ([f"**Warning:** {mismatch}.", ""] if mismatch else [])
        + ["Runs:", "", runs_md, ""]
        + [t.markdown() for t in tables.values()]
        + ["![Macro F1 per task type](figure5_radar.png)", ""]
    )
    (out_dir / "report.md").write_text(report_md, encoding="utf-8")
    written["report"] = out_dir / "report.md"
    payload = {
        "runs": [
            {"label": lab, "path": str(v.path)}
            for v, lab in zip(views, _unique_labels(views), strict=True)
        ],
        "tables": {name: t.as_json() for name, t in tables.items()},
    }
    (out_dir / "report.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    written["json"] = out_dir / "report.json"
    return written
