"""Who is calling: agents by session cookie, the bot by bearer token; login rate limits."""

from __future__ import annotations

import secrets

from fastapi import Depends, HTTPException, Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from inbox.models import Agent

SESSION_KEY = "agent"


class NotAuthenticated(Exception):
    """No valid agent session: pages redirect to the login, fragments and APIs answer 401."""


class NotAllowed(Exception):
    """Signed in, but the action needs an admin."""


def inbox_of(request: Request):
    return request.app.state.inbox


def current_agent(request: Request) -> Agent:
    session_data = request.session.get(SESSION_KEY)
    if not isinstance(session_data, dict):
        raise NotAuthenticated()
    with inbox_of(request).db.read() as session:
        agent = session.get(Agent, session_data.get("id"))
        if agent is None or not agent.is_active or agent.session_version != session_data.get("version"):
            request.session.clear()
            raise NotAuthenticated()
        _ = agent.team_names  # load the teams before the session closes
        return agent


def admin_agent(agent: Agent = Depends(current_agent)) -> Agent:
    if not agent.is_admin:
        raise NotAllowed()
    return agent


def start_session(request: Request, agent: Agent) -> None:
    request.session.clear()  # a fresh session on login (no fixation)
    request.session[SESSION_KEY] = {"id": agent.id, "version": agent.session_version}


def bot_client(request: Request) -> None:
    expected = inbox_of(request).settings.inbox_bot_token
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if expected is None:
        raise HTTPException(401, "The inbox has no INBOX_BOT_TOKEN configured; machine calls are refused.")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "Missing bearer token.", headers={"WWW-Authenticate": "Bearer"})
    if not secrets.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise HTTPException(401, "Wrong bearer token.", headers={"WWW-Authenticate": "Bearer"})


class LoginRateLimiter:
    """Failed logins per login name, and all attempts per client address, within a moving minute."""

    def __init__(self, per_login: int = 5, per_address: int = 20):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_login = RateLimitItemPerMinute(per_login)
        self._per_address = RateLimitItemPerMinute(per_address)

    def allow_attempt(self, address: str, login: str) -> bool:
        if not self._limiter.hit(self._per_address, "address", address):
            return False
        return self._limiter.test(self._per_login, "login", login.strip().lower())

    def record_failure(self, login: str) -> None:
        self._limiter.hit(self._per_login, "login", login.strip().lower())
