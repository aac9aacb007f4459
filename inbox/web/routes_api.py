"""The machine API (inbox/API.md): hand-offs from the bot, delivery statuses from the connector."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from inbox.schemas import HandoffRequest, HandoffResponse, StatusesRequest, StatusesResponse
from inbox.services.handoffs import HandoffConflict, HandoffIntake
from inbox.services.replies import DeliveryStatuses
from inbox.web.auth import bot_client, inbox_of

# Larger than the pages' limit: a hand-off carries up to 60 transcript messages of up to 10,000
# characters (3.6 MB if every character is JSON-escaped); bigger bodies get 413 before they are read.
API_BODY_LIMIT_BYTES = 4 * 1024 * 1024

router = APIRouter(prefix="/api/v1", dependencies=[Depends(bot_client)], max_body_size=API_BODY_LIMIT_BYTES)


@router.post("/handoffs", response_model=HandoffResponse, status_code=201, responses={200: {"model": HandoffResponse}})
def create_handoff(request: Request, body: HandoffRequest):
    try:
        outcome = HandoffIntake(inbox_of(request)).accept(body, source="api")
    except HandoffConflict as conflict:
        raise HTTPException(409, str(conflict)) from None
    return JSONResponse(outcome.response, status_code=201 if outcome.created else 200)


@router.post("/whatsapp/statuses", response_model=StatusesResponse)
def whatsapp_statuses(request: Request, body: StatusesRequest):
    return StatusesResponse(accepted=DeliveryStatuses(inbox_of(request)).apply(body.statuses))
