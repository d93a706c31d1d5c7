"""The audit trail: two append-only tables, one row per hook call and per feedback.

Append-only is enforced twice: in code (the ORM session refuses to flush an
update or delete of an audit row, and bulk UPDATE/DELETE statements against
these tables are refused before they run), and in the database (SQLite and
PostgreSQL triggers that abort any UPDATE or DELETE), so a second program
writing to the same database cannot rewrite history either.

Each hook call is written in one transaction after its response is built and
before it is returned: a call whose row did not commit was never answered
with a card, and a process killed mid-call leaves no partial row.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

AUDIT_TABLES = ("hook_calls", "feedback")


class AppendOnlyError(RuntimeError):
    """Something tried to change or remove an audit row."""


class Base(DeclarativeBase):
    pass


class HookCall(Base):
    """One CDS Hooks call and what the service decided."""

    __tablename__ = "hook_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hook_instance: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    service_id: Mapped[str] = mapped_column(String(64), index=True)
    hook: Mapped[str] = mapped_column(String(64))
    patient_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(512))
    adapter: Mapped[str | None] = mapped_column(String(512))
    model_version: Mapped[str] = mapped_column(String(64))
    prompt_hash: Mapped[str | None] = mapped_column(String(64))
    p_proactive: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    force: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(16))  # card | restraint | error
    card_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)
    indicator: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(String(140))
    suggestion_uuids: Mapped[list[str] | None] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    record_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Feedback(Base):
    """One feedback item the EHR posted about a card."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The same card and the same feedback twice is one row (idempotent POST).
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    card_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("hook_calls.card_uuid"), index=True
    )
    service_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # accepted | overridden
    accepted_suggestions: Mapped[list[str]] = mapped_column(JSON)
    override_code: Mapped[str | None] = mapped_column(String(128))
    override_display: Mapped[str | None] = mapped_column(String(256))
    outcome_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, 'audit table {table} is append-only'); END"
    for table in AUDIT_TABLES
    for op in ("UPDATE", "DELETE")
]
_POSTGRES_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION behaviorsft_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit table % is append-only', TG_TABLE_NAME; END; "
    "$$ LANGUAGE plpgsql",
    *[
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = "
        f"'{table}_append_only') THEN CREATE TRIGGER {table}_append_only BEFORE UPDATE OR "
        f"DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION behaviorsft_append_only(); "
        f"END IF; END $$"
        for table in AUDIT_TABLES
    ],
]


def _refuse_changes(session: Session, _flush_context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, (HookCall, Feedback)) and (
            obj in session.deleted or session.is_modified(obj)
        ):
            raise AppendOnlyError(f"audit table {obj.__tablename__} is append-only")


def _refuse_bulk(state: Any) -> None:
    if state.is_update or state.is_delete:
        tables = {m.class_.__tablename__ for m in state.all_mappers}
        if tables & set(AUDIT_TABLES):
            raise AppendOnlyError(f"audit tables {sorted(tables)} are append-only")


event.listen(Session, "before_flush", _refuse_changes)
event.listen(Session, "do_orm_execute", _refuse_bulk)


def open_engine(url: str) -> Engine:
    """An engine for ``url`` (no tables made); also used by ``behaviorsft study``.

    SQLite: WAL journal with full fsync, foreign keys on, and a busy timeout
    so concurrent writers queue instead of failing; the file's folder is made.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the audit tables and append-only triggers in place."""
    engine = open_engine(url)
    Base.metadata.create_all(engine)
    triggers = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}.get(
        engine.dialect.name, []
    )
    with engine.begin() as conn:
        for ddl in triggers:
            conn.execute(text(ddl))
    return engine
