"""Hand-offs of customers WhatsApp identifies only by a business-scoped user id (no phone number),
and the action server's log during a hand-off: no full phone number, BSUID or bot token at INFO."""
from __future__ import annotations

import logging

import pytest
from aiohttp import web
from rasa_sdk.events import ConversationPaused

from actions.handoff import ActionHandoff
from tests.actions.conftest import make_tracker, user_event
from tests.actions.fake_inbox import FakeInbox

BSUID = "US.13491208655302741918"
PHONE = "919876543210"
TOKEN = "bot-secret-9f8e7d6c5b4a"


def metadata(**whatsapp):
    base = {"phone_number_id": "106540352242922", "message_id": "wamid.in1", "type": "text", "timestamp": "1764065702"}
    return {"whatsapp": {**base, **whatsapp}}


class EchoingInbox(FakeInbox):
    """Refuses the hand-off with a FastAPI-style 422 that echoes the input back (phone included)."""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        detail = [{"loc": ["body", "customer", "whatsapp_id"], "msg": "bad", "input": body["customer"]}]
        return web.json_response({"detail": detail}, status=422)


@pytest.fixture
async def inbox(monkeypatch):
    server = await FakeInbox(token=TOKEN).start()
    monkeypatch.setenv("INBOX_URL", server.url)
    monkeypatch.setenv("INBOX_BOT_TOKEN", TOKEN)
    yield server
    await server.stop()


def request_human(sender_id, meta):
    return make_tracker(
        [user_event("I want to talk to a person", "request_human", metadata=meta)], sender_id=sender_id
    )


async def test_a_customer_without_a_phone_is_handed_off_under_the_bsuid(inbox, dispatcher):
    tracker = request_human(BSUID, metadata(user_id=BSUID, username="kesar.fan", profile_name=None))
    events = await ActionHandoff().run(dispatcher, tracker, {})

    [payload] = inbox.requests
    assert payload["conversation_id"] == BSUID
    assert payload["customer"] == {
        "whatsapp_id": BSUID, "name": None, "phone_number_id": "106540352242922",
        "bsuid": BSUID, "username": "kesar.fan",
    }
    assert "Anita" in dispatcher.messages[0]["text"]
    assert events[-1] == ConversationPaused()


async def test_a_customer_with_phone_and_bsuid_keeps_the_phone_as_whatsapp_id(inbox, dispatcher):
    tracker = request_human(PHONE, metadata(wa_id=PHONE, user_id=BSUID, username="kesar.fan", profile_name="Priya"))
    await ActionHandoff().run(dispatcher, tracker, {})
    customer = inbox.requests[0]["customer"]
    assert customer["whatsapp_id"] == PHONE and customer["bsuid"] == BSUID and customer["name"] == "Priya"


@pytest.mark.parametrize("sender_id, meta", [
    (PHONE, metadata(wa_id=PHONE, user_id=BSUID, profile_name="Priya")),
    (BSUID, metadata(user_id=BSUID, username="kesar.fan")),
], ids=["phone", "bsuid-only"])
@pytest.mark.parametrize("refusing", [False, True], ids=["accepted", "refused-422-echo"])
async def test_no_full_phone_bsuid_or_token_in_the_info_log(monkeypatch, dispatcher, caplog, sender_id, meta, refusing):
    server = await (EchoingInbox if refusing else FakeInbox)(token=TOKEN).start()
    monkeypatch.setenv("INBOX_URL", server.url)
    monkeypatch.setenv("INBOX_BOT_TOKEN", TOKEN)
    try:
        with caplog.at_level(logging.DEBUG):
            await ActionHandoff().run(dispatcher, request_human(sender_id, meta), {})
    finally:
        await server.stop()
    info = "\n".join(record.getMessage() for record in caplog.records if record.levelno >= logging.INFO)
    debug = "\n".join(record.getMessage() for record in caplog.records if record.levelno < logging.INFO)
    assert "hand-off hf_" in info  # the hand-off is logged ...
    for secret in (PHONE, BSUID, TOKEN, "98765 43210"):
        assert secret not in info  # ... without the customer's ids or the token
    assert "+91 98•••••210" in info or "US.13••••918" in info
    assert sender_id in debug  # full only at DEBUG
    assert TOKEN not in debug
