"""Login and logout."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request

from inbox.models import Agent
from inbox.services.agent_actions import AgentPresence
from inbox.services.agents import AgentDirectory
from inbox.web.auth import current_agent, inbox_of, start_session
from inbox.web.rendering import redirect, render

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
    limiter = request.app.state.login_limiter
    address = request.client.host if request.client else "unknown"
    context = {"next": _safe_next(next), "login": login}
    if not limiter.allow_attempt(address, login):
        return render(
            request, "login.html", context | {"error": "Too many attempts. Wait a minute and try again."}, 429
        )
    with inbox.db.write() as session:
        agent = AgentDirectory(session).authenticate(login, password)
        if agent is not None:
            agent.status = "online"  # signing in means being available for new conversations
            start_session(request, agent)
    if agent is None:
        limiter.record_failure(login)
        return render(request, "login.html", context | {"error": "Wrong login or password."}, 401)
    return redirect(context["next"])


@router.post("/logout")
def logout(request: Request, agent: Annotated[Agent, Depends(current_agent)]):
    AgentPresence(inbox_of(request)).set_status(agent.id, "away")
    request.session.clear()
    return redirect("/login")


@router.post("/me/status")
def my_status(
    request: Request, agent: Annotated[Agent, Depends(current_agent)], status: Annotated[str, Form()] = "away"
):
    AgentPresence(inbox_of(request)).set_status(agent.id, status if status in ("online", "away") else "away")
    referer = urlsplit(request.headers.get("referer") or "")
    return redirect(_safe_next(referer.path + (f"?{referer.query}" if referer.query else "")))
