"""Who is calling: agents by session cookie, the bot by bearer token; login rate limits."""

from __future__ import annotations

import secrets

from fastapi import Depends, HTTPException, Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.orm import Session

from inbox.models import Agent
from inbox.services.sessions import AgentSessions

SESSION_KEY = "agent"


class NotAuthenticated(Exception):
    """No valid agent session: pages redirect to the login, fragments and APIs answer 401."""


class NotAllowed(Exception):
    """Signed in, but the action needs an admin."""


def inbox_of(request: Request):
    return request.app.state.inbox


def current_agent(request: Request) -> Agent:
    session_data = request.session.get(SESSION_KEY)
    if not isinstance(session_data, dict) or not isinstance(session_data.get("token"), str):
        raise NotAuthenticated()
    inbox = inbox_of(request)
    with inbox.db.read() as session:
        agent = session.get(Agent, session_data.get("id"))
        if (
            agent is None
            or not agent.is_active
            or agent.session_version != session_data.get("version")
            or not AgentSessions(session, inbox.clock()).is_live(agent.id, session_data["token"])
        ):
            request.session.clear()
            raise NotAuthenticated()
        _ = agent.team_names  # load the teams before the session closes
        return agent


def admin_agent(agent: Agent = Depends(current_agent)) -> Agent:
    if not agent.is_admin:
        raise NotAllowed()
    return agent


def start_session(request: Request, session: Session, agent: Agent) -> None:
    """Signs this browser in: a new server-side session row (in the caller's write transaction)."""
    token = AgentSessions(session, inbox_of(request).clock()).open(agent.id)
    request.session.clear()  # a fresh session on login (no fixation)
    request.session[SESSION_KEY] = {"id": agent.id, "version": agent.session_version, "token": token}


def end_session(request: Request) -> None:
    """Signs this browser out for good: its session row is deleted, so a copy of the cookie is dead too."""
    token = (request.session.get(SESSION_KEY) or {}).get("token")
    if isinstance(token, str):
        inbox = inbox_of(request)
        with inbox.db.write() as session:
            AgentSessions(session, inbox.clock()).close(token)
    request.session.clear()


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
    """Failed logins per (login, client address), and all attempts per client address, in a moving minute.

    Failures count per pair, not per login: whoever guesses at `admin` from one address is stopped
    after five tries, but cannot lock admin out — the right password from another address still
    works. A guesser spread over many addresses gets five tries a minute from each, against argon2id
    and passwords of 10+ characters. Behind the reverse proxy the address is the client's, from
    X-Forwarded-For, which uvicorn trusts from 127.0.0.1 only (FORWARDED_ALLOW_IPS).
    """

    def __init__(self, per_login: int = 5, per_address: int = 20):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_login = RateLimitItemPerMinute(per_login)
        self._per_address = RateLimitItemPerMinute(per_address)

    def allow_attempt(self, address: str, login: str) -> bool:
        if not self._limiter.hit(self._per_address, "address", address):
            return False
        return self._limiter.test(self._per_login, "login", login.strip().lower(), address)

    def record_failure(self, address: str, login: str) -> None:
        self._limiter.hit(self._per_login, "login", login.strip().lower(), address)


class PasswordAttempt:
    """One password check for `login` from this request's client, counted by the app's LoginRateLimiter."""

    TOO_MANY = "Too many attempts. Wait a minute and try again."

    def __init__(self, request: Request, login: str):
        self._limiter: LoginRateLimiter = request.app.state.login_limiter
        self._address = request.client.host if request.client else "unknown"
        self._login = login

    def allowed(self) -> bool:
        return self._limiter.allow_attempt(self._address, self._login)

    def failed(self) -> None:
        self._limiter.record_failure(self._address, self._login)
