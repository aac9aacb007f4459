"""Customers identified by WhatsApp's business-scoped user id (BSUID) and username, the phone
optional; agent replies carry our idempotency key and a retry schedule for the recovery loop.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from inbox.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("bsuid", sa.String(length=160), nullable=True))
    op.add_column("customers", sa.Column("username", sa.String(length=64), nullable=True))
    op.create_index("ix_customers_bsuid", "customers", ["bsuid"])
    op.add_column("messages", sa.Column("send_key", sa.String(length=64), nullable=True))
    op.add_column("messages", sa.Column("send_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("messages", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    # A unique index rather than a constraint: SQLite cannot add a UNIQUE column.
    op.create_index("ix_messages_send_key", "messages", ["send_key"], unique=True)
    op.create_index("ix_messages_delivery_due", "messages", ["delivery_status", "next_attempt_at"])
    # Replies an older inbox left in "Sending…" may or may not have reached the customer (they have no
    # send key a status could match): the recovery loop shows them as failed with that reason.
    messages = sa.table(
        "messages",
        sa.column("role", sa.String),
        sa.column("delivery_status", sa.String),
        sa.column("next_attempt_at", UTCDateTime()),
    )
    op.execute(
        messages.update()
        .where(messages.c.role == "agent", messages.c.delivery_status == "sending")
        .values(delivery_status="unconfirmed", next_attempt_at=datetime.now(UTC))
    )


def downgrade() -> None:
    messages = sa.table("messages", sa.column("delivery_status", sa.String))
    op.execute(messages.update().where(messages.c.delivery_status == "unconfirmed").values(delivery_status="sending"))
    op.drop_index("ix_messages_delivery_due", table_name="messages")
    op.drop_index("ix_messages_send_key", table_name="messages")
    # Plain DROP COLUMN (SQLite >= 3.35): a batch copy of `messages` would lose the FTS triggers.
    for column in ("next_attempt_at", "send_attempts", "send_key"):
        op.drop_column("messages", column)
    op.drop_index("ix_customers_bsuid", table_name="customers")
    for column in ("username", "bsuid"):
        op.drop_column("customers", column)
