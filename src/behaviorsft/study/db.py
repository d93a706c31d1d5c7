"""The study database: users, studies, task snapshots, assignments and answers.

A study keeps a *snapshot* of everything a rater sees (case summary, the
whole conversation, context, question, options, key), so the study stays
readable and its export reproducible after the bench is rebuilt or moved.

One assignment is one (rater, task) pair with its place in the rater's queue;
for comparison it also stores the blinded order of the runs (label ``A`` is
``agent_runs[0]``, shown first). Answers hang off an assignment and are
written by upsert keyed on it, so a save is idempotent, and two raters never
write the same row.

The schema is made by the Alembic migrations in ``migrations/`` (shipped in
the package); :func:`open_db` upgrades it to the newest revision every time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import resources
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from behaviorsft.serve.db import open_engine

KINDS = ("validation", "comparison")
# Alembic's bookkeeping table, named so one database can also hold `serve`'s audit.
VERSION_TABLE = "study_alembic_version"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class Setting(Base):
    """Key/value settings kept in the database (the cookie-signing secret)."""

    __tablename__ = "study_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class User(Base):
    """A rater or an administrator."""

    __tablename__ = "study_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(256))  # argon2id
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SignInToken(Base):
    """A one-time sign-in link; only the token's SHA-256 is stored."""

    __tablename__ = "study_signin_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("study_users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Study(Base):
    """One study: a validation or a comparison phase over a bench."""

    __tablename__ = "study_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # validation | comparison
    bench: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # How it was made: n, overlap, raters, bench manifest hash, package version.
    config: Mapped[dict[str, Any]] = mapped_column(JSON)


class StudyTask(Base):
    """What a rater sees of one bench task, copied at creation."""

    __tablename__ = "study_tasks"
    __table_args__ = (UniqueConstraint("study_id", "task_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study_studies.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(512))
    case_id: Mapped[str] = mapped_column(String(512))
    task_type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16))
    case_summary: Mapped[str] = mapped_column(Text, default="")
    # [{index, speaker, role, text, attachments: [{kind, title, columns, rows, uri}]}]
    turns: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    turn_start: Mapped[int | None] = mapped_column(Integer)
    turn_end: Mapped[int | None] = mapped_column(Integer)
    excerpt: Mapped[str | None] = mapped_column(Text)
    question: Mapped[str] = mapped_column(Text)
    options: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # [{label, text}]
    key: Mapped[str] = mapped_column(String(1))
    behavior_score: Mapped[float | None] = mapped_column(Float)


class AgentResponse(Base):
    """One run's reply to one comparison task (behaviour tokens removed)."""

    __tablename__ = "study_responses"
    __table_args__ = (UniqueConstraint("study_task_id", "run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_task_id: Mapped[int] = mapped_column(ForeignKey("study_tasks.id"), index=True)
    run: Mapped[str] = mapped_column(String(256))  # never shown to a rater
    text: Mapped[str] = mapped_column(Text)


class Assignment(Base):
    """One task in one rater's queue."""

    __tablename__ = "study_assignments"
    __table_args__ = (
        UniqueConstraint("user_id", "study_task_id"),
        UniqueConstraint("study_id", "user_id", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study_studies.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("study_users.id"), index=True)
    study_task_id: Mapped[int] = mapped_column(ForeignKey("study_tasks.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1-based place in the queue
    # Comparison only: run names in display order; label A is agent_runs[0].
    agent_runs: Mapped[list[str] | None] = mapped_column(JSON)


class ValidationAnswer(Base):
    """A rater's answer to a validation task; None is 'not answered'."""

    __tablename__ = "study_validation_answers"

    assignment_id: Mapped[int] = mapped_column(ForeignKey("study_assignments.id"), primary_key=True)
    answer: Mapped[str | None] = mapped_column(String(1))
    confidence: Mapped[str | None] = mapped_column(String(16))
    proactivity: Mapped[float | None] = mapped_column(Float)
    plausibility: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ComparisonAnswer(Base):
    """A rater's judgement of one blinded response (one row per agent label)."""

    __tablename__ = "study_comparison_answers"
    __table_args__ = (UniqueConstraint("assignment_id", "agent"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("study_assignments.id"), index=True)
    agent: Mapped[str] = mapped_column(String(1))
    rank: Mapped[int | None] = mapped_column(Integer)
    likert: Mapped[int | None] = mapped_column(Integer)
    unsafe: Mapped[bool] = mapped_column(Boolean, default=False)
    unsafe_note: Mapped[str] = mapped_column(Text, default="")
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("behaviorsft.study") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (the newest by default)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The schema's Alembic revision (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def open_db(url: str) -> Engine:
    """An engine for ``url`` with the schema upgraded to the newest revision."""
    engine = open_engine(url)
    upgrade(engine)
    return engine
