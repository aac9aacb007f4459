"""The 24-hour window's parts of the conversation screen: sending a template, the composer refreshed
when the window opens or closes, and the agent's typing passed on to the customer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response

from inbox.models import Conversation
from inbox.services.replies import AgentReplies, ReplyError
from inbox.web.auth import inbox_of
from inbox.web.rendering import render
from inbox.web.routes_conversations import CurrentAgent, _after_action, conversation_context

router = APIRouter()


@router.post("/conversations/{conversation_id}/template")
def send_template(
    request: Request,
    agent: CurrentAgent,
    conversation_id: int,
    template: Annotated[str, Form()] = "",
    value: Annotated[list[str] | None, Form()] = None,
):
    inbox = inbox_of(request)
    try:
        message = AgentReplies(inbox).send_template(conversation_id, agent, template, value or [])
    except ReplyError as error:
        return _after_action(request, agent, conversation_id, str(error))
    inbox.read_receipts.reply_sent(conversation_id)
    if message.delivery_status == "failed":
        return _after_action(request, agent, conversation_id, f"Not delivered: {message.delivery_error}")
    return _after_action(request, agent, conversation_id)


@router.get("/conversations/{conversation_id}/composer")
def composer_fragment(request: Request, agent: CurrentAgent, conversation_id: int):
    """The composer alone: the page swaps it in when the window opened or closed meanwhile."""
    return render(request, "_composer.html", conversation_context(request, agent, conversation_id))


@router.post("/conversations/{conversation_id}/typing", status_code=204)
def typing(request: Request, agent: CurrentAgent, conversation_id: int):
    """The agent types: "typing…" on the customer's phone (throttled, per the team's setting)."""
    inbox = inbox_of(request)
    with inbox.db.read() as session:
        if session.get(Conversation, conversation_id) is None:
            raise HTTPException(404, "There is no such conversation.")
    outcome = inbox.read_receipts.on_typing(conversation_id)
    return Response(status_code=204, headers={"X-Typing": outcome})
