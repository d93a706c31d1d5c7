"""initial schema: users, sign-in links, studies, tasks, responses, assignments, answers

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "study_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "study_studies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("bench", sa.Text(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "study_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "study_signin_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["study_users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("study_signin_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_signin_tokens_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "study_tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=512), nullable=False),
        sa.Column("case_id", sa.String(length=512), nullable=False),
        sa.Column("task_type", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("case_summary", sa.Text(), nullable=False),
        sa.Column("turns", sa.JSON(), nullable=False),
        sa.Column("turn_start", sa.Integer(), nullable=True),
        sa.Column("turn_end", sa.Integer(), nullable=True),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=1), nullable=False),
        sa.Column("behavior_score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study_studies.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "task_id"),
    )
    with op.batch_alter_table("study_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_tasks_study_id"), ["study_id"], unique=False)

    op.create_table(
        "study_assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("study_task_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("agent_runs", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["study_studies.id"],
        ),
        sa.ForeignKeyConstraint(
            ["study_task_id"],
            ["study_tasks.id"],
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["study_users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "user_id", "position"),
        sa.UniqueConstraint("user_id", "study_task_id"),
    )
    with op.batch_alter_table("study_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_assignments_study_id"), ["study_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_study_assignments_study_task_id"), ["study_task_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_study_assignments_user_id"), ["user_id"], unique=False)

    op.create_table(
        "study_responses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_task_id", sa.Integer(), nullable=False),
        sa.Column("run", sa.String(length=256), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_task_id"],
            ["study_tasks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_task_id", "run"),
    )
    with op.batch_alter_table("study_responses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_responses_study_task_id"), ["study_task_id"], unique=False
        )

    op.create_table(
        "study_comparison_answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(length=1), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("likert", sa.Integer(), nullable=True),
        sa.Column("unsafe", sa.Boolean(), nullable=False),
        sa.Column("unsafe_note", sa.Text(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["study_assignments.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("assignment_id", "agent"),
    )
    with op.batch_alter_table("study_comparison_answers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_study_comparison_answers_assignment_id"), ["assignment_id"], unique=False
        )

    op.create_table(
        "study_validation_answers",
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(length=1), nullable=True),
        sa.Column("confidence", sa.String(length=16), nullable=True),
        sa.Column("proactivity", sa.Float(), nullable=True),
        sa.Column("plausibility", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["study_assignments.id"],
        ),
        sa.PrimaryKeyConstraint("assignment_id"),
    )


def downgrade() -> None:
    op.drop_table("study_validation_answers")
    with op.batch_alter_table("study_comparison_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_comparison_answers_assignment_id"))

    op.drop_table("study_comparison_answers")
    with op.batch_alter_table("study_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_responses_study_task_id"))

    op.drop_table("study_responses")
    with op.batch_alter_table("study_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_assignments_user_id"))
        batch_op.drop_index(batch_op.f("ix_study_assignments_study_task_id"))
        batch_op.drop_index(batch_op.f("ix_study_assignments_study_id"))

    op.drop_table("study_assignments")
    with op.batch_alter_table("study_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_tasks_study_id"))

    op.drop_table("study_tasks")
    with op.batch_alter_table("study_signin_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_signin_tokens_user_id"))

    op.drop_table("study_signin_tokens")
    op.drop_table("study_users")
    op.drop_table("study_studies")
    op.drop_table("study_settings")
