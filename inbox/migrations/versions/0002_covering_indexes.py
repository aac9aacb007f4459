"""Covering indexes for the SLA-breached filter and the per-agent load (found by bench/inbox_bench.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_index("ix_conversations_sla")
        batch_op.create_index("ix_conversations_sla", ["status", "sla_due_at", "first_response_at"])
        batch_op.create_index("ix_conversations_load", ["status", "assignee_id"])


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_index("ix_conversations_load")
        batch_op.drop_index("ix_conversations_sla")
        batch_op.create_index("ix_conversations_sla", ["status", "sla_due_at"])
