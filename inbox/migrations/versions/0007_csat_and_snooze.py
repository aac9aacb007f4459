"""Satisfaction questions after a resolve and snoozed conversations (issue 17).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "csat_surveys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "handoff_id", sa.Integer(), sa.ForeignKey("handoffs.id", ondelete="SET NULL"), nullable=True, unique=True
        ),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("topic", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("skip_reason", sa.String(200), nullable=True),
        sa.Column("token", sa.String(32), nullable=False, unique=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("whatsapp_message_id", sa.String(128), nullable=True),
        sa.Column("rating", sa.String(16), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("comment_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("flag_cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flag_cleared_by_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_csat_surveys_conversation_id", "csat_surveys", ["conversation_id"])
    op.create_index("ix_csat_surveys_agent_id", "csat_surveys", ["agent_id"])
    op.create_index("ix_csat_surveys_asked_at", "csat_surveys", ["asked_at"])
    op.create_table(
        "snoozes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("woke_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("woke_by", sa.String(16), nullable=True),
    )
    op.create_index("ix_snoozes_conversation_id", "snoozes", ["conversation_id"])
    op.create_index("ix_snoozes_due", "snoozes", ["woke_at", "until"])


def downgrade() -> None:
    op.drop_table("snoozes")
    op.drop_table("csat_surveys")
