"""The sandbox web service: Meta's send endpoint, status webhooks, a customer chat page and a
small JSON API for tests and benchmarks. A development tool; it keeps everything in memory."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any, Dict, Optional

from aiohttp import web

from whatsapp_sandbox import media as sandbox_media
from whatsapp_sandbox import window as sandbox_window
from whatsapp_sandbox.graph_errors import MEDIA_TYPES, GraphError, addressee, validate_send
from whatsapp_sandbox.settings import SandboxSettingError, SandboxSettings
from whatsapp_sandbox.state import (
    BSUID,
    BUSINESS,
    COUNTRY,
    CUSTOMER,
    FAILURE_MODES,
    USERNAME,
    Failure,
    SandboxCustomer,
    SandboxState,
    new_user_id,
    user_id_for_phone,
)
from whatsapp_sandbox.webhooks import WebhookSender, new_message_id

logger = logging.getLogger("whatsapp_sandbox")

STATIC_DIR = Path(__file__).parent / "static"
WA_ID = re.compile(r"^\d{7,15}$")
MAX_LONG_POLL_SECONDS = 60.0

SETTINGS = web.AppKey("settings", SandboxSettings)
STATE = web.AppKey("state", SandboxState)
WEBHOOKS = web.AppKey("webhooks", WebhookSender)
TASKS = web.AppKey("tasks", set)


def create_app(settings: SandboxSettings) -> web.Application:
    # Large enough for a 100 MB document upload (Meta's limit) and a customer's photo as base64.
    app = web.Application(client_max_size=140 * 1024 * 1024)
    app[SETTINGS] = settings
    app[STATE] = SandboxState()
    app[WEBHOOKS] = WebhookSender(settings)
    app[TASKS] = set()
    app.router.add_post(r"/{version:v\d+\.\d+}/{phone_number_id}/messages", send_message)
    app.router.add_get("/sandbox/api/config", get_config)
    app.router.add_get("/sandbox/api/customers", list_customers)
    app.router.add_post("/sandbox/api/customers", create_customer)
    app.router.add_post("/sandbox/api/customers/{wa_id}/messages", customer_writes)
    app.router.add_get("/sandbox/api/messages", list_messages)
    app.router.add_get("/sandbox/api/failures", get_failures)
    app.router.add_post("/sandbox/api/failures", add_failures)
    app.router.add_delete("/sandbox/api/failures", clear_failures)
    app.router.add_get("/sandbox/api/stats", get_stats)
    app.router.add_post("/sandbox/api/reset", reset)
    sandbox_window.install(app)  # 24-hour window, templates, read receipts, typing
    sandbox_media.install(app, _token_refused)
    app.router.add_get("/", chat_page)
    app.router.add_static("/static/", STATIC_DIR)
    app.on_startup.append(_start)
    # Background work ends at shutdown, before aiohttp waits for pending tasks (up to its 60 s
    # shutdown timeout: a SIGTERM used to take that long while a redelivery was pausing).
    app.on_shutdown.append(_stop_background_work)
    app.on_cleanup.append(_stop)
    return app


async def _start(app: web.Application) -> None:
    await app[WEBHOOKS].start()


async def _stop_background_work(app: web.Application) -> None:
    app[STATE].end_polls()  # open long polls (the phone page, tests) answer instead of holding the stop
    for task in app[TASKS]:
        task.cancel()
    await asyncio.gather(*app[TASKS], return_exceptions=True)
    await app[WEBHOOKS].stop_redelivering()


async def _stop(app: web.Application) -> None:
    await _stop_background_work(app)
    await app[WEBHOOKS].close()


def _background(app: web.Application, coroutine: Any) -> None:
    task = asyncio.create_task(coroutine)
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)


def _token_refused(request: web.Request) -> Optional[web.Response]:
    if request.headers.get("Authorization") != f"Bearer {request.app[SETTINGS].access_token}":
        return _graph_error(GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token"))
    return None


def _graph_error(error: GraphError) -> web.Response:
    return web.json_response(error.body(), status=error.http_status)


# --- Meta's side: the Graph API send endpoint ------------------------------------------------


async def send_message(request: web.Request) -> web.Response:
    app = request.app
    settings, state = app[SETTINGS], app[STATE]
    state.send_attempts += 1
    if request.headers.get("Authorization") != f"Bearer {settings.access_token}":
        return _graph_error(GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token"))
    if request.match_info["phone_number_id"] != settings.phone_number_id:
        return _graph_error(
            GraphError(400, 100, "Unsupported post request", f"Object with ID '{request.match_info['phone_number_id']}' does not exist.")
        )
    try:
        payload = await request.json()
    except ValueError:
        return _graph_error(GraphError(400, 100, "Invalid parameter", "The request body is not valid JSON."))
    answered = await sandbox_window.status_call(app, payload)  # read receipts and "typing…"
    if answered is not None:
        state.send_attempts -= 1  # counted in the window's status_calls, not as a message send
        return answered

    failure = state.take_failure()
    if failure is not None and failure.mode != "failed_status":
        return _graph_error(_simulated_error(failure))
    try:
        message_type = validate_send(payload)
        field, address = addressee(payload)
    except GraphError as error:
        return _graph_error(error)
    media_error = sandbox_media.check_media_reference(app, message_type, payload)
    if media_error is not None:
        return _graph_error(media_error)
    if field == "to":
        customer = _phone_customer(state, address)
        contact = {"input": payload["to"], "wa_id": address}
    else:
        customer = state.customers.get(address)
        if customer is None:
            return _graph_error(GraphError(
                400, 100, "Invalid parameter",
                f"Param 'recipient' is not a WhatsApp user of this business: {address[:140]!r}.",
            ))
        contact = {"input": address, "user_id": address}  # no wa_id for a BSUID send, like Meta

    try:
        outside_window = sandbox_window.check_send(app, customer, message_type, payload)
    except GraphError as error:
        return _graph_error(error)
    if outside_window is not None and failure is None:
        failure = Failure(mode="failed_status", code=outside_window)  # accepted, then failed: like Meta

    message_id = new_message_id()
    logged = await state.add(customer, BUSINESS, message_id, message_type, payload)
    sandbox_window.business_sent(app, customer, logged, payload)
    callback_data = payload.get("biz_opaque_callback_data")
    _background(app, _report_statuses(
        app, message_id, customer, failure,
        sent_to_phone=field == "to", callback_data=str(callback_data) if callback_data is not None else None,
    ))
    return web.json_response(
        {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": message_id}]}
    )


def _phone_customer(state: SandboxState, phone: str) -> SandboxCustomer:
    """A phone number's customer; one is made up (with a BSUID) the first time a number is used."""
    return state.customer_with_phone(phone) or state.add_customer(
        SandboxCustomer(user_id=user_id_for_phone(phone), phone=phone)
    )


def _simulated_error(failure: Failure) -> GraphError:
    if failure.mode == "http_429":
        return GraphError.known(failure.code or 130429, http_status=429)
    if failure.mode == "http_500":
        return GraphError.known(failure.code or 1, http_status=500)
    return GraphError.known(failure.code or 131047, http_status=400)


async def _report_statuses(
    app: web.Application, message_id: str, customer: SandboxCustomer, failure: Optional[Failure], **status_fields: Any
) -> None:
    """`status_fields`: `sent_to_phone` and `callback_data` of WebhookSender.status."""
    settings, state, webhooks = app[SETTINGS], app[STATE], app[WEBHOOKS]
    if failure is not None:  # accepted, then failed asynchronously (e.g. 131047)
        error = GraphError.known(failure.code or 131047)
        await asyncio.sleep(settings.status_delays[0] if settings.status_delays else 0.05)
        errors = [{"code": error.code, "title": error.title, "message": error.title, "error_data": {"details": error.details}}]
        await state.update(message_id, status="failed")
        await webhooks.post(webhooks.status(message_id, customer, "failed", errors, **status_fields))
        return
    if settings.status_delays is None:
        await state.update(message_id, status="sent")
        return
    started = time.monotonic()
    for status, delay in zip(("sent", "delivered", "read"), settings.status_delays):
        await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))
        await state.update(message_id, status=status)
        await webhooks.post(webhooks.status(message_id, customer, status, **status_fields))


# --- the customer's side ---------------------------------------------------------------------


async def customer_writes(request: web.Request) -> web.Response:
    """Turns what a customer does into a signed webhook to the connector."""
    app = request.app
    state, webhooks = app[STATE], app[WEBHOOKS]
    chat_id = request.match_info["wa_id"]
    try:
        body = await request.json()
        message = _customer_message(body, app)
        username = _username(body.get("username"))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        return web.json_response({"error": f"bad customer message: {error}"}, status=400)
    if WA_ID.match(chat_id):
        customer = _phone_customer(state, chat_id)
    elif BSUID.match(chat_id) and chat_id in state.customers:
        customer = state.customers[chat_id]
    else:
        return web.json_response(
            {"error": "the customer is a phone number of 7 to 15 digits, or the user_id of a customer created with "
                      "POST /sandbox/api/customers"},
            status=404 if BSUID.match(chat_id) else 400,
        )
    if body.get("profile_name"):
        customer.profile_name = str(body["profile_name"])[:100]
    if username:  # usernames can change at any time
        customer.username = username
    message_id = str(body.get("message_id") or new_message_id())
    message = {"id": message_id, "timestamp": str(int(time.time())), **message}
    payload = webhooks.customer_message(customer, message)

    logged = await state.add(customer, CUSTOMER, message_id, message["type"], payload["entry"][0]["changes"][0]["value"]["messages"][0])
    sandbox_window.customer_wrote(app, customer, logged)
    status = await webhooks.post(payload)
    await state.update(message_id, webhook_status=status)
    redelivering = status != 200
    if redelivering:
        async def remember(result: Optional[int]) -> None:
            await state.update(message_id, webhook_status=result)

        webhooks.redeliver_later(payload, remember)
    return web.json_response({"message_id": message_id, "webhook_status": status, "redelivering": redelivering,
                              "customer": customer.as_json()})


def _username(value: Any) -> Optional[str]:
    if value in (None, ""):
        return None
    username = str(value).lstrip("@")
    if not USERNAME.match(username):
        raise ValueError("username: 3 to 35 letters, digits, periods or underscores, with at least one letter")
    return username


async def create_customer(request: web.Request) -> web.Response:
    """A WhatsApp user: `{"username": "priya.k", "profile_name": "Priya"}` makes one without a phone
    number (a new BSUID, `country` default IN); with `"phone"` the phone's customer gets the username,
    and `"share_phone": false` makes Meta leave the phone out of their webhooks."""
    state = request.app[STATE]
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        username = _username(body.get("username"))
        phone = str(body["phone"]).lstrip("+") if body.get("phone") else None
        if phone is not None and not WA_ID.match(phone):
            raise ValueError("phone must be 7 to 15 digits")
        country = str(body.get("country") or "IN")
        if not COUNTRY.match(country):
            raise ValueError("country must be a two-letter code like IN")
        if phone is None and username is None:
            raise ValueError("a customer without a phone number needs a username")
    except (ValueError, TypeError) as error:
        return web.json_response({"error": f"bad customer: {error}"}, status=400)
    customer = _phone_customer(state, phone) if phone else state.add_customer(
        SandboxCustomer(user_id=new_user_id(country), phone=None)
    )
    customer.username = username or customer.username
    customer.profile_name = str(body.get("profile_name") or customer.profile_name)[:100]
    customer.share_phone = bool(body.get("share_phone", True))
    return web.json_response(customer.as_json(), status=201)


async def list_customers(request: web.Request) -> web.Response:
    return web.json_response({"customers": [c.as_json() for c in request.app[STATE].customers.values()]})


def _customer_message(body: Dict[str, Any], app: web.Application) -> Dict[str, Any]:
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    if "text" in body:
        text = str(body["text"])
        if not text.strip():
            raise ValueError("text is empty")
        return {"type": "text", "text": {"body": text}}
    if "reply" in body:
        reply = body["reply"]
        kind = reply.get("kind", "button_reply")
        if kind not in ("button_reply", "list_reply"):
            raise ValueError("reply.kind must be button_reply or list_reply")
        message: Dict[str, Any] = {
            "type": "interactive",
            "interactive": {"type": kind, kind: {"id": str(reply["id"]), "title": str(reply["title"])}},
        }
        if reply.get("context_id"):
            message["context"] = {"id": str(reply["context_id"])}
        return message
    if "media" in body:
        media = body["media"]
        media_type = media.get("type", "image")
        if media_type not in MEDIA_TYPES:
            raise ValueError(f"media.type must be one of {', '.join(MEDIA_TYPES)}")
        content = sandbox_media.customer_media(app, media)
        for optional in ("caption", "filename"):
            if media.get(optional):
                content[optional] = str(media[optional])
        return {"type": media_type, media_type: content}
    if "location" in body:
        location = body["location"]
        return {"type": "location", "location": {"latitude": float(location["latitude"]), "longitude": float(location["longitude"]),
                                                  **{k: str(location[k]) for k in ("name", "address") if location.get(k)}}}
    if "message" in body:  # any message object (for tests of unusual types)
        message = dict(body["message"])
        if not isinstance(message.get("type"), str):
            raise ValueError("message.type is required")
        return message
    raise ValueError("give one of text, reply, media, location or message")


# --- the JSON API for tests, benchmarks and the page ----------------------------------------


async def get_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "phone_number_id": settings.phone_number_id,
            "display_phone_number": settings.display_phone_number,
            "webhook_url": settings.webhook_url,
        }
    )


async def list_messages(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        after = int(request.query.get("after", "0"))
        wait = min(MAX_LONG_POLL_SECONDS, float(request.query.get("wait", "0")))
    except ValueError:
        return web.json_response({"error": "after must be an integer and wait a number of seconds"}, status=400)
    direction = request.query.get("direction") or None
    if direction not in (None, CUSTOMER, BUSINESS):
        return web.json_response({"error": f"direction must be {CUSTOMER} or {BUSINESS}"}, status=400)
    wa_id = request.query.get("wa_id") or None
    found = await state.wait_for(after, wa_id, direction, wait) if wait > 0 else state.select(after, wa_id, direction)
    return web.json_response({"messages": [message.as_json() for message in found], "last_seq": len(state.messages)})


async def get_failures(request: web.Request) -> web.Response:
    failures = request.app[STATE].failures
    return web.json_response({"pending": [{"mode": f.mode, "code": f.code} for f in failures]})


async def add_failures(request: web.Request) -> web.Response:
    """Make the next `count` sends fail: http_429, http_500, meta_error (HTTP 400 with `code`,
    default 131047) or failed_status (accepted, then a `failed` status webhook with `code`)."""
    try:
        body = await request.json()
        mode = body["mode"]
        count = int(body.get("count", 1))
        code = int(body["code"]) if body.get("code") is not None else None
    except (ValueError, KeyError, TypeError) as error:
        return web.json_response({"error": f"bad failure spec: {error}"}, status=400)
    if mode not in FAILURE_MODES or count < 1:
        return web.json_response({"error": f"mode must be one of {', '.join(FAILURE_MODES)}, count >= 1"}, status=400)
    failures = request.app[STATE].failures
    failures.extend(Failure(mode=mode, code=code) for _ in range(count))
    return web.json_response({"pending": len(failures)})


async def clear_failures(request: web.Request) -> web.Response:
    request.app[STATE].failures.clear()
    return web.json_response({"pending": 0})


async def get_stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"send_attempts": state.send_attempts, "messages": len(state.messages)})


async def reset(request: web.Request) -> web.Response:
    await request.app[STATE].reset()
    return web.json_response({"reset": True})


async def chat_page(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = SandboxSettings.from_env()
    except SandboxSettingError as error:
        raise SystemExit(str(error)) from None
    logger.info(
        "WhatsApp sandbox on http://%s:%s (Graph API base http://%s:%s/v21.0), webhooks to %s",
        settings.host, settings.port, settings.host, settings.port, settings.webhook_url,
    )
    web.run_app(create_app(settings), host=settings.host, port=settings.port, access_log=None, print=None,
                loop=_event_loop())


def _event_loop() -> asyncio.AbstractEventLoop:
    # uvloop (installed with Rasa's Sanic) when present: the sandbox shares the machine with the
    # services it plays Meta for, so its CPU per message counts in every benchmark.
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
