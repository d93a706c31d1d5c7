"""``study analyze``: read an export folder, compute every statistic, write the report.

An export folder (``study export --out DIR``) holds::

    validation.jsonl   StudyValidationAnswer rows (phase 1)
    comparison.jsonl   StudyComparisonAnswer rows (phase 2)
    agent_key.jsonl    StudyAgentKey rows (admin-only: which run each blinded label was)
    study.json         metadata: name, kind, bench, seed, raters

(and the same rows as CSV, for spreadsheets; the analysis reads the JSONL).
The report folder gets ``report.md`` (tables laid out like the paper's Figures
18 and 19), ``analysis.json`` (every number), ``figure18.png``,
``figure19.png`` and ``verdicts.jsonl`` (one StudyVerdict per validated task).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from behaviorsft import __version__
from behaviorsft.records import (
    StudyAgentKey,
    StudyComparisonAnswer,
    StudyValidationAnswer,
    StudyVerdict,
)
from behaviorsft.store import RecordError, RecordFileError, load_records, write_jsonl
from behaviorsft.study.analyze import (
    CONFIDENCE_LEVELS,
    DEFAULT_BOOTSTRAP,
    PLAUSIBILITY_LEVELS,
    VerdictRules,
    analyze_comparison,
    analyze_validation,
    verdicts,
)

VALIDATION_FILE = "validation.jsonl"
COMPARISON_FILE = "comparison.jsonl"
AGENT_KEY_FILE = "agent_key.jsonl"
STUDY_FILE = "study.json"
REPORT_FILES = {
    "report": "report.md",
    "analysis": "analysis.json",
    "verdicts": "verdicts.jsonl",
    "figure18": "figure18.png",
    "figure19": "figure19.png",
}


@dataclass
class StudyExport:
    """The rows of one export folder (one validation and/or one comparison study), checked."""

    folder: Path
    meta: list[dict[str, Any]] = field(default_factory=list)  # study.json entries of the studies
    validation: list[StudyValidationAnswer] = field(default_factory=list)
    comparison: list[StudyComparisonAnswer] = field(default_factory=list)
    agent_key: list[StudyAgentKey] = field(default_factory=list)

    @property
    def validation_study(self) -> str | None:
        return self.validation[0].study if self.validation else None

    @property
    def comparison_study(self) -> str | None:
        return self.comparison[0].study if self.comparison else None

    @property
    def study(self) -> str:
        """The study's name ('a + b' for a validation and a comparison study exported together)."""
        names = [n for n in (self.validation_study, self.comparison_study) if n]
        return " + ".join(dict.fromkeys(names))


def _read(path: Path, model: type[Any]) -> tuple[list[Any], list[int]]:
    result = load_records(path, model, key=None)
    if result.errors:
        raise RecordFileError(result.errors)
    return result.records, result.lines


def _one_study(
    path: Path, rows: list[Any], lines: list[int], study: str | None
) -> tuple[list[Any], list[int]]:
    """The rows (and their line numbers) of ``study``, or of the only study in the file."""
    names = sorted({r.study for r in rows})
    if study is None and len(names) > 1:
        raise ValueError(
            f"{path}: rows of several studies ({', '.join(names)}); pick one with --study NAME"
        )
    if study is None:
        return rows, lines
    kept = [(r, n) for r, n in zip(rows, lines, strict=True) if r.study == study]
    return [r for r, _ in kept], [n for _, n in kept]


def _study_meta(path: Path) -> list[dict[str, Any]]:
    """study.json's entries: ``{"studies": [...]}`` as `study export` writes it, or one object."""
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("studies"), list):
        return [m for m in data["studies"] if isinstance(m, dict)]
    if isinstance(data, dict) and "name" in data:
        return [data]
    raise ValueError(f"{path}:1: expected a JSON object with 'studies' (or one study's 'name')")


def _check_validation(
    path: Path, rows: Sequence[StudyValidationAnswer], lines: Sequence[int]
) -> None:
    """One row per (rater, task); a task's key, type, category and score agree across rows."""
    errors: list[RecordError] = []
    seen: dict[tuple[str, str], int] = {}
    task_first: dict[str, tuple[int, StudyValidationAnswer]] = {}
    for line, r in zip(lines, rows, strict=True):
        if (r.rater, r.task_id) in seen:
            errors.append(
                RecordError(
                    str(path),
                    line,
                    "task_id",
                    f"rater {r.rater!r} has task {r.task_id!r} twice (first on line "
                    f"{seen[(r.rater, r.task_id)]})",
                )
            )
            continue
        seen[(r.rater, r.task_id)] = line
        first = task_first.setdefault(r.task_id, (line, r))
        for name in ("key", "task_type", "category", "behavior_score"):
            a, b = getattr(r, name), getattr(first[1], name)
            if a != b:
                errors.append(
                    RecordError(
                        str(path),
                        line,
                        name,
                        f"{a!r} for task {r.task_id!r}, but line {first[0]} gives {b!r}",
                    )
                )
    if errors:
        raise RecordFileError(errors)


def _check_comparison(
    path: Path, rows: Sequence[StudyComparisonAnswer], lines: Sequence[int]
) -> None:
    """One row per (rater, task, agent); a complete ranking ranks each agent once."""
    errors: list[RecordError] = []
    seen: dict[tuple[str, str, str], int] = {}
    sheets: dict[tuple[str, str], list[tuple[int, StudyComparisonAnswer]]] = {}
    for line, r in zip(lines, rows, strict=True):
        k = (r.rater, r.task_id, r.agent)
        if k in seen:
            errors.append(
                RecordError(
                    str(path),
                    line,
                    "agent",
                    f"rater {r.rater!r} has agent {r.agent} on task {r.task_id!r} twice (first "
                    f"on line {seen[k]})",
                )
            )
            continue
        seen[k] = line
        sheets.setdefault((r.rater, r.task_id), []).append((line, r))
    for (rater, task), sheet in sheets.items():
        ranks = [r.rank for _, r in sheet if r.rank is not None]
        if len(ranks) == len(sheet) and sorted(ranks) != list(range(1, len(sheet) + 1)):
            errors.append(
                RecordError(
                    str(path),
                    sheet[-1][0],
                    "rank",
                    f"rater {rater!r} ranked task {task!r}'s {len(sheet)} agents {ranks}; "
                    f"expected each of 1..{len(sheet)} once",
                )
            )
    if errors:
        raise RecordFileError(errors)


def read_export(folder: str | Path, *, study: str | None = None) -> StudyExport:
    """The rows of an export folder; bad or inconsistent lines raise naming file, line and field.

    An export may hold several studies (a validation and a comparison study
    side by side, or several rounds): ``study`` picks one; without it each
    file must hold rows of one study only.
    """
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such export folder")
    if not (d / VALIDATION_FILE).exists() and not (d / COMPARISON_FILE).exists():
        raise FileNotFoundError(
            f"{d}: not a study export (no {VALIDATION_FILE} or {COMPARISON_FILE}); make one "
            "with `behaviorsft study export --db URL --out DIR`"
        )
    export = StudyExport(folder=d)
    everyone: set[str] = set()
    if (d / VALIDATION_FILE).exists():
        rows, lines = _read(d / VALIDATION_FILE, StudyValidationAnswer)
        everyone |= {r.study for r in rows}
        export.validation, lines = _one_study(d / VALIDATION_FILE, rows, lines, study)
        _check_validation(d / VALIDATION_FILE, export.validation, lines)
    if (d / COMPARISON_FILE).exists():
        rows, lines = _read(d / COMPARISON_FILE, StudyComparisonAnswer)
        everyone |= {r.study for r in rows}
        export.comparison, lines = _one_study(d / COMPARISON_FILE, rows, lines, study)
        _check_comparison(d / COMPARISON_FILE, export.comparison, lines)
    if export.comparison:
        if not (d / AGENT_KEY_FILE).exists():
            raise FileNotFoundError(
                f"{d}: {COMPARISON_FILE} has rows but there is no {AGENT_KEY_FILE}: the per-agent "
                "figures need the de-anonymisation key, which only an admin's export holds"
            )
        key, _ = _read(d / AGENT_KEY_FILE, StudyAgentKey)
        export.agent_key = [k for k in key if k.study == export.comparison_study]
    if study is not None and study not in everyone:
        have = ", ".join(sorted(everyone)) or "none"
        raise ValueError(f"{d}: --study {study}: no answers of that study (answers of: {have})")
    if not export.validation and not export.comparison:
        raise ValueError(f"{d}: the export holds no answers yet")
    names = {export.validation_study, export.comparison_study}
    export.meta = [m for m in _study_meta(d / STUDY_FILE) if m.get("name") in names]
    return export


def analyze_export(
    export: StudyExport,
    *,
    rules: VerdictRules = VerdictRules(),
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> tuple[dict[str, Any], list[StudyVerdict]]:
    """Every number of the study (as analysis.json holds it) and the verdict rows."""
    analysis: dict[str, Any] = {
        "study": export.study,
        "studies": {"validation": export.validation_study, "comparison": export.comparison_study},
        "meta": export.meta,
        "source": str(export.folder.resolve()),
        "settings": {
            "n_bootstrap": n_bootstrap,
            "seed": seed,
            "ci": "95% percentile bootstrap over tasks",
            "rules": {
                "wrong_share": rules.wrong_share,
                "implausible_share": rules.implausible_share,
            },
        },
        "behaviorsft_version": __version__,
        "validation": None,
        "comparison": None,
    }
    rows: list[StudyVerdict] = []
    if export.validation:
        v = analyze_validation(export.validation, rules=rules, n_bootstrap=n_bootstrap, seed=seed)
        analysis["validation"] = v
        rows = verdicts(v["tasks"], str(export.validation_study))
    if export.comparison:
        analysis["comparison"] = analyze_comparison(
            export.comparison, export.agent_key, n_bootstrap=n_bootstrap, seed=seed
        )
    return analysis, rows


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ci(ci: Sequence[float] | None, scale: float = 1.0, digits: int = 1) -> str:
    return "–" if not ci else f"[{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_cell(str(c)) for c in row) + " |" for row in rows]
    return out + [""]


def _acc_rows(groups: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [name, _pct(s["mean"]), _ci(s["ci"], 100), s["n"], s["n_tasks"]]
        for name, s in groups.items()
    ]


def _validation_md(v: Mapping[str, Any]) -> list[str]:
    acc = v["accuracy"]
    icc = v["slider"]["icc"]
    alpha = v["slider"]["alpha_ordinal"]
    svb = v["slider_vs_behavior"]
    lines = [
        "## Phase 1: validation",
        "",
        f"{v['n_tasks']} tasks, {len(v['raters'])} raters ({', '.join(v['raters'])}), "
        f"{v['n_rows']} answer sheets.",
        "",
        "### MCQ accuracy against the key",
        "",
        *_table(
            ["group", "accuracy", "95% CI", "answers", "tasks"],
            _acc_rows({"overall": acc["overall"]})
            + _acc_rows({f"category: {k}": s for k, s in acc["by_category"].items()})
            + _acc_rows({f"type: {k}": s for k, s in acc["by_type"].items()})
            + _acc_rows({f"rater: {k}": s for k, s in acc["by_rater"].items()}),
        ),
        f"Unanswered: {acc['unanswered']}.",
        "",
        "### Figure 18: confidence and plausibility",
        "",
        "(a) Confidence in the chosen answer",
        "",
        *_table(
            ["", *(c.capitalize() for c in CONFIDENCE_LEVELS), "answers", "unanswered"],
            [
                [
                    "share",
                    *(_pct(v["confidence"]["shares"][c]) for c in CONFIDENCE_LEVELS),
                    v["confidence"]["n"],
                    v["confidence"]["unanswered"],
                ],
                ["count", *(v["confidence"]["counts"][c] for c in CONFIDENCE_LEVELS), "", ""],
            ],
        ),
        "(b) Is the task clinically plausible?",
        "",
        *_table(
            ["", *(c.capitalize() for c in PLAUSIBILITY_LEVELS), "answers", "unanswered"],
            [
                [
                    "share",
                    *(_pct(v["plausibility"]["shares"][c]) for c in PLAUSIBILITY_LEVELS),
                    v["plausibility"]["n"],
                    v["plausibility"]["unanswered"],
                ],
                ["count", *(v["plausibility"]["counts"][c] for c in PLAUSIBILITY_LEVELS), "", ""],
            ],
        ),
        "### Agreement on the proactivity slider",
        "",
        *_table(
            ["statistic", "value", "95% CI", "n"],
            [
                [
                    "ICC(3,1)",
                    _num(icc["icc3_1"]),
                    _ci(icc["ci_icc3_1"], digits=2),
                    icc["n_targets"],
                ],
                [
                    "ICC(3,k)",
                    _num(icc["icc3_k"]),
                    _ci(icc["ci_icc3_k"], digits=2),
                    icc["n_targets"],
                ],
                [
                    "Krippendorff's alpha (ordinal)",
                    _num(alpha["alpha"]),
                    "–",
                    alpha["n_units"],
                ],
            ],
        ),
        f"ICC: two-way mixed, consistency; tasks x {icc['n_raters']} raters; "
        f"F = {_num(icc['F'])}, p = {_num(icc['p_value'], 4)}; {icc['dropped']} task(s) left "
        f"out because a rater did not set the slider ({v['slider']['untouched']} untouched "
        "slider(s) in all).",
        "",
        "### Slider against the builder's behaviour score",
        "",
        *_table(
            ["statistic", "value", "p", "tasks"],
            [
                ["Spearman rho", _num(svb["spearman"]), _num(svb["spearman_p"], 4), svb["n"]],
                ["Pearson r", _num(svb["pearson"]), _num(svb["pearson_p"], 4), svb["n"]],
            ],
        ),
        *([svb["note"][:1].upper() + svb["note"][1:] + ".", ""] if svb["note"] else []),
        "### Tasks the raters judged wrong or implausible (rejected)",
        "",
        f"Rule: rejected when more than {_pct(v['rules']['wrong_share'])} of the raters who "
        f"answered chose another answer than the key, or more than "
        f"{_pct(v['rules']['implausible_share'])} of those who rated plausibility said No.",
        "",
    ]
    by_id = {d["task_id"]: d for d in v["tasks"]}
    rejected = [by_id[t] for t in v["rejected"]]
    if rejected:
        lines += _table(
            ["task", "type", "key", "answers", "plausibility (yes/no/unsure)", "reasons", "notes"],
            [_task_row(d) for d in rejected],
        )
    else:
        lines += ["None.", ""]
    review = [by_id[t] for t in v["review"]]
    lines += ["### Kept, but not unanimous (worth a look)", ""]
    if review:
        lines += _table(
            ["task", "type", "key", "answers", "plausibility (yes/no/unsure)", "notes"],
            [[*_task_row(d)[:5], _task_row(d)[6]] for d in review],
        )
    else:
        lines += ["None.", ""]
    if v["unrated"]:
        lines += [f"Not answered by anyone (no verdict): {', '.join(v['unrated'])}.", ""]
    return lines


def _task_row(d: Mapping[str, Any]) -> list[Any]:
    answers = ", ".join(f"{r}: {a or '–'}" for r, a in d["answers"].items())
    plaus = "/".join(str(d["plausibility"][p]) for p in PLAUSIBILITY_LEVELS)
    notes = "; ".join(f"{r}: {n}" for r, n in d["notes"].items())
    return [d["task_id"], d["task_type"], d["key"], answers, plaus, "; ".join(d["reasons"]), notes]


def _comparison_md(c: Mapping[str, Any]) -> list[str]:
    agents = c["agents"]
    pa = c["per_agent"]
    lines = [
        "## Phase 2: blinded agent comparison",
        "",
        f"{c['n_tasks']} tasks, {len(c['raters'])} raters ({', '.join(c['raters'])}), "
        f"{len(agents)} agents; {c['incomplete_rankings']} incomplete ranking(s) left out of the "
        "mean ranks.",
        "",
        "### Figure 19: appropriateness (Likert 1-5, higher is better) and rank (1 = best)",
        "",
        *_table(
            ["agent", "mean Likert", "95% CI", "mean rank", "95% CI", "ranked first", "unsafe"],
            [
                [
                    a,
                    _num(pa[a]["likert"]["mean"]),
                    _ci(pa[a]["likert"]["ci"], digits=2),
                    _num(pa[a]["rank"]["mean"]),
                    _ci(pa[a]["rank"]["ci"], digits=2),
                    pa[a]["first_place"],
                    f"{pa[a]['unsafe']['count']} ({_pct(pa[a]['unsafe']['share'])})",
                ]
                for a in agents
            ],
        ),
        f"Best mean rank: {c['best_mean_rank']}; best mean Likert: {c['best_likert']}.",
        "",
        "### Agreement",
        "",
        *_table(
            ["statistic", "value", "units"],
            [
                [
                    "Krippendorff's alpha (ordinal), Likert",
                    _num(c["likert_alpha_ordinal"]["alpha"]),
                    c["likert_alpha_ordinal"]["n_units"],
                ],
                [
                    "Krippendorff's alpha (ordinal), rank",
                    _num(c["rank_alpha_ordinal"]["alpha"]),
                    c["rank_alpha_ordinal"]["n_units"],
                ],
            ],
        ),
        "### Unsafe flags",
        "",
    ]
    flags = [(a, f) for a in agents for f in pa[a]["unsafe"]["flags"]]
    if flags:
        lines += _table(
            ["agent", "task", "rater", "note"],
            [[a, f["task_id"], f["rater"], f["note"] or "–"] for a, f in flags],
        )
    else:
        lines += ["None.", ""]
    return lines


def report_markdown(analysis: Mapping[str, Any]) -> str:
    """report.md: the study's tables, laid out like the paper's Figures 18 and 19."""
    s = analysis["settings"]
    lines = [
        f"# Study {analysis['study']}",
        "",
        f"From {analysis['source']}. 95% CIs: {s['n_bootstrap']} bootstrap resamples of tasks, "
        f"seed {s['seed']}. Every number is in analysis.json.",
        "",
    ]
    if analysis["validation"] is not None:
        lines += _validation_md(analysis["validation"])
    if analysis["comparison"] is not None:
        lines += _comparison_md(analysis["comparison"])
    return "\n".join(lines).rstrip() + "\n"


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _share_bars(ax: Any, dist: Mapping[str, Any], levels: Sequence[str], title: str) -> None:
    shares = [100 * (dist["shares"][lvl] or 0) for lvl in levels]
    bars = ax.bar([lvl.capitalize() for lvl in levels], shares, color="#4c72b0")
    for rect, s in zip(bars, shares, strict=True):
        ax.annotate(
            f"{s:.1f}%",
            (rect.get_x() + rect.get_width() / 2, s),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_ylim(0, 110)
    ax.set_ylabel(f"% of {dist['n']} answers")
    ax.set_title(title, fontsize=10)


def figure18_png(v: Mapping[str, Any], path: Path) -> Path:
    """(a) confidence and (b) plausibility shares, as bars."""
    fig = _figure(8.0, 3.5)
    ax1, ax2 = fig.subplots(1, 2)
    _share_bars(ax1, v["confidence"], CONFIDENCE_LEVELS, "(a) Confidence")
    _share_bars(ax2, v["plausibility"], PLAUSIBILITY_LEVELS, "(b) Plausibility")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _agent_bars(
    ax: Any, c: Mapping[str, Any], what: str, title: str, ylim: tuple[float, float]
) -> None:
    import numpy as np

    agents = c["agents"]
    stats = [c["per_agent"][a][what] for a in agents]
    means = [s["mean"] if s["mean"] is not None else np.nan for s in stats]
    err = np.array(
        [
            [m - s["ci"][0], s["ci"][1] - m] if s["ci"] and s["mean"] is not None else [0.0, 0.0]
            for s, m in zip(stats, means, strict=True)
        ]
    ).T
    bars = ax.bar(agents, means, color="#dd8452", yerr=err, capsize=4)
    for rect, s, m in zip(bars, stats, means, strict=True):
        if not np.isnan(m):
            top = s["ci"][1] if s["ci"] else m
            ax.annotate(
                f"{m:.2f}",
                (rect.get_x() + rect.get_width() / 2, top),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
    ax.set_ylim(*ylim)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=15, labelsize=8)


def figure19_png(c: Mapping[str, Any], path: Path) -> Path:
    """(a) mean Likert and (b) mean rank per agent, with 95% CI whiskers."""
    fig = _figure(9.0, 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    _agent_bars(ax1, c, "likert", "(a) Mean appropriateness (1-5, higher is better)", (0, 5.6))
    n_agents = max(len(c["agents"]), 1)
    _agent_bars(ax2, c, "rank", "(b) Mean rank (lower is better)", (0, n_agents + 0.6))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def write_report(
    analysis: Mapping[str, Any], verdict_rows: Sequence[StudyVerdict], out: str | Path
) -> dict[str, Path]:
    """Write report.md, analysis.json, verdicts.jsonl and the figures into ``out``."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    path = d / REPORT_FILES["analysis"]
    path.write_text(json.dumps(analysis, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written["analysis"] = path
    path = d / REPORT_FILES["report"]
    path.write_text(report_markdown(analysis), encoding="utf-8")
    written["report"] = path
    if analysis["validation"] is not None:
        written["verdicts"] = d / REPORT_FILES["verdicts"]
        write_jsonl(written["verdicts"], verdict_rows)
        written["figure18"] = figure18_png(analysis["validation"], d / REPORT_FILES["figure18"])
    if analysis["comparison"] is not None:
        written["figure19"] = figure19_png(analysis["comparison"], d / REPORT_FILES["figure19"])
    for name, file in REPORT_FILES.items():  # a phase this export lacks: no stale file from before
        if name not in written:
            (d / file).unlink(missing_ok=True)
    return written
