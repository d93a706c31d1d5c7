"""The audit on PostgreSQL (optional): skipped unless a server is reachable.

Point ``BEHAVIORSFT_TEST_POSTGRES_URL`` at a server where the user may create
databases (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``);
the test makes a fresh database and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from behaviorsft.serve.db import AppendOnlyError, Feedback, HookCall, make_engine
from behaviorsft.serve.report import write_report
from tests.pg import ENV, scratch_database

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    pytest.importorskip("psycopg")
    url = os.environ.get(ENV, DEFAULT_URL)
    with ExitStack() as stack:
        try:
            db_url = stack.enter_context(scratch_database(url, "bsft_test", connect_timeout=2))
        except Exception as exc:
            pytest.skip(f"no PostgreSQL server reachable at {url}: {exc}")
        yield db_url


def test_audit_is_append_only_on_postgres(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    make_engine(pg_url)  # a second start finds the tables and triggers in place
    now = datetime.now(timezone.utc)
    with Session(engine) as s, s.begin():
        s.add(
            HookCall(
                hook_instance="h1",
                created_at=now,
                service_id="order-sign-safety",
                hook="order-sign",
                patient_hash="a" * 64,
                model="hf/m",
                adapter=None,
                model_version="0",
                prompt_hash="p" * 64,
                p_proactive=0.8,
                threshold=0.5,
                force="none",
                decision="card",
                card_uuid=str(uuid.uuid4()),
                indicator="warning",
                summary="s",
                latency_ms=12.0,
                error=None,
                record_json=None,
            )
        )
    with Session(engine) as s:
        card = s.scalars(select(HookCall.card_uuid)).one()
    with Session(engine) as s, s.begin():
        s.add(
            Feedback(
                dedupe_key="k",
                card_uuid=card,
                service_id="order-sign-safety",
                outcome="overridden",
                accepted_suggestions=[],
                override_code="not-relevant",
                override_display="Not relevant to this patient",
                outcome_timestamp=now,
                received_at=now,
            )
        )
    with Session(engine) as s:
        s.scalars(select(HookCall)).one().decision = "restraint"
        with pytest.raises(AppendOnlyError):
            s.commit()
    for sql in ("UPDATE hook_calls SET decision = 'x'", "DELETE FROM feedback"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Feedback)) == 1
    summary = write_report(engine, tmp_path / "report")
    assert summary["cards"] == 1 and summary["feedback"]["overridden"] == 1
    engine.dispose()
