"""Admin screens: quick replies and agents (everyone may look; admins change)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from sqlalchemy import select

from inbox.models import Agent, QuickReply
from inbox.services.agent_actions import team_options
from inbox.services.agents import AgentDirectory, AgentError
from inbox.services.handoffs import team_by_name
from inbox.services.quick_replies import QuickReplyBook, QuickReplyError
from inbox.web.auth import admin_agent, current_agent, inbox_of
from inbox.web.rendering import push_flash, redirect, render

router = APIRouter()
CurrentAgent = Annotated[Agent, Depends(current_agent)]
Admin = Annotated[Agent, Depends(admin_agent)]


@router.get("/quick-replies")
def quick_replies_page(request: Request, agent: CurrentAgent):
    with inbox_of(request).db.read() as session:
        replies = list(session.scalars(select(QuickReply).order_by(QuickReply.shortcut)))
    return render(request, "quick_replies.html", {"agent": agent, "replies": replies})


@router.post("/quick-replies")
def save_quick_reply(
    request: Request,
    agent: Admin,
    shortcut: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    reply_id: Annotated[str, Form()] = "",
):
    try:
        QuickReplyBook(inbox_of(request)).save(int(reply_id) if reply_id.isdigit() else None, shortcut, text)
    except QuickReplyError as error:
        push_flash(request, str(error), "error")
    else:
        push_flash(request, f"Saved /{shortcut.strip().lstrip('/').lower()}.")
    return redirect("/quick-replies")


@router.post("/quick-replies/{reply_id}/delete")
def delete_quick_reply(request: Request, agent: Admin, reply_id: int):
    QuickReplyBook(inbox_of(request)).delete(reply_id)
    return redirect("/quick-replies")


@router.get("/agents")
def agents_page(request: Request, agent: CurrentAgent):
    with inbox_of(request).db.read() as session:
        agents = list(session.scalars(select(Agent).order_by(Agent.is_active.desc(), Agent.name)))
        teams = team_options(session)
    return render(request, "agents.html", {"agent": agent, "agents": agents, "teams": teams})


@router.post("/agents")
def create_agent(
    request: Request,
    agent: Admin,
    login: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "agent",
    pronoun: Annotated[str, Form()] = "they",
    capacity: Annotated[int, Form()] = 5,
    teams: Annotated[list[str] | None, Form()] = None,
):
    try:
        with inbox_of(request).db.write() as session:
            AgentDirectory(session).create(
                login=login,
                name=name,
                password=password,
                role=role,
                pronoun=pronoun,
                capacity=capacity,
                teams=teams or [],
            )
    except AgentError as error:
        push_flash(request, str(error), "error")
    else:
        push_flash(request, f"Added {name.strip()} ({login.strip().lower()}).")
    return redirect("/agents")


@router.post("/agents/{agent_id}")
def update_agent(
    request: Request,
    agent: Admin,
    agent_id: int,
    status: Annotated[str, Form()] = "away",
    capacity: Annotated[int, Form()] = 5,
    role: Annotated[str, Form()] = "agent",
    teams: Annotated[list[str] | None, Form()] = None,
    active: Annotated[str, Form()] = "1",
):
    if status not in ("online", "away") or role not in ("agent", "admin") or not 1 <= capacity <= 100:
        push_flash(request, "Status is online/away, role agent/admin, capacity 1–100.", "error")
        return redirect("/agents")
    with inbox_of(request).db.write() as session:
        target = session.get(Agent, agent_id)
        if target is None:
            raise HTTPException(404, "There is no such agent.")
        if target.id == agent.id and (role != "admin" or active != "1"):
            push_flash(request, "You cannot remove your own admin role or deactivate yourself.", "error")
            return redirect("/agents")
        target.status, target.capacity, target.role = status, capacity, role
        target.teams = [team_by_name(session, team) for team in teams or []]
        if (active == "1") != target.is_active:
            target.is_active = active == "1"
            target.session_version += 1  # a deactivated agent is signed out everywhere
    push_flash(request, f"Updated {target.name}.")
    return redirect("/agents")
