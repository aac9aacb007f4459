"""The agent's screens: conversation list, one conversation, and what an agent does in it."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Depends, Form, HTTPException, Request
from sqlalchemy import select

from inbox.models import Agent, Conversation, Handoff, QuickReply
from inbox.services.agent_actions import ActionError, InternalNotes, Reassignment, Tagging, VipFlag, team_options
from inbox.services.csat import CsatSurveys
from inbox.services.media import media_for
from inbox.services.queries import VIEWS, ConversationQueries
from inbox.services.replies import AgentReplies, ReplyError
from inbox.services.resolution import ResolveAndHandBack, ResolveError
from inbox.services.service_window import composer_window
from inbox.services.snooze import open_snooze
from inbox.web.auth import current_agent, inbox_of
from inbox.web.rendering import is_htmx, push_flash, redirect, render

router = APIRouter()
CurrentAgent = Annotated[Agent, Depends(current_agent)]


def _view(view: str | None) -> str:
    return view if view in VIEWS else "all"


def list_context(request: Request, agent: Agent, view: str, cursor: str | None, q: str | None) -> dict:
    inbox = inbox_of(request)
    now = inbox.clock()
    with inbox.db.read() as session:
        queries = ConversationQueries(session)
        counts = queries.counts(agent.id, now)
        if q and q.strip():
            rows, next_cursor = queries.search(q), None
        else:
            rows, next_cursor = queries.page(view, agent.id, now, cursor)
    params = {"view": view} | ({"q": q} if q else {})
    return {
        "agent": agent,
        "view": view,
        "views": VIEWS,
        "counts": counts,
        "rows": rows,
        "q": q or "",
        "next_cursor": next_cursor,
        "list_query": urlencode(params),
        "cursor": cursor,
    }


def conversation_context(request: Request, agent: Agent, conversation_id: int) -> dict:
    inbox = inbox_of(request)
    with inbox.db.read() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise HTTPException(404, "There is no such conversation.")
        queries = ConversationQueries(session)
        handoff = session.get(Handoff, conversation.current_handoff_id) if conversation.current_handoff_id else None
        messages = queries.transcript(conversation_id)
        return {
            "agent": agent,
            "conversation": conversation,
            "customer": conversation.customer,
            "messages": messages,
            "media": media_for(session, [message.id for message in messages]),  # photos, locations… by message id
            "tags": queries.tags_for([conversation_id]).get(conversation_id, []),
            "handoff": handoff,
            "snooze": open_snooze(session, conversation_id) if conversation.status == "snoozed" else None,
            "breached": conversation.sla_breached(inbox.clock()),
            "agents": list(session.scalars(select(Agent).where(Agent.is_active.is_(True)).order_by(Agent.name))),
            "teams": team_options(session),
            "quick_replies": [
                {"shortcut": reply.shortcut, "text": reply.text}
                for reply in session.scalars(select(QuickReply).order_by(QuickReply.shortcut))
            ],
            **composer_window(inbox, session, conversation, agent),  # 24-hour window, templates
        }


@router.get("/")
def home(agent: CurrentAgent):
    return redirect("/conversations?view=mine")


@router.get("/conversations")
def conversation_list(
    request: Request, agent: CurrentAgent, view: str | None = None, cursor: str | None = None, q: str | None = None
):
    return render(request, "inbox.html", list_context(request, agent, _view(view), cursor, q) | {"selected_id": None})


@router.get("/conversations/list")
def conversation_list_fragment(
    request: Request,
    agent: CurrentAgent,
    view: str | None = None,
    cursor: str | None = None,
    q: str | None = None,
    selected: int | None = None,
):
    """The list column alone: live refresh and "load more"."""
    context = list_context(request, agent, _view(view), cursor, q)
    return render(request, "_rows.html" if cursor else "_list.html", context | {"selected_id": selected})


@router.get("/conversations/{conversation_id}")
def conversation_page(
    request: Request,
    agent: CurrentAgent,
    conversation_id: int,
    background: BackgroundTasks,
    view: str | None = None,
    q: str | None = None,
):
    context = list_context(request, agent, _view(view), None, q) | conversation_context(request, agent, conversation_id)
    # Blue ticks for the customer, if the team wants them (inbox/config/read_receipts.yml); after the page.
    background.add_task(inbox_of(request).read_receipts.on_open, conversation_id)
    drafts = request.session.pop("drafts", None)  # text of a reply or note that failed, kept for the agent
    if isinstance(drafts, dict) and drafts.get("conversation_id") == conversation_id:
        context |= {key: value for key, value in drafts.items() if key in ("reply_draft", "note_draft")}
    return render(request, "inbox.html", context | {"selected_id": conversation_id})


@router.get("/conversations/{conversation_id}/transcript")
def transcript_fragment(request: Request, agent: CurrentAgent, conversation_id: int):
    return render(request, "_transcript.html", conversation_context(request, agent, conversation_id))


@router.get("/conversations/{conversation_id}/panel")
def panel_fragment(request: Request, agent: CurrentAgent, conversation_id: int):
    return render(request, "_panel.html", conversation_context(request, agent, conversation_id))


def _after_action(
    request: Request,
    agent: Agent,
    conversation_id: int,
    error: str | None = None,
    draft: str = "",
    draft_box: str = "reply",
):
    """htmx gets the re-rendered conversation (422 + the error on failure, with the text kept in the box
    it was typed in); a plain form post is redirected back with a flash message."""
    drafts = {f"{draft_box}_draft": draft} if error and draft else {}
    if is_htmx(request):
        context = conversation_context(request, agent, conversation_id) | {"error": error} | drafts
        return render(request, "_conversation.html", context, status_code=422 if error else 200)
    if error:
        push_flash(request, error, "error")
        if drafts:
            request.session["drafts"] = {"conversation_id": conversation_id} | drafts
    return redirect(f"/conversations/{conversation_id}")


@router.post("/conversations/{conversation_id}/reply")
def reply(request: Request, agent: CurrentAgent, conversation_id: int, text: Annotated[str, Form()] = ""):
    inbox = inbox_of(request)
    try:
        message = AgentReplies(inbox).send(conversation_id, agent, text)
    except ReplyError as error:
        return _after_action(request, agent, conversation_id, str(error), text)
    if message.delivery_status == "failed":
        # Stored and shown in the transcript with its reason; the text stays in the box for a retry.
        return _after_action(request, agent, conversation_id, f"Not delivered: {message.delivery_error}", text)
    inbox.read_receipts.reply_sent(conversation_id)  # WhatsApp hid "typing…" with the reply
    return _after_action(request, agent, conversation_id)


@router.post("/messages/{message_id}/retry")
def retry_reply(request: Request, agent: CurrentAgent, message_id: int):
    inbox = inbox_of(request)
    try:
        message = AgentReplies(inbox).retry(message_id, agent)
    except ReplyError as error:
        raise HTTPException(422, str(error)) from None
    error = f"Not delivered: {message.delivery_error}" if message.delivery_status == "failed" else None
    return _after_action(request, agent, message.conversation_id, error)


@router.post("/conversations/{conversation_id}/notes")
def add_note(request: Request, agent: CurrentAgent, conversation_id: int, text: Annotated[str, Form()] = ""):
    try:
        InternalNotes(inbox_of(request)).add(conversation_id, agent, text)
    except ActionError as error:
        return _after_action(request, agent, conversation_id, str(error), text, draft_box="note")
    return _after_action(request, agent, conversation_id)


@router.post("/conversations/{conversation_id}/tags")
def add_tags(request: Request, agent: CurrentAgent, conversation_id: int, tags: Annotated[str, Form()] = ""):
    try:
        Tagging(inbox_of(request)).add(conversation_id, tags)
    except ActionError as error:
        return _after_action(request, agent, conversation_id, str(error))
    return _after_action(request, agent, conversation_id)


@router.post("/conversations/{conversation_id}/tags/remove")
def remove_tag(request: Request, agent: CurrentAgent, conversation_id: int, tag: Annotated[str, Form()]):
    Tagging(inbox_of(request)).remove(conversation_id, tag)
    return _after_action(request, agent, conversation_id)


@router.post("/conversations/{conversation_id}/vip")
def set_vip(request: Request, agent: CurrentAgent, conversation_id: int, is_vip: Annotated[str, Form()] = "0"):
    VipFlag(inbox_of(request)).set(conversation_id, is_vip == "1")
    return _after_action(request, agent, conversation_id)


@router.post("/conversations/{conversation_id}/assign")
def assign(
    request: Request,
    agent: CurrentAgent,
    conversation_id: int,
    assignee: Annotated[str, Form()] = "",
):
    """`assignee` is 'agent:<id>', 'team:<id>' (that team's queue) or '' (unassigned queue)."""
    kind, _, raw_id = assignee.partition(":")
    agent_id = int(raw_id) if kind == "agent" and raw_id.isdigit() else None
    team_id = int(raw_id) if kind == "team" and raw_id.isdigit() else None
    try:
        Reassignment(inbox_of(request)).assign(conversation_id, agent, agent_id, team_id)
    except ActionError as error:
        return _after_action(request, agent, conversation_id, str(error))
    return _after_action(request, agent, conversation_id)


@router.post("/conversations/{conversation_id}/resolve")
def resolve(request: Request, agent: CurrentAgent, conversation_id: int):
    try:
        ResolveAndHandBack(inbox_of(request)).resolve(conversation_id, agent)
    except ResolveError as error:
        return _after_action(request, agent, conversation_id, str(error))
    CsatSurveys(inbox_of(request)).after_resolve(conversation_id)  # "How did we do?" (config/csat.yml)
    return _after_action(request, agent, conversation_id)
