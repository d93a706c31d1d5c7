"""The web app's database -> `study export` -> `study analyze` -> `study apply`, end to end.

Runs once the study web app (behaviorsft.study.export, the [web] extra) is present.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("behaviorsft.study.export")


def test_database_to_verdicts(tmp_path: Path) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from behaviorsft.cli import app as cli_app
    from behaviorsft.cli_study_analyze import study_group
    from behaviorsft.records import StudyValidationAnswer
    from behaviorsft.store import read_jsonl
    from behaviorsft.study.answers import (
        AgentValues,
        ComparisonValues,
        ValidationValues,
        labels_of,
        save_comparison,
        save_validation,
    )
    from behaviorsft.study.db import Assignment, Study, open_db
    from behaviorsft.study.verdicts import VERDICTS_FILE, read_verdicts
    from tests.study.helpers import seed_study

    seeded = seed_study(tmp_path / "seed", n_validation=6, n_comparison=3)
    engine = open_db(seeded.db_url)
    rng = random.Random(0)
    with Session(engine) as s:
        for a in s.scalars(select(Assignment)):
            if s.get(Study, a.study_id).kind == "validation":
                values = ValidationValues(
                    answer=rng.choice("ABCD"),
                    confidence=rng.choice(["low", "moderate", "high"]),
                    proactivity=round(rng.random(), 2),
                    plausibility=rng.choice(["yes", "no", "unsure"]),
                    note="",
                )
                save_validation(engine, a.id, values)
            else:
                labels = labels_of(a)
                ranks = rng.sample(range(1, len(labels) + 1), len(labels))
                agents = {
                    label: AgentValues(rank=r, likert=rng.randint(1, 5))
                    for label, r in zip(labels, ranks, strict=True)
                }
                save_comparison(engine, a.id, ComparisonValues(agents=agents))
    engine.dispose()

    app = study_group()
    runner = CliRunner()
    out = tmp_path / "report"
    res = runner.invoke(app, ["analyze", "--db", seeded.db_url, "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "analysis.json").read_text())
    v, c = data["validation"], data["comparison"]
    assert v["n_tasks"] == 6 and v["raters"] == list(seeded.raters)
    assert c["agents"] == sorted(Path(r).name for r in seeded.runs)  # de-anonymised
    # the report's accuracy is the share of exported answers equal to the key
    export = tmp_path / "export"
    res = runner.invoke(cli_app, ["study", "export", "--db", seeded.db_url, "--out", str(export)])
    assert res.exit_code == 0, res.output
    rows = read_jsonl(export / "validation.jsonl", StudyValidationAnswer, key=None)
    assert v["accuracy"]["overall"]["mean"] == pytest.approx(
        sum(r.answer == r.key for r in rows) / len(rows)
    )

    res = runner.invoke(app, ["apply", str(out), "--bench", str(seeded.bench)])
    assert res.exit_code == 0, res.output
    assert len(read_verdicts(seeded.bench / VERDICTS_FILE)) == 6
