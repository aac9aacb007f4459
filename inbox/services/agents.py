"""Agents: creation, password hashing (argon2id) and login checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inbox.models import Agent
from inbox.services.handoffs import team_by_name

_hasher = PasswordHasher()
LOGIN_PATTERN = re.compile(r"^[a-z0-9._-]{2,64}$")
MIN_PASSWORD_LENGTH = 10


class AgentError(ValueError):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    """Verified against when the login does not exist, so that both cases take the same time."""
    return _hasher.hash("not-a-real-password")


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AgentError(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")


class AgentDirectory:
    def __init__(self, session: Session):
        self.session = session

    def create(
        self,
        *,
        login: str,
        name: str,
        password: str,
        password_hash: str | None = None,
        role: str = "agent",
        pronoun: str = "they",
        teams: Sequence[str] = (),
        capacity: int = 5,
        status: str = "away",
    ) -> Agent:
        """`password_hash` may carry the password's hash computed once for several agents (demo seed)."""
        login = login.strip().lower()
        if not LOGIN_PATTERN.match(login):
            raise AgentError("The login may use lower-case letters, digits, '.', '_' and '-' (2–64 characters).")
        if not name.strip():
            raise AgentError("The name is required.")
        if role not in ("agent", "admin"):
            raise AgentError("The role is 'agent' or 'admin'.")
        if pronoun not in ("she", "he", "they"):
            raise AgentError("The pronoun is 'she', 'he' or 'they'.")
        if not 1 <= capacity <= 100:
            raise AgentError("The capacity is between 1 and 100 open conversations.")
        validate_password(password)
        if self.session.scalar(select(func.count()).where(Agent.login == login)):
            raise AgentError(f"The login {login!r} is taken.")
        agent = Agent(
            login=login,
            name=name.strip(),
            password_hash=password_hash or hash_password(password),
            role=role,
            pronoun=pronoun,
            capacity=capacity,
            status=status,
        )
        agent.teams = [team_by_name(self.session, team) for team in teams]
        self.session.add(agent)
        self.session.flush()
        return agent

    def authenticate(self, login: str, password: str) -> Agent | None:
        agent = self.session.scalars(
            select(Agent).where(Agent.login == login.strip().lower(), Agent.is_active.is_(True))
        ).one_or_none()
        try:
            _hasher.verify(agent.password_hash if agent else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        if agent is None:
            return None
        if _hasher.check_needs_rehash(agent.password_hash):
            agent.password_hash = hash_password(password)
        return agent

    def set_password(self, agent: Agent, password: str) -> None:
        validate_password(password)
        agent.password_hash = hash_password(password)
        agent.session_version += 1  # log out other sessions
