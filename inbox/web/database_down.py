"""What an agent gets while the inbox's database is unreachable (PostgreSQL stopped, network cut).

A reply, note or attachment caption typed in the composer is never lost: the answer is a clear 503
that says nothing was sent and hands the text back in a composer that posts to the same place (htmx
swaps it in place of the conversation; without JavaScript it is a page of its own). Every other
request gets a short 503; htmx's live polls are told not to swap it over the screen. One log line per
request, with the route and the driver's error class only (no connection string, no customer data).
"""

from __future__ import annotations

import logging
import re

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from inbox.web.rendering import is_htmx, templates

logger = logging.getLogger(__name__)

UNAVAILABLE = "The inbox database is unavailable — "
# The composer's posts whose typed text comes back: path pattern -> (field, message, box).
KEPT = "it is kept below, try again."
COMPOSER_POSTS = {
    re.compile(r"^/conversations/(\d+)/reply$"): ("text", f"your reply was not sent; {KEPT}", "reply"),
    re.compile(r"^/conversations/(\d+)/notes$"): ("text", f"your note was not saved; {KEPT}", "note"),
    re.compile(r"^/conversations/(\d+)/attachment$"): (
        "caption", "your file was not sent; its caption is kept below, choose the file again and try again.",
        "attachment",
    ),
}  # fmt: skip


def is_database_down(error: BaseException) -> bool:
    """A refused or dropped connection (OperationalError/InterfaceError), not a bad statement."""
    return isinstance(error, DBAPIError) and (
        error.connection_invalidated or type(error).__name__ in ("OperationalError", "InterfaceError")
    )


async def database_unavailable(request: Request, error: DBAPIError):
    if not is_database_down(error):
        raise error  # a failed statement is a bug: the usual 500 with its traceback
    cause = type(getattr(error, "orig", None) or error).__name__
    logger.error("database unavailable: %s %s answered 503 (%s)", request.method, request.url.path, cause)
    headers = {"Retry-After": "5"}
    composer = _composer_post(request)
    if composer is None:
        if is_htmx(request):
            headers["HX-Reswap"] = "none"  # a live poll: keep the screen as it is
        detail = "The inbox database is unavailable. Nothing was changed; try again in a moment."
        if "text/html" in request.headers.get("accept", "") and not is_htmx(request):
            return _page(request, {"detail": detail, "composer": None}, headers)
        return JSONResponse({"detail": detail}, status_code=503, headers=headers)
    conversation_id, (field, message, box) = composer
    text = await _form_value(request, field)
    context = {
        "detail": UNAVAILABLE + message,
        "composer": box,
        "conversation_id": conversation_id,
        "text": text,
        "file_again": box == "attachment",
    }
    return _page(request, context, headers)


def _composer_post(request: Request):
    if request.method != "POST":
        return None
    for pattern, spec in COMPOSER_POSTS.items():
        match = pattern.match(request.url.path)
        if match:
            return int(match.group(1)), spec
    return None


async def _form_value(request: Request, field: str) -> str:
    """The typed text, from the form FastAPI already parsed for this request (cached on it)."""
    try:
        form = await request.form()
    except Exception:  # the body could not be read again: say so rather than fail a second time
        return ""
    value = form.get(field)
    return value if isinstance(value, str) else ""


def _page(request: Request, context: dict, headers: dict):
    # No database: nothing here may query it (render() would pop flashes from the session only).
    base = {"request": request, "csrf_token": request.scope["csrftoken"]()}
    template = "_database_down.html" if is_htmx(request) else "database_down.html"
    return templates.TemplateResponse(request, template, base | context, status_code=503, headers=headers)
