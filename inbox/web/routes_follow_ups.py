"""Snooze / wake on the conversation screen, the 'Follow-ups due' page, and the team lead's
'Not good' answers (issue 17)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request

from inbox.models import Agent, CsatSurvey
from inbox.services.snooze import SnoozeError, Snoozing, follow_ups
from inbox.web.auth import current_agent, inbox_of
from inbox.web.rendering import is_htmx, redirect, render
from inbox.web.routes_conversations import _after_action

router = APIRouter()
CurrentAgent = Annotated[Agent, Depends(current_agent)]
PRESETS = {"1h": timedelta(hours=1), "3h": timedelta(hours=3)}


def snooze_until(choice: str, custom: str, now: datetime, tz) -> datetime | None:
    """'reply' (None: until the customer writes), '1h', '3h', 'tomorrow' (9:00 the team's time) or
    'custom' with the form's local date-time, read in the team's time zone."""
    if choice == "reply":
        return None
    if choice in PRESETS:
        return now + PRESETS[choice]
    if choice == "tomorrow":
        local = now.astimezone(tz) + timedelta(days=1)
        return local.replace(hour=9, minute=0, second=0, microsecond=0)
    if choice == "custom":
        try:
            return datetime.fromisoformat(custom.strip()).replace(tzinfo=tz)
        except ValueError:
            raise SnoozeError("Pick a date and time for the snooze.") from None
    raise SnoozeError("Choose how long to snooze.")


@router.post("/conversations/{conversation_id}/snooze")
def snooze(
    request: Request,
    agent: CurrentAgent,
    conversation_id: int,
    until: Annotated[str, Form()] = "",
    custom: Annotated[str, Form()] = "",
):
    inbox = inbox_of(request)
    try:
        moment = snooze_until(until, custom, inbox.clock(), inbox.assignment_engine().hours.tz)
        Snoozing(inbox).snooze(conversation_id, agent, moment)
    except SnoozeError as error:
        return _after_action(request, agent, conversation_id, str(error))
    return _after_action(request, agent, conversation_id)


@router.post("/conversations/{conversation_id}/wake")
def wake(request: Request, agent: CurrentAgent, conversation_id: int):
    try:
        Snoozing(inbox_of(request)).wake(conversation_id, agent)
    except SnoozeError as error:
        return _after_action(request, agent, conversation_id, str(error))
    return _after_action(request, agent, conversation_id)


@router.get("/follow-ups")
def follow_ups_page(request: Request, agent: CurrentAgent):
    inbox = inbox_of(request)
    with inbox.db.read() as session:
        groups = follow_ups(session, inbox.clock(), inbox.assignment_engine().hours.tz)
        return render(request, "follow_ups.html", {"agent": agent, **groups})


@router.post("/csat/{survey_id}/seen")
def csat_seen(request: Request, agent: CurrentAgent, survey_id: int):
    """The team lead has looked at a 'Not good' answer: it leaves the dashboard's list. Team leads
    are the inbox's admins (agents.role); an agent must not clear a flag about their own work."""
    if not agent.is_admin:
        raise HTTPException(
            403, "Only a team lead (an admin) can mark a \"Not good\" answer seen; it stays on the dashboard for them."
        )
    inbox = inbox_of(request)
    with inbox.db.write() as session:
        survey = session.get(CsatSurvey, survey_id)
        if survey is None:
            raise HTTPException(404, "There is no such answer.")
        if survey.flag_cleared_at is None:
            survey.flag_cleared_at, survey.flag_cleared_by_id = inbox.clock(), agent.id
    if is_htmx(request):
        return render(request, "_empty.html", {})
    return redirect("/dashboard")
