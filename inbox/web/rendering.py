"""Jinja2 set-up (autoescaped: customer text is always rendered as text) and response helpers."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from inbox.services.media import INLINE_TYPES, human_size
from inbox.settings import INBOX_DIR
from inbox.web.auth import inbox_of

templates = Jinja2Templates(directory=str(INBOX_DIR / "templates"))
templates.env.autoescape = True  # also for fragments whatever their file name
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

ROLE_LABELS = {"customer": "Customer", "bot": "Bot", "agent": "Agent", "note": "Internal note", "system": "Event"}
DELIVERY_LABELS = {
    "sending": "Sending…",
    "unconfirmed": "Sending…",  # sent or in flight, waiting for WhatsApp to confirm
    "accepted": "Sent to WhatsApp",
    "sent": "Sent",
    "delivered": "Delivered",
    "read": "Read",
    "failed": "Not delivered",
}


def short_duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


def _local(request: Request, moment: datetime) -> datetime:
    return moment.astimezone(inbox_of(request).assignment_engine().hours.tz)


def local_time(request: Request, moment: datetime | None, style: str = "short") -> str:
    if moment is None:
        return ""
    local = _local(request, moment)
    now = _local(request, inbox_of(request).clock())
    clock = f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"
    if style == "clock":
        return clock
    if local.date() == now.date():
        return clock
    if style == "full" or local.year != now.year:
        return f"{local.day} {local:%b %Y}, {clock}"
    return f"{local.day} {local:%b}, {clock}"


def csrf_token(request: Request) -> str:
    return request.scope["csrftoken"]()


def push_flash(request: Request, text: str, kind: str = "info") -> None:
    request.session.setdefault("flash", []).append({"text": text, "kind": kind})
    request.session["flash"] = request.session["flash"][-5:]


def pop_flashes(request: Request) -> list[dict]:
    return request.session.pop("flash", [])


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, context: dict | None = None, status_code: int = 200):
    inbox = inbox_of(request)
    base = {
        "request": request,
        "now": inbox.clock(),
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request) if not template.startswith("_") else [],
        "role_labels": ROLE_LABELS,
        "delivery_labels": DELIVERY_LABELS,
        "timezone_name": inbox.assignment_config().timezone,
    }
    return templates.TemplateResponse(request, template, base | (context or {}), status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


templates.env.filters["duration"] = short_duration
templates.env.globals["local_time"] = local_time
templates.env.globals["human_size"] = human_size
templates.env.globals["inline_media_types"] = INLINE_TYPES
