"""The 24-hour customer-service window, approved templates, read receipts and "typing…", like Meta:

- free-form messages to a customer whose last message is more than 24 hours old are accepted and then
  reported `failed` with 131047 (how the Cloud API usually does it); templates always go through;
- a template must be one the business has (inbox/config/templates.yml, or SANDBOX_TEMPLATES): unknown
  name or language -> HTTP 400 132001, a wrong number of body parameters -> HTTP 400 132000;
- `{"status": "read", "message_id": <customer's wamid>}` marks that message and the earlier ones read
  (blue ticks on the page); with `"typing_indicator": {"type": "text"}` the page shows "typing…" for up
  to 25 s or until the business's next message. The named message keeps each such call (with or without
  typing, and how far the log was then): `GET /sandbox/api/read_receipt` waits for one (tests).

The sandbox has its own clock (real time plus an offset tests can move) for the window and typing."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import yaml
from aiohttp import web

from whatsapp_sandbox.graph_errors import GraphError, invalid

WINDOW_SECONDS = 24 * 3600
TYPING_SECONDS = 25.0
DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent / "inbox" / "config" / "templates.yml"
PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


@dataclass
class WindowState:
    templates: Dict[Tuple[str, str], str]  # (name, language) -> approved body
    clock_offset: float = 0.0
    last_message_at: Dict[str, float] = field(default_factory=dict)  # BSUID -> sandbox time
    typing_until: Dict[str, float] = field(default_factory=dict)  # BSUID -> sandbox time
    status_calls: int = 0

    def now(self) -> float:
        return time.time() + self.clock_offset


WINDOW = web.AppKey("window", WindowState)


def load_templates(path: Path) -> Dict[Tuple[str, str], str]:
    """The approved bodies by (name, language); the inbox checks the file's details at its start-up."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        (str(entry["name"]), str(entry["language"])): str(entry.get("body") or "")
        for entry in data.get("templates") or []
        if isinstance(entry, dict) and entry.get("name") and entry.get("language")
    }


def install(app: web.Application) -> None:
    path = Path(os.environ.get("SANDBOX_TEMPLATES", "").strip() or DEFAULT_TEMPLATES)
    app[WINDOW] = WindowState(templates=load_templates(path))
    app.router.add_get("/sandbox/api/clock", get_clock)
    app.router.add_post("/sandbox/api/clock", move_clock)
    app.router.add_post("/sandbox/api/customers/{wa_id}/last_message", set_last_message)
    app.router.add_get("/sandbox/api/customers/{wa_id}/presence", presence)
    app.router.add_get("/sandbox/api/read_receipt", read_receipt)


# --- hooks called by app.py ------------------------------------------------------------------


async def status_call(app: web.Application, payload: Any) -> Optional[web.Response]:
    """Answers a read receipt / typing indicator call; None for an ordinary send."""
    if not isinstance(payload, dict) or "status" not in payload:
        return None
    from whatsapp_sandbox.app import STATE

    state, window = app[STATE], app[WINDOW]
    window.status_calls += 1
    try:
        if payload.get("messaging_product") != "whatsapp":
            raise invalid("The parameter messaging_product is required and must be 'whatsapp'.")
        if payload.get("status") != "read":
            raise invalid("Param 'status' must be 'read'.")
        typing = payload.get("typing_indicator")
        if typing is not None and (not isinstance(typing, dict) or typing.get("type") != "text"):
            raise invalid("Param typing_indicator['type'] must be 'text'.")
        logged = state.find(str(payload.get("message_id") or ""))
        if logged is None or logged.direction != "customer":
            raise invalid("Param 'message_id' must be the id of a message this business received.")
    except GraphError as error:
        return web.json_response(error.body(), status=error.http_status)
    for message in state.messages[: logged.seq]:  # this one and every earlier one of theirs: blue ticks
        if message.direction == "customer" and message.user_id == logged.user_id:
            message.status = "read"
    state.business_read(logged, typing=typing is not None)  # which message the call named (tests wait on it)
    if typing is not None:
        window.typing_until[logged.user_id] = window.now() + TYPING_SECONDS
    return web.json_response({"success": True})


def check_send(app: web.Application, customer, message_type: str, payload: Dict[str, Any]) -> Optional[int]:
    """Raises GraphError for a template the business does not have; returns 131047 when a free-form
    message is outside the customer's window (reported as a failed status, like Meta). A customer the
    sandbox never saw write (e.g. one written for in a test's event stream) counts as inside."""
    window = app[WINDOW]
    if message_type == "template":
        _check_template(window, payload["template"])
        return None
    last = window.last_message_at.get(customer.user_id)
    if last is not None and window.now() - last > WINDOW_SECONDS:
        return 131047
    return None


def _check_template(window: WindowState, template: Dict[str, Any]) -> None:
    name, language = str(template.get("name")), str((template.get("language") or {}).get("code"))
    body = window.templates.get((name, language))
    if body is None:
        raise GraphError(
            400, 132001, "Template name does not exist in the translation",
            f"template name ({name}) does not exist in {language}",
        )
    expected = len(set(PLACEHOLDER.findall(body)))
    given = 0
    for component in template.get("components") or []:
        if isinstance(component, dict) and component.get("type") == "body":
            given = len(component.get("parameters") or [])
    if given != expected:
        raise GraphError(
            400, 132000, "Number of parameters does not match the expected number of params",
            f"body: number of localizable_params ({given}) does not match the expected number of params ({expected})",
        )


def rendered_template(app: web.Application, template: Dict[str, Any]) -> Optional[str]:
    """The text the customer's phone shows for an accepted template."""
    body = app[WINDOW].templates.get((str(template.get("name")), str((template.get("language") or {}).get("code"))))
    if body is None:
        return None
    values = []
    for component in template.get("components") or []:
        if isinstance(component, dict) and component.get("type") == "body":
            values = [str((parameter or {}).get("text", "")) for parameter in component.get("parameters") or []]
    return PLACEHOLDER.sub(lambda match: values[int(match.group(1)) - 1] if int(match.group(1)) <= len(values) else "", body)


def customer_wrote(app: web.Application, customer, logged) -> None:
    app[WINDOW].last_message_at[customer.user_id] = app[WINDOW].now()
    logged.status = "delivered"  # two grey ticks until the business marks it read


def business_sent(app: web.Application, customer, logged, payload: Dict[str, Any]) -> None:
    app[WINDOW].typing_until.pop(customer.user_id, None)  # the reply ends "typing…", like on a phone
    if logged.type == "template":
        logged.text = rendered_template(app, payload["template"])


# --- the JSON API for tests and the page ------------------------------------------------------


def _customer(request: web.Request):
    from whatsapp_sandbox.app import STATE

    state = request.app[STATE]
    chat_id = request.match_info["wa_id"]
    return state.customers.get(chat_id) or state.customer_with_phone(chat_id)


async def get_clock(request: web.Request) -> web.Response:
    window = request.app[WINDOW]
    return web.json_response({"now": window.now(), "offset_seconds": window.clock_offset})


async def move_clock(request: web.Request) -> web.Response:
    """`{"advance_seconds": 90000}` moves the sandbox's clock forward (window and typing only)."""
    try:
        seconds = float((await request.json())["advance_seconds"])
    except (ValueError, KeyError, TypeError) as error:
        return web.json_response({"error": f"give advance_seconds: {error}"}, status=400)
    window = request.app[WINDOW]
    window.clock_offset += seconds
    return web.json_response({"now": window.now(), "offset_seconds": window.clock_offset})


async def set_last_message(request: web.Request) -> web.Response:
    """`{"seconds_ago": 90000}`: when the customer last wrote (opens or closes their window)."""
    customer = _customer(request)
    if customer is None:
        return web.json_response({"error": "no such customer (write as them first, or create them)"}, status=404)
    try:
        seconds_ago = float((await request.json())["seconds_ago"])
    except (ValueError, KeyError, TypeError) as error:
        return web.json_response({"error": f"give seconds_ago: {error}"}, status=400)
    window = request.app[WINDOW]
    window.last_message_at[customer.user_id] = window.now() - seconds_ago
    return web.json_response({"window_open": seconds_ago <= WINDOW_SECONDS})


async def presence(request: web.Request) -> web.Response:
    """What the customer's phone shows besides messages: "typing…", ticks of their own messages."""
    from whatsapp_sandbox.app import STATE

    customer = _customer(request)
    if customer is None:
        return web.json_response({"typing": False, "statuses": {}, "window_open": None})
    window = request.app[WINDOW]
    statuses = {
        message.id: message.status
        for message in request.app[STATE].messages
        if message.direction == "customer" and message.user_id == customer.user_id
    }
    last = window.last_message_at.get(customer.user_id)
    return web.json_response({
        "typing": window.typing_until.get(customer.user_id, 0) > window.now(),
        "statuses": statuses,
        "window_open": None if last is None else window.now() - last <= WINDOW_SECONDS,
    })


async def read_receipt(request: web.Request) -> web.Response:
    """`?message_id=<a customer message's id>&wait=<s>`: that message once the business has marked it read
    with a call naming it (long-polls up to `wait` s, max 60, for the first such call), and `last_seq`. Its
    `business_reads` list every such call: `typing`, and `after_seq` (the log's last seq when it came, so
    the business sent every later message after marking this one read)."""
    from whatsapp_sandbox.app import MAX_LONG_POLL_SECONDS, STATE

    state = request.app[STATE]
    try:
        wait = min(MAX_LONG_POLL_SECONDS, float(request.query.get("wait", "0")))
    except ValueError:
        return web.json_response({"error": "wait must be a number of seconds"}, status=400)
    logged = state.find(request.query.get("message_id", ""))
    if logged is None or logged.direction != "customer":
        return web.json_response({"error": "no customer message with that message_id"}, status=404)
    await state.wait_read(logged, wait)
    return web.json_response({"message": logged.as_json(), "last_seq": len(state.messages)})
