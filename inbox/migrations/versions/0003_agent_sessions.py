"""Server-side agent sessions (sign-out and password changes revoke cookies); on PostgreSQL the
search vector covers the first 4,096 characters of a message (a tsvector holds at most 1 MB, so a
multi-megabyte message could not be stored at all).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_agent_sessions_agent_id", "agent_sessions", ["agent_id"])
    op.create_index("ix_agent_sessions_expires_at", "agent_sessions", ["expires_at"])
    _search_vector_over("left(text, 4096)")


def downgrade() -> None:
    _search_vector_over("text")
    op.drop_index("ix_agent_sessions_expires_at", table_name="agent_sessions")
    op.drop_index("ix_agent_sessions_agent_id", table_name="agent_sessions")
    op.drop_table("agent_sessions")


def _search_vector_over(expression: str) -> None:
    """PostgreSQL only (SQLite's FTS5 index has no such limit and keeps the whole text)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_messages_search")
    op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_vector")
    op.execute(
        "ALTER TABLE messages ADD COLUMN search_vector tsvector "
        f"GENERATED ALWAYS AS (to_tsvector('simple', {expression})) STORED"
    )
    op.execute("CREATE INDEX ix_messages_search ON messages USING gin (search_vector)")
