"""`study export`: the long-format rows are what was saved; the agent key is apart and 0600."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from behaviorsft.cli import app as cli_app
from behaviorsft.records import StudyAgentKey, StudyComparisonAnswer, StudyValidationAnswer
from behaviorsft.study.app import create_app
from behaviorsft.study.db import open_db
from behaviorsft.study.export import export_rows, export_study
from tests.study.helpers import RUN_NAMES, SeededStudy, sign_in
from tests.study.test_app import _option_letters, _queue


def _save_some(seeded: SeededStudy) -> dict[str, object]:
    """r1 answers two validation tasks (one partly) and one comparison task."""
    client = TestClient(create_app(seeded.db_url, secret="s"))
    csrf = sign_in(client, "r1")
    val = _queue(seeded.db_url, "r1", "validation")
    letters = _option_letters(client.get(f"/a/{val[0]}").text)
    client.post(
        f"/a/{val[0]}",
        data={
            "csrf_token": csrf,
            "answer": letters[1],
            "confidence": "high",
            "proactivity": "0.7",
            "plausibility": "yes",
            "note": 'comma, "quote"\nnew line',
        },
    )
    client.post(f"/a/{val[1]}", data={"csrf_token": csrf, "confidence": "low"})
    comp = _queue(seeded.db_url, "r1", "comparison")
    client.post(
        f"/a/{comp[0]}",
        data={
            "csrf_token": csrf,
            "order": ["B", "C", "A"],
            "ranked": "1",
            "likert_A": "1",
            "likert_B": "5",
            "likert_C": "4",
            "unsafe_A": "1",
            "unsafe_note_A": "wrong dose",
        },
    )
    return {"letter": letters[1]}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_export_rows_match_what_was_saved(seeded: SeededStudy, tmp_path: Path) -> None:
    saved = _save_some(seeded)
    out = tmp_path / "export"
    summary = export_study(open_db(seeded.db_url), out)
    val = [
        StudyValidationAnswer.model_validate_json(x)
        for x in (out / "validation.jsonl").read_text().splitlines()
    ]
    assert [(r.rater, r.position) for r in val] == [("r1", 1), ("r1", 2)]
    first, second = val
    assert first.answer == saved["letter"] and first.confidence == "high"
    assert first.proactivity == 0.7 and first.plausibility == "yes"
    assert first.correct == (first.answer == first.key)
    assert first.note == 'comma, "quote"\nnew line' and first.saved_at is not None
    assert (second.answer, second.correct, second.proactivity, second.confidence) == (
        None,
        None,
        None,
        "low",
    )
    rows = _csv(out / "validation.csv")
    assert list(rows[0]) == list(StudyValidationAnswer.model_fields)
    assert rows[0]["note"] == first.note and rows[0]["proactivity"] == "0.7"
    assert rows[1]["proactivity"] == "" and rows[1]["answer"] == ""
    assert rows[0]["correct"] in ("true", "false")

    comp = [
        StudyComparisonAnswer.model_validate_json(x)
        for x in (out / "comparison.jsonl").read_text().splitlines()
    ]
    assert [(r.agent, r.position, r.rank, r.likert, r.unsafe) for r in comp] == [
        ("A", 1, 3, 1, True),
        ("B", 2, 1, 5, False),
        ("C", 3, 2, 4, False),
    ]
    assert comp[0].unsafe_note == "wrong dose"
    assert len(_csv(out / "comparison.csv")) == 3

    keys = [
        StudyAgentKey.model_validate_json(x)
        for x in (out / "agent_key.jsonl").read_text().splitlines()
    ]
    assert len(keys) == 3 * 4 * 3  # raters x tasks x agents, answered or not
    assert {k.run for k in keys} == set(RUN_NAMES)
    mine = {(k.agent): k.run for k in keys if k.rater == "r1" and k.task_id == comp[0].task_id}
    assert sorted(mine) == ["A", "B", "C"] and sorted(mine.values()) == sorted(RUN_NAMES)

    assert summary["rows"] == {"validation": 2, "comparison": 3, "agent_key": 36}
    # The same rows in memory, for `study analyze --db`.
    in_memory = export_rows(open_db(seeded.db_url))
    assert (in_memory.validation, in_memory.comparison, in_memory.agent_key) == (val, comp, keys)
    meta = json.loads((out / "study.json").read_text())
    assert [s["name"] for s in meta["studies"]] == ["validation", "comparison"]
    assert meta["studies"][0]["raters"] == ["r1", "r2", "r3"] and meta["studies"][0]["n_tasks"] == 6
    # Only the key names the runs.
    for name in (
        "validation.csv",
        "validation.jsonl",
        "comparison.csv",
        "comparison.jsonl",
        "study.json",
    ):
        text = (out / name).read_text()
        assert not any(run in text for run in RUN_NAMES), name


def test_agent_key_is_owner_only_and_exports_are_stable(
    seeded: SeededStudy, tmp_path: Path
) -> None:
    _save_some(seeded)
    out = tmp_path / "export"
    engine = open_db(seeded.db_url)
    export_study(engine, out)
    for ext in ("csv", "jsonl"):
        assert stat.S_IMODE((out / f"agent_key.{ext}").stat().st_mode) == 0o600
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "agent_key.csv").chmod(0o644)  # even over a loosened old file
    export_study(engine, out)
    assert stat.S_IMODE((out / "agent_key.csv").stat().st_mode) == 0o600
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_cli_export(seeded: SeededStudy, tmp_path: Path) -> None:
    _save_some(seeded)
    runner = CliRunner()
    out = tmp_path / "cli-export"
    result = runner.invoke(cli_app, ["study", "export", "--db", seeded.db_url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 validation rows, 3 comparison rows, 36 agent-key rows" in result.output
    only = runner.invoke(
        cli_app,
        [
            "study",
            "export",
            "--db",
            seeded.db_url,
            "--out",
            str(tmp_path / "o"),
            "--study",
            "comparison",
        ],
    )
    assert only.exit_code == 0 and "0 validation rows, 3 comparison rows" in only.output
    unknown = runner.invoke(
        cli_app,
        ["study", "export", "--db", seeded.db_url, "--out", str(tmp_path / "u"), "--study", "nope"],
    )
    assert unknown.exit_code == 2 and "--study nope: no such study" in unknown.output
    missing = runner.invoke(
        cli_app,
        [
            "study",
            "export",
            "--db",
            f"sqlite:///{tmp_path / 'none.db'}",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert missing.exit_code == 2 and "no such database file" in missing.output
