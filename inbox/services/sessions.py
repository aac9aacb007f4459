"""Server-side agent sessions: the signed cookie names a row here, and only a live row signs in."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from inbox.models import AgentSession

SESSION_LIFETIME = timedelta(hours=12)  # also the session cookie's max age


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AgentSessions:
    def __init__(self, session: Session, now: datetime):
        self.session = session
        self.now = now

    def open(self, agent_id: int) -> str:
        """A new session for `agent_id`; returns the token for the cookie."""
        self.session.execute(delete(AgentSession).where(AgentSession.expires_at <= self.now))  # housekeeping
        token = secrets.token_urlsafe(32)
        self.session.add(
            AgentSession(
                agent_id=agent_id,
                token_hash=_digest(token),
                created_at=self.now,
                expires_at=self.now + SESSION_LIFETIME,
            )
        )
        return token

    def is_live(self, agent_id: int, token: str) -> bool:
        return (
            self.session.scalar(
                select(AgentSession.id).where(
                    AgentSession.token_hash == _digest(token),
                    AgentSession.agent_id == agent_id,
                    AgentSession.expires_at > self.now,
                )
            )
            is not None
        )

    def close(self, token: str) -> None:
        self.session.execute(delete(AgentSession).where(AgentSession.token_hash == _digest(token)))

    def close_all(self, agent_id: int) -> None:
        self.session.execute(delete(AgentSession).where(AgentSession.agent_id == agent_id))
