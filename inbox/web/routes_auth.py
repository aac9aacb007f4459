"""Login and logout."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request

from inbox.models import Agent
from inbox.services.agent_actions import AgentPresence
from inbox.services.agents import AgentDirectory, AgentError
from inbox.services.sessions import AgentSessions
from inbox.web.auth import PasswordAttempt, current_agent, end_session, inbox_of, start_session
from inbox.web.rendering import push_flash, redirect, render

router = APIRouter()


def _safe_next(target: str | None) -> str:
    # Only local paths: never bounce a fresh login to another site.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/conversations?view=mine"


@router.get("/login")
def login_page(request: Request, next: str | None = None):
    return render(request, "login.html", {"next": _safe_next(next), "login": ""})


@router.post("/login")
def login(
    request: Request,
    login: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
):
    inbox = inbox_of(request)
    attempt = PasswordAttempt(request, login)
    context = {"next": _safe_next(next), "login": login}
    if not attempt.allowed():
        return render(request, "login.html", context | {"error": PasswordAttempt.TOO_MANY}, 429)
    with inbox.db.write() as session:
        agent = AgentDirectory(session).authenticate(login, password)
        if agent is not None:
            agent.status = "online"  # signing in means being available for new conversations
            start_session(request, session, agent)
    if agent is None:
        attempt.failed()
        return render(request, "login.html", context | {"error": "Wrong login or password."}, 401)
    return redirect(context["next"])


@router.post("/logout")
def logout(request: Request, agent: Annotated[Agent, Depends(current_agent)]):
    AgentPresence(inbox_of(request)).set_status(agent.id, "away")
    end_session(request)
    return redirect("/login")


@router.get("/me/password")
def password_page(request: Request, agent: Annotated[Agent, Depends(current_agent)]):
    return render(request, "password.html", {"agent": agent})


@router.post("/me/password")
def change_password(
    request: Request,
    agent: Annotated[Agent, Depends(current_agent)],
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    repeat_password: Annotated[str, Form()] = "",
):
    """Needs the current password; signs every other browser of this agent out."""
    inbox = inbox_of(request)
    attempt = PasswordAttempt(request, agent.login)

    def refuse(error: str, status_code: int):
        return render(request, "password.html", {"agent": agent, "error": error}, status_code)

    if not attempt.allowed():
        return refuse(PasswordAttempt.TOO_MANY, 429)
    if new_password != repeat_password:
        return refuse("The new passwords differ.", 422)
    with inbox.db.write() as session:
        directory = AgentDirectory(session)
        me = directory.authenticate(agent.login, current_password)
        if me is not None:
            try:
                directory.set_password(me, new_password)
            except AgentError as error:
                return refuse(str(error), 422)
            AgentSessions(session, inbox.clock()).close_all(me.id)
            start_session(request, session, me)
    if me is None:
        attempt.failed()
        return refuse("The current password is wrong.", 401)
    push_flash(request, "Password changed. Every other browser you were signed in on is signed out.")
    return redirect("/conversations?view=mine")


@router.post("/me/status")
def my_status(
    request: Request, agent: Annotated[Agent, Depends(current_agent)], status: Annotated[str, Form()] = "away"
):
    AgentPresence(inbox_of(request)).set_status(agent.id, status if status in ("online", "away") else "away")
    referer = urlsplit(request.headers.get("referer") or "")
    return redirect(_safe_next(referer.path + (f"?{referer.query}" if referer.query else "")))
