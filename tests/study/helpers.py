"""Build a tiny bench, generation runs and a ready-to-use study (for API and browser tests).

``seed_study(workdir, db_url)`` gives a database with an admin (password),
three raters (passwords, plus one unused one-time link each), a validation
study (6 tasks) and a comparison study (4 tasks, 3 runs) over a 6-case
synthetic bench; ``with_script=True`` adds a study whose text holds ``<script>``. Browser tests can
start ``create_app(db_url)`` under uvicorn and sign in with these names.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from behaviorsft.bench import load_bench
from behaviorsft.cli import app as cli_app
from behaviorsft.records import Prediction
from behaviorsft.study.create import create_comparison, create_validation
from behaviorsft.study.db import open_db
from behaviorsft.study.users import add_user

PASSWORD = "correct horse battery"
RATERS = ("r1", "r2", "r3")
ADMIN = "admin"
SCRIPT = "<script>alert('x')</script>"
SCRIPT_RATER = "x1"
RUN_NAMES = ("behaviorsft-run", "generalsft-run", "zs-explicit-run")


def build_bench(folder: Path, n_cases: int = 6, seed: int = 0) -> Path:
    """``cases synth`` + ``build`` into ``folder/bench`` (about 18 tasks per case)."""
    runner = CliRunner()
    cases = folder / "cases.jsonl"
    bench = folder / "bench"
    for args in (
        ["cases", "synth", "--n", str(n_cases), "--seed", str(seed), "--out", str(cases)],
        ["build", "--cases", str(cases), "--out", str(bench), "--workers", "1"],
    ):
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 0, result.output
    return bench


def script_bench(bench: Path, out: Path) -> Path:
    """A copy of one case of ``bench`` whose text all carries a ``<script>`` tag."""
    out.mkdir(parents=True, exist_ok=True)
    tasks = [json.loads(x) for x in (bench / "tasks.jsonl").read_text().splitlines()]
    case_id = tasks[0]["case_id"]
    kept = []
    for t in tasks:
        if t["case_id"] != case_id:
            continue
        t["question"] = f"{t['question']} {SCRIPT}"
        t["options"][0]["text"] = f"{t['options'][0]['text']} {SCRIPT}"
        kept.append(t)
    (out / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in kept))
    for name, edit in (("conversations.jsonl", "turns"), ("cases.jsonl", "presentation")):
        rows = []
        for line in (bench / name).read_text().splitlines():
            row = json.loads(line)
            if row.get("case_id", row.get("id")) != case_id:
                continue
            if edit == "turns":
                row["turns"][0]["text"] = f"{row['turns'][0]['text']} {SCRIPT}"
            else:
                row["presentation"] = f"{row['presentation']} {SCRIPT}"
            rows.append(row)
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    shutil.copy(bench / "manifest.json", out / "manifest.json")
    return out


def make_run(
    bench: Path,
    out: Path,
    label: str,
    *,
    fail: set[str] = frozenset(),  # type: ignore[assignment]
    missing: set[str] = frozenset(),  # type: ignore[assignment]
    extra_text: str = "",
) -> Path:
    """A generation RUN folder answering every task (``fail``: error rows; ``missing``: none)."""
    out.mkdir(parents=True, exist_ok=True)
    # Replies must not name the run: the blinding test looks for run names in every page.
    style = sum(map(ord, label)) % 97
    rows = []
    for task in load_bench(bench).tasks:
        if task.id in missing:
            continue
        if task.id in fail:
            pred = Prediction(
                task_id=task.id, model=f"hf/{label}", strategy="zero_shot", error="timeout"
            )
        else:
            pred = Prediction(
                task_id=task.id,
                model=f"hf/{label}",
                strategy="zero_shot",
                raw_output=f"<proactive> The best option is {task.answer}. "
                f"Reply style {style}.{extra_text}",
                parsed_answer=task.answer,
                valid=True,
                correct=True,
            )
        rows.append(pred.model_dump_json() + "\n")
    (out / "predictions.jsonl").write_text("".join(rows))
    (out / "config.json").write_text(
        json.dumps({"bench": str(bench), "model": f"hf/{label}", "scoring": "generate"})
    )
    return out


@dataclass
class SeededStudy:
    """What ``seed_study`` made: the database URL, names and the one-time links."""

    db_url: str
    bench: Path
    runs: list[Path]
    password: str = PASSWORD
    admin: str = ADMIN
    raters: tuple[str, ...] = RATERS
    tokens: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, Any] = field(default_factory=dict)


def seed_study(
    workdir: Path,
    db_url: str | None = None,
    *,
    bench: Path | None = None,
    n_validation: int = 6,
    n_comparison: int = 4,
    seed: int = 7,
    with_script: bool = False,
) -> SeededStudy:
    """A database with users, a validation and a comparison study (see the module docstring).

    ``with_script`` adds rater ``x1`` (same password) with a validation study
    named ``escaping`` whose case text, questions and options all carry
    :data:`SCRIPT` (for the escaping checks in a browser).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    bench = bench or build_bench(workdir)
    db_url = db_url or f"sqlite:///{workdir / 'study.db'}"
    engine = open_db(db_url)
    tokens = {}
    add_user(engine, ADMIN, admin=True, password=PASSWORD)
    for name in RATERS:
        add_user(engine, name, password=PASSWORD)
        _, token = add_user(engine, name)
        assert token is not None
        tokens[name] = token
    runs = [make_run(bench, workdir / "runs" / name, name) for name in RUN_NAMES]
    summaries = {
        "validation": create_validation(engine, bench, n=n_validation, seed=seed, raters=RATERS),
        "comparison": create_comparison(
            engine, bench, [str(r) for r in runs], n=n_comparison, seed=seed, raters=RATERS
        ),
    }
    if with_script:
        add_user(engine, SCRIPT_RATER, password=PASSWORD)
        summaries["escaping"] = create_validation(
            engine,
            script_bench(bench, workdir / "script-bench"),
            n=3,
            seed=seed,
            raters=[SCRIPT_RATER],
            name="escaping",
        )
    engine.dispose()
    return SeededStudy(db_url=db_url, bench=bench, runs=runs, tokens=tokens, summaries=summaries)


def csrf_of(html: str) -> str:
    """The CSRF token in a page's first form."""
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign ``client`` in with a password; returns the session's CSRF token."""
    page = client.get("/login")
    resp = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    home = client.get("/")
    return csrf_of(home.text)
