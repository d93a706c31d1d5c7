"""The study on PostgreSQL: runs only when ``BEHAVIORSFT_TEST_POSTGRES_URL`` is set.

Point it at a server where the user may create databases, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` (``.ci/run`` starts
one on loopback); each test makes a fresh database and drops it afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from behaviorsft.study.answers import ValidationValues, save_validation
from behaviorsft.study.app import create_app
from behaviorsft.study.db import Assignment, ValidationAnswer, current_revision, open_db
from behaviorsft.study.export import export_study
from tests.pg import ENV, scratch_database
from tests.study.helpers import seed_study, sign_in
from tests.study.test_app import _option_letters, _queue


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not os.environ.get(ENV):
        pytest.skip(f"{ENV} is not set (a PostgreSQL server URL; .ci/run starts one)")
    pytest.importorskip("psycopg")
    with scratch_database(os.environ[ENV], "bsft_study") as url:
        yield url


def test_study_on_postgres(pg_url: str, tmp_path: Path, study_bench: Path) -> None:
    seeded = seed_study(tmp_path / "pg", pg_url, bench=study_bench)
    engine = open_db(pg_url)
    assert current_revision(engine) == "0001"
    client = TestClient(create_app(pg_url, secret="pg"))
    csrf = sign_in(client, "r1")
    aid = _queue(pg_url, "r1", "validation")[0]
    letter = _option_letters(client.get(f"/a/{aid}").text)[0]
    form = {
        "csrf_token": csrf,
        "answer": letter,
        "confidence": "high",
        "proactivity": "",
        "plausibility": "yes",
    }
    for _ in range(2):
        client.post(f"/a/{aid}", data=form)
    theirs = _queue(pg_url, "r2", "validation")[0]
    assert client.get(f"/a/{theirs}").status_code == 403
    comp = _queue(pg_url, "r1", "comparison")[0]
    client.post(
        f"/a/{comp}",
        data={"csrf_token": csrf, "order": ["C", "B", "A"], "ranked": "1", "likert_B": "4"},
    )
    with Session(engine) as s:
        row = s.get(ValidationAnswer, aid)
        assert row is not None and row.answer == letter and row.proactivity is None
        assert s.scalar(select(func.count()).select_from(ValidationAnswer)) == 1
    summary = export_study(engine, tmp_path / "export")
    assert summary["rows"] == {"validation": 1, "comparison": 3, "agent_key": 36}
    assert seeded.db_url == pg_url
    engine.dispose()


def test_concurrent_saves_on_postgres(pg_url: str, tmp_path: Path, study_bench: Path) -> None:
    """Many threads save every assignment several times: one row each, the last values kept."""
    seed_study(tmp_path / "pg", pg_url, bench=study_bench)
    engine = open_db(pg_url)
    with Session(engine) as s:
        ids = list(s.scalars(select(Assignment.id).where(Assignment.agent_runs.is_(None))))

    def save(job: tuple[int, int]) -> None:
        aid, round_ = job
        save_validation(engine, aid, ValidationValues(confidence="low", note=f"{aid}-{round_}"))

    jobs = [(aid, r) for r in range(3) for aid in ids]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(save, jobs))
    with Session(engine) as s:
        rows = s.scalars(select(ValidationAnswer)).all()
        assert sorted(r.assignment_id for r in rows) == sorted(ids)
        assert all(r.note.startswith(f"{r.assignment_id}-") for r in rows)
    engine.dispose()
