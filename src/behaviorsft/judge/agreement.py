"""How well the judge agrees with human ratings: Spearman and Kendall per criterion.

Human ratings file (CSV with a header row, or JSONL with one object per line):

==================  ========  ==================================================
field               required  meaning
==================  ========  ==================================================
``criterion``       yes       one of the six criteria, e.g. ``safety``
``rating``          yes       the human's score on the judge's 1-5 scale
``prediction_id``   one of    the rated answer, e.g. ``t-17@0`` (as in predictions.jsonl)
``task_id``         the two   or the rated task: compared with the judge's mean over
                              that task's answers (all seeds) in the run
``run``             see note  the judged run: its name under JUDGED/runs/ or its label;
                              required when the JUDGED folder holds several runs
``rater``           no        who rated; several raters' ratings of one item are averaged
==================  ========  ==================================================

Every bad row is reported as ``file:line: field: problem`` before anything is
computed. Rows whose item has no scored judgement are counted as unmatched.

Statistics, per criterion, over items (one judge score, one mean human rating):
Spearman's rho and Kendall's tau-b with their two-sided p-values
(``scipy.stats.spearmanr``, ``scipy.stats.kendalltau``), the number of items,
and the mean absolute difference on the [0, 1] scale.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behaviorsft.judge.aggregate import JudgedRun, load_judged_runs
from behaviorsft.judge.criteria import SCORE_MAX, SCORE_MIN, normalise
from behaviorsft.records import Criterion

FIELDS = ("criterion", "rating", "prediction_id", "task_id", "run", "rater")


class RatingsFileError(ValueError):
    """Bad rows of a human ratings file, each as 'file:line: field: problem'."""

    def __init__(self, problems: Sequence[str]) -> None:
        shown = list(problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__("invalid human ratings:\n" + "\n".join(shown) + more)
        self.problems = list(problems)


@dataclass(frozen=True)
class HumanRating:
    """One row of a human ratings file."""

    where: str  # 'file:line'
    criterion: Criterion
    rating: float
    prediction_id: str | None
    task_id: str | None
    run: str | None
    rater: str | None


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs of a CSV or JSONL file."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        rows: list[tuple[int, dict[str, Any]]] = []
        problems = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{path}:{n}: not valid JSON ({e.msg})")
                continue
            if not isinstance(obj, dict):
                problems.append(f"{path}:{n}: expected a JSON object with the rating's fields")
                continue
            rows.append((n, obj))
        if problems:
            raise RatingsFileError(problems)
        return rows
    if path.suffix.lower() not in (".csv", ".tsv"):
        raise ValueError(f"{path}: give a .csv (with a header row) or a .jsonl file")
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix == ".tsv" else ",")
    if reader.fieldnames is None:
        raise RatingsFileError([f"{path}:1: the file is empty; expected a header row"])
    missing = [f for f in ("criterion", "rating") if f not in reader.fieldnames]
    if missing:
        raise RatingsFileError(
            [f"{path}:1: header: missing column(s) {missing}; columns are {', '.join(FIELDS)}"]
        )
    out = []
    for row in reader:
        out.append((reader.line_num, {k: v for k, v in row.items() if k is not None}))
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def read_ratings(path: str | Path) -> list[HumanRating]:
    """Every rating of a human ratings file; all bad rows are reported together."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such human ratings file")
    ratings: list[HumanRating] = []
    problems: list[str] = []
    valid = ", ".join(c.value for c in Criterion)
    for line, row in _rows(p):
        where = f"{p}:{line}"
        unknown = sorted(k for k in row if k not in FIELDS)
        if unknown:
            problems.append(f"{where}: {unknown[0]}: unknown field; fields are {', '.join(FIELDS)}")
            continue
        crit_text = _text(row.get("criterion"))
        try:
            crit = Criterion((crit_text or "").lower())
        except ValueError:
            problems.append(f"{where}: criterion: {crit_text!r} is not one of {valid}")
            continue
        raw = row.get("rating")
        try:
            rating = float(raw) if not isinstance(raw, bool) and raw not in (None, "") else None
        except (TypeError, ValueError):
            rating = None
        if rating is None or not math.isfinite(rating):
            problems.append(f"{where}: rating: {raw!r} is not a number")
            continue
        if not SCORE_MIN <= rating <= SCORE_MAX:
            problems.append(f"{where}: rating: {rating:g} is outside {SCORE_MIN}-{SCORE_MAX}")
            continue
        pid, tid = _text(row.get("prediction_id")), _text(row.get("task_id"))
        if pid is None and tid is None:
            problems.append(f"{where}: prediction_id: give prediction_id or task_id")
            continue
        ratings.append(
            HumanRating(
                where,
                crit,
                rating,
                pid,
                tid,
                _text(row.get("run")),
                _text(row.get("rater")),
            )
        )
    if problems:
        raise RatingsFileError(problems)
    if not ratings:
        raise RatingsFileError([f"{p}: no ratings in the file"])
    return ratings


# --------------------------------------------------------------------------
# Matching and statistics
# --------------------------------------------------------------------------


def _resolve_run(r: HumanRating, runs: Sequence[JudgedRun], problems: list[str]) -> str | None:
    if r.run is None:
        if len(runs) == 1:
            return runs[0].name
        names = ", ".join(x.name for x in runs)
        problems.append(
            f"{r.where}: run: the judged folder holds several runs ({names}); say which"
        )
        return None
    for x in runs:
        if r.run in (x.name, x.label):
            return x.name
    names = ", ".join(f"{x.name} ({x.label})" for x in runs)
    problems.append(f"{r.where}: run: {r.run!r} is not a judged run; runs are {names}")
    return None


@dataclass
class Pair:
    """One rated item: the judge's score and the mean human rating, both on [0, 1]."""

    run: str
    item: str  # prediction id, or 'task:<task id>'
    judge: float
    human: float
    n_ratings: int


def match(
    ratings: Sequence[HumanRating], runs: Sequence[JudgedRun]
) -> tuple[dict[Criterion, list[Pair]], dict[Criterion, list[str]]]:
    """Pair each rated item with its judge score.

    Returns (pairs, unmatched) per criterion; ``unmatched`` lists the items
    that have human ratings but no scored judgement.
    """
    problems: list[str] = []
    human: dict[tuple[Criterion, str, str], list[float]] = defaultdict(list)
    for r in ratings:
        run = _resolve_run(r, runs, problems)
        if run is None:
            continue
        item = r.prediction_id if r.prediction_id is not None else f"task:{r.task_id}"
        human[(r.criterion, run, item)].append(r.rating)
    if problems:
        raise RatingsFileError(problems)
    by_pred: dict[tuple[Criterion, str, str], float] = {}
    by_task: dict[tuple[Criterion, str, str], list[float]] = defaultdict(list)
    for judged in runs:
        for j in judged.judgements:
            if j.score is None:
                continue
            by_pred[(j.criterion, judged.name, j.prediction_id)] = j.score
            by_task[(j.criterion, judged.name, f"task:{j.task_id}")].append(j.score)
    pairs: dict[Criterion, list[Pair]] = defaultdict(list)
    unmatched: dict[Criterion, list[str]] = defaultdict(list)
    for (crit, run_name, item), values in sorted(human.items(), key=lambda kv: str(kv[0])):
        key = (crit, run_name, item)
        if key in by_pred:
            judge = by_pred[key]
        elif key in by_task:
            judge = sum(by_task[key]) / len(by_task[key])
        else:
            unmatched[crit].append(f"{run_name}/{item}")
            continue
        mean_h = sum(values) / len(values)
        pairs[crit].append(Pair(run_name, item, judge, normalise(mean_h), len(values)))
    return dict(pairs), dict(unmatched)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def correlation(judge: Sequence[float], human: Sequence[float]) -> dict[str, Any]:
    """Spearman's rho and Kendall's tau-b (two-sided p-values) of paired scores.

    Undefined (None, with a note) for fewer than 3 pairs or when either side
    is constant.
    """
    from scipy.stats import kendalltau, spearmanr

    n = len(judge)
    out: dict[str, Any] = {
        "n": n,
        "spearman": None,
        "spearman_p": None,
        "kendall_tau_b": None,
        "kendall_p": None,
        "mean_abs_diff": sum(abs(a - b) for a, b in zip(judge, human, strict=True)) / n
        if n
        else None,
        "mean_judge": sum(judge) / n if n else None,
        "mean_human": sum(human) / n if n else None,
        "note": "",
    }
    if n < 3:
        out["note"] = "fewer than 3 rated items"
        return out
    if len(set(judge)) < 2 or len(set(human)) < 2:
        out["note"] = "undefined: the judge's or the humans' scores are all equal"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = spearmanr(judge, human)
        tau = kendalltau(judge, human)
    out["spearman"] = _finite(rho.statistic)
    out["spearman_p"] = _finite(rho.pvalue)
    out["kendall_tau_b"] = _finite(tau.statistic)
    out["kendall_p"] = _finite(tau.pvalue)
    return out


def agreement(ratings: Sequence[HumanRating], runs: Sequence[JudgedRun]) -> dict[str, Any]:
    """Per-criterion agreement between the judge and the human ratings."""
    pairs, unmatched = match(ratings, runs)
    crits = [c for c in Criterion if c in pairs or c in unmatched]
    per: dict[str, Any] = {}
    for c in crits:
        ps = pairs.get(c, [])
        stats = correlation([p.judge for p in ps], [p.human for p in ps])
        stats["ratings"] = sum(p.n_ratings for p in ps)
        stats["unmatched"] = len(unmatched.get(c, []))
        stats["unmatched_examples"] = unmatched.get(c, [])[:5]
        per[c.value] = stats
    return {
        "criteria": per,
        "raters": sorted({r.rater for r in ratings if r.rater}),
        "ratings": len(ratings),
        "method": "items = rated answers (or tasks); human ratings of an item averaged over "
        "raters; Spearman rho and Kendall tau-b from scipy.stats, two-sided p-values",
    }


def _cell(x: Any, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


def agreement_markdown(result: Mapping[str, Any]) -> str:
    """The agreement table as Markdown."""
    lines = [
        "# Judge agreement with human ratings",
        "",
        "| criterion | n | Spearman rho (p) | Kendall tau-b (p) | mean abs. diff. | unmatched "
        "| note |",
        "|---|---|---|---|---|---|---|",
    ]
    for crit, s in result["criteria"].items():
        lines.append(
            f"| {crit} | {s['n']} | {_cell(s['spearman'])} ({_cell(s['spearman_p'], '.3g')}) | "
            f"{_cell(s['kendall_tau_b'])} ({_cell(s['kendall_p'], '.3g')}) | "
            f"{_cell(s['mean_abs_diff'])} | {s['unmatched']} | {s['note']} |"
        )
    raters = ", ".join(result["raters"]) or "not given"
    lines += ["", f"{result['ratings']} ratings; raters: {raters}.", ""]
    return "\n".join(lines)


def write_agreement(
    judged: Sequence[str | Path], human: str | Path, out: str | Path
) -> dict[str, Path]:
    """Compare the judged runs with a human ratings file; write agreement.json and .md."""
    ratings = read_ratings(human)
    runs = load_judged_runs(judged)
    result = agreement(ratings, runs)
    result["human_file"] = str(Path(human).resolve())
    result["judged"] = [str(Path(j).resolve()) for j in judged]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "agreement.json"
    js.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    md = out_dir / "agreement.md"
    md.write_text(agreement_markdown(result), encoding="utf-8")
    return {"json": js, "markdown": md}
