"""Server-Sent Events: tells open agent screens which conversations changed.

The stream polls `conversations.updated_at` (indexed) twice a second, so changes made by any
process — the API, the event consumer, another agent — reach every screen.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse

from inbox.models import Agent, Conversation, utcnow
from inbox.web.auth import current_agent, inbox_of

router = APIRouter()
POLL_SECONDS = 0.5
# Look back a little: a transaction can commit a moment after the timestamp it wrote.
OVERLAP = timedelta(seconds=3)


def _changed_since(inbox, since: datetime) -> list[tuple[int, datetime]]:
    with inbox.db.read() as session:
        return list(
            session.execute(
                select(Conversation.id, Conversation.updated_at)
                .where(Conversation.updated_at > since)
                .order_by(Conversation.updated_at)
                .limit(200)
            ).all()
        )


@router.get("/live")
async def live(request: Request, agent: Annotated[Agent, Depends(current_agent)]):
    inbox = inbox_of(request)

    async def changes():
        high_water = utcnow()
        seen: dict[int, datetime] = {}
        while not await request.is_disconnected():
            rows = await anyio.to_thread.run_sync(_changed_since, inbox, high_water - OVERLAP)
            fresh = [conversation_id for conversation_id, updated_at in rows if seen.get(conversation_id) != updated_at]
            for conversation_id, updated_at in rows:
                seen[conversation_id] = updated_at
                high_water = max(high_water, updated_at)
            seen = {key: value for key, value in seen.items() if value > high_water - 2 * OVERLAP}
            if fresh:
                yield {"event": "change", "data": json.dumps({"ids": fresh})}
            await asyncio.sleep(POLL_SECONDS)

    return EventSourceResponse(changes(), ping=15)
