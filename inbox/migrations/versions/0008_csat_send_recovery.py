"""The satisfaction question goes through the reply recovery loop: a send key, attempts and the
next attempt's time on each survey (services/csat.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("csat_surveys", sa.Column("send_key", sa.String(length=64), nullable=True))
    op.add_column("csat_surveys", sa.Column("send_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("csat_surveys", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_csat_surveys_send_key", "csat_surveys", ["send_key"], unique=True)
    op.create_index("ix_csat_surveys_delivery_due", "csat_surveys", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_csat_surveys_delivery_due", table_name="csat_surveys")
    op.drop_index("ix_csat_surveys_send_key", table_name="csat_surveys")
    for column in ("next_attempt_at", "send_attempts", "send_key"):
        op.drop_column("csat_surveys", column)
