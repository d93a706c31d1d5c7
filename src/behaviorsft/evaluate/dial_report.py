"""``behaviorsft dial``: the proactivity dial, token forcing and first-token classification.

``write_dial_report(reactive=RUN_R, proactive=RUN_P, unforced=RUN_A, out=DIR)``
reads the RUN folders of one BehaviorSFT model evaluated with ``--behavior
reactive``, ``--behavior proactive`` and (optionally) ``auto`` on the same
tasks, scores them with :mod:`behaviorsft.evaluate.forcing` and writes:

``dial.md/.csv``     the threshold sweep on a grid (T = 0, 0.1, ..., 1) and the
                     model's own operating point
``dial.png``         false-alarm rate against miss rate over every breakpoint,
                     the operating point marked
``forcing.md/.csv``  own token vs the forced opposite token vs either token forced
``first_token.md/.csv``  how often the first token is the task's own token
                     (binary and by 3-class label)
``dial.json``        every number (fractions), including the full sweep
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from behaviorsft.bench import load_bench
from behaviorsft.evaluate.forcing import (
    DEFAULT_STEPS,
    DialItem,
    first_tokens,
    forcing_rows,
    join_runs,
    operating_point,
    sweep,
    thresholds,
)
from behaviorsft.evaluate.metrics import first_token_scores
from behaviorsft.evaluate.report import (
    FIRST_TOKEN_COLUMNS,
    FIRST_TOKEN_NOTE,
    Cell,
    Table,
    first_token_cells,
)
from behaviorsft.evaluate.runner import EvalConfig, load_predictions, read_config

_COLUMNS = [
    ("proactive_rate", "<proactive> chosen"),
    ("false_alarm", "False alarm"),
    ("miss", "Miss"),
    ("accuracy", "Accuracy"),
    ("proactive_on_reactive", "<proactive> on <reactive> tasks"),
    ("reactive_on_injected", "<reactive> on injected"),
]
RATES_NOTE = (
    "False alarm: restraint controls of proactive types (nothing is wrong) answered with a "
    "readable option other than 'no issue'. Miss: proactive-type tasks with an injected issue "
    "not answered correctly (unreadable counts). Accuracy: over all tasks. The last two "
    "columns judge the chosen token itself: <proactive> on tasks whose own token is "
    "<reactive>, and <reactive> on tasks with an injected issue."
)


def _cells(point: dict[str, Any]) -> list[Cell]:
    return [Cell(point[key]["rate"]) for key, _ in _COLUMNS]


def _t_text(t: float | None) -> str:
    if t is None:
        return "own"
    return "> max P" if math.isinf(t) else f"{t:.2f}"


def dial_table(points: list[dict[str, Any]], own: dict[str, Any], n: dict[str, int]) -> Table:
    rows = [([_t_text(p["threshold"])], _cells(p)) for p in points]
    label = "own (unforced)" if own["source"] == "unforced run" else "own (P >= 0.5)"
    rows.append(([label], _cells(own)))
    return Table(
        "The proactivity dial: <proactive> iff P(<proactive>) >= T (%)",
        ["T"],
        [name for _, name in _COLUMNS],
        rows,
        f"{n['tasks']} tasks, {n['controls']} restraint controls, {n['injected']} with an "
        f"injected issue. Each task is answered under the token the dial picks (the forced "
        f"runs' answers). {RATES_NOTE}",
    )


_FORCING_ROWS = {
    "own": "own token",
    "opposite": "forced opposite token",
    "all_reactive": "<reactive> forced on all",
    "all_proactive": "<proactive> forced on all",
}


def forcing_table(rows: list[dict[str, Any]]) -> Table:
    return Table(
        "Token forcing (%)",
        ["Answers under"],
        [name for _, name in _COLUMNS],
        [([_FORCING_ROWS[r["row"]]], _cells(r)) for r in rows],
        "Own token: the unforced run's token (else the likelier of the two, P >= 0.5). Forced "
        "opposite: every task answered under the token the model did not pick. " + RATES_NOTE,
    )


def first_token_table(scores: dict[str, Any]) -> Table:
    return Table(
        "Behaviour classification by the first token (%)",
        ["n", "no token"],
        list(FIRST_TOKEN_COLUMNS),
        [([str(scores["n"]), str(scores["no_token"])], first_token_cells(scores))],
        FIRST_TOKEN_NOTE,
    )


def dial_png(points: list[dict[str, Any]], own: dict[str, Any], path: Path, title: str) -> Path:
    """False-alarm rate (x) against miss rate (y) over the sweep; the own point as a star."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = [
        p for p in points if p["false_alarm"]["rate"] is not None and p["miss"]["rate"] is not None
    ]
    xs = [100 * p["false_alarm"]["rate"] for p in shown]
    ys = [100 * p["miss"]["rate"] for p in shown]
    ax.plot(xs, ys, "-o", color="#9467bd", markersize=4, label="dial, T from 0 to 1")
    if shown:
        ends = (
            (shown[0], "T = 0: all <proactive>"),
            (shown[-1], f"T = {_t_text(shown[-1]['threshold'])}: all <reactive>"),
        )
        for p, text in ends:
            ax.annotate(
                text,
                (100 * p["false_alarm"]["rate"], 100 * p["miss"]["rate"]),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=8,
            )
    if own["false_alarm"]["rate"] is not None and own["miss"]["rate"] is not None:
        ax.plot(
            [100 * own["false_alarm"]["rate"]],
            [100 * own["miss"]["rate"]],
            "*",
            color="#d62728",
            markersize=16,
            label=f"own operating point ({own['source']})",
        )
    if not shown:
        ax.text(
            50,
            50,
            "no curve: these tasks include no restraint control\nor no task with an injected "
            "issue (see dial.md)",
            ha="center",
            va="center",
            fontsize=9,
        )
    ax.set_xlim(-3, 103)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("false alarms on restraint controls (%)")
    ax.set_ylabel("misses on injected issues (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def _forced_config(run: Path, want: str) -> EvalConfig:
    config = read_config(run)
    if config.behavior != want:
        raise ValueError(
            f"{run}: made with --behavior {config.behavior}, not {want}; the dial needs one run "
            "with --behavior reactive and one with --behavior proactive (strategy behaviorsft)"
        )
    return config


def load_dial_items(
    reactive: str | Path,
    proactive: str | Path,
    unforced: str | Path | None = None,
    *,
    bench: str | Path | None = None,
) -> tuple[list[DialItem], dict[str, Any]]:
    """Read the runs, check that they belong together, and pair their answers."""
    r_cfg = _forced_config(Path(reactive), "reactive")
    p_cfg = _forced_config(Path(proactive), "proactive")
    runs = {"reactive": Path(reactive), "proactive": Path(proactive)}
    configs = [r_cfg, p_cfg]
    if unforced is not None:
        u_cfg = read_config(unforced)
        if u_cfg.behavior != "auto":
            raise ValueError(f"{unforced}: made with --behavior {u_cfg.behavior}, not auto")
        runs["unforced"] = Path(unforced)
        configs.append(u_cfg)
    models = {c.model for c in configs}
    if len(models) > 1:
        raise ValueError(f"the runs are of different models ({', '.join(sorted(models))})")
    benches = {c.bench for c in configs}
    if bench is None and len(benches) > 1:
        raise ValueError(f"the runs were made on different benches ({', '.join(sorted(benches))})")
    tasks = {t.id: t for t in load_bench(bench or r_cfg.bench).tasks}
    items, left_out = join_runs(
        tasks,
        load_predictions(reactive),
        load_predictions(proactive),
        load_predictions(unforced) if unforced is not None else None,
    )
    if not items:
        raise ValueError("the runs have no answered (task, seed) in common")
    meta = {
        "model": r_cfg.model,
        "runs": {k: str(v) for k, v in runs.items()},
        "scoring": r_cfg.scoring,
        "left_out": left_out,
    }
    return items, meta


def write_dial_report(
    reactive: str | Path,
    proactive: str | Path,
    out: str | Path,
    *,
    unforced: str | Path | None = None,
    bench: str | Path | None = None,
    steps: int = DEFAULT_STEPS,
) -> dict[str, Path]:
    """Write the dial, forcing and first-token tables, the figure and dial.json into ``out``."""
    if steps < 1:
        raise ValueError("--steps must be at least 1")
    items, meta = load_dial_items(reactive, proactive, unforced, bench=bench)
    full = sweep(items, thresholds(items, steps))
    grid = {round(i / steps, 10) for i in range(steps + 1)}
    table_points = [p for p in full if p["threshold"] in grid or math.isinf(p["threshold"])]
    own = operating_point(items)
    n = {
        "tasks": len(items),
        "controls": own["false_alarm"]["n"],
        "injected": own["miss"]["n"],
    }
    forcing = forcing_rows(items)
    first = first_token_scores(first_tokens(items))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "dial": dial_table(table_points, own, n),
        "forcing": forcing_table(forcing),
        "first_token": first_token_table(first),
    }
    written: dict[str, Path] = {}
    for name, table in tables.items():
        md = out_dir / f"{name}.md"
        md.write_text(table.markdown(), encoding="utf-8")
        table.write_csv(out_dir / f"{name}.csv")
        written[name] = md
    model = meta["model"] if len(meta["model"]) <= 70 else "…" + meta["model"][-69:]
    written["figure"] = dial_png(full, own, out_dir / "dial.png", f"Proactivity dial\n{model}")
    payload = {
        **meta,
        "n": n,
        "sweep": [
            {**p, "threshold": None, "above_max_p": True} if math.isinf(p["threshold"]) else p
            for p in full
        ],
        "operating_point": own,
        "forcing": forcing,
        "first_token": first,
    }
    (out_dir / "dial.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    written["json"] = out_dir / "dial.json"
    return written
