"""The knowledge-base page's live parts: Test answer and the action server's knowledge-base status
(services/kb_live.py). HTML fragments for the page (htmx); JSON with `Accept: application/json`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from inbox.models import Agent
from inbox.services.kb_live import MAX_QUESTION_CHARS, KbLiveError, kb_live_client
from inbox.web.auth import current_agent, inbox_of
from inbox.web.rendering import render

router = APIRouter()
CurrentAgent = Annotated[Agent, Depends(current_agent)]
TOO_MANY = "Too many test questions in a minute. Wait a moment and try again."


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _allowed(request: Request, agent: Agent) -> bool:
    """A modest per-agent limit: every test runs the NLU model and the knowledge-base search."""
    state = request.app.state
    if not hasattr(state, "kb_test_limiter"):
        state.kb_test_limiter = MovingWindowRateLimiter(MemoryStorage())
        state.kb_test_limit = RateLimitItemPerMinute(inbox_of(request).settings.inbox_kb_test_per_minute)
    return state.kb_test_limiter.hit(state.kb_test_limit, "kb-test", str(agent.id))


@router.post("/knowledge-base/test")
def test_answer(
    request: Request, agent: CurrentAgent, question: Annotated[str, Form(max_length=4 * MAX_QUESTION_CHARS)] = ""
):
    result, error, status = None, None, 200
    if not _allowed(request, agent):
        error, status = TOO_MANY, 429
    else:
        try:
            result = kb_live_client(inbox_of(request)).test_answer(question)
        except ValueError as bad_question:
            error, status = str(bad_question), 400
        except KbLiveError as unavailable:
            error, status = str(unavailable), 502
    if _wants_json(request):
        return JSONResponse({"detail": error} if error else result, status_code=status)
    # htmx swaps only 2xx answers: the error is shown in the same place.
    return render(request, "_kb_test.html", {"result": result, "error": error, "question": question})


@router.get("/knowledge-base/status")
def kb_status(request: Request, agent: CurrentAgent):
    try:
        status, error = kb_live_client(inbox_of(request)).status(), None
    except KbLiveError as unavailable:
        status, error = None, str(unavailable)
    if _wants_json(request):
        return JSONResponse({"detail": error} if error else status, status_code=502 if error else 200)
    return render(request, "_kb_status.html", {"status": status, "error": error})
