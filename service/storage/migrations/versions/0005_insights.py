"""LLM assistance and discovery (issue 7): stored insights per job, theme labels per survey

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00

Follows 0004 (dashboard users), which was written against 0002: one linear history, one head.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "survey_insights",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "kind", "key"),
    )
    op.create_table(
        "theme_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.String(length=32), nullable=False),
        sa.Column("theme_id", sa.String(length=48), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("proposed", sa.Boolean(), nullable=False),
        sa.Column("proposed_by", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("label", sa.Boolean(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("taxonomy_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("survey_id", "theme_id", "text_hash", name="uq_theme_labels_text"),
    )
    with op.batch_alter_table("theme_labels", schema=None) as batch_op:
        batch_op.create_index("ix_theme_labels_survey_theme", ["survey_id", "theme_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("theme_labels", schema=None) as batch_op:
        batch_op.drop_index("ix_theme_labels_survey_theme")
    op.drop_table("theme_labels")
    op.drop_table("survey_insights")
