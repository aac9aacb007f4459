"""The webhook as Meta sees it: handshake, signatures, every payload shape, bad input."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Dict

import pytest
import requests

from connectors.privacy import mask_user_id

from tests.connector.support import (
    PHONE_NUMBER_ID,
    SECRETS,
    change,
    encode,
    new_message_id,
    new_wa_id,
    sign,
    text_message,
    texts,
    wait_until,
    webhook,
)

UNREADABLE_REPLY_START = "Thanks! I can only read text for now"


# --- GET verification handshake ---------------------------------------------------------


def test_handshake_with_the_right_token_echoes_the_challenge(host):
    answer = requests.get(host.webhook_url, params={
        "hub.mode": "subscribe", "hub.verify_token": SECRETS["WHATSAPP_VERIFY_TOKEN"], "hub.challenge": "1158201444"})
    assert answer.status_code == 200
    assert answer.text == "1158201444"


@pytest.mark.parametrize("params", [
    {"hub.mode": "subscribe", "hub.verify_token": "wrong-token", "hub.challenge": "1158201444"},
    {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
    {"hub.mode": "unsubscribe", "hub.verify_token": SECRETS["WHATSAPP_VERIFY_TOKEN"], "hub.challenge": "1"},
], ids=["wrong token", "no token", "wrong mode"])
def test_handshake_is_refused_otherwise(host, params):
    answer = requests.get(host.webhook_url, params=params)
    assert answer.status_code == 403
    assert "1158201444" not in answer.text


# --- signatures --------------------------------------------------------------------------


def test_signed_text_message_is_acknowledged_and_answered(host, sandbox):
    wa_id = new_wa_id()
    message = text_message(wa_id, "hello there")
    answer = host.post(webhook(change([message])))
    assert answer.status_code == 200
    replies = sandbox.wait_for_business(wa_id)
    assert texts(replies) == ["echo: hello there"]


@pytest.mark.parametrize("case", ["wrong secret", "missing header", "body altered", "no sha256 prefix", "not hex"])
def test_badly_signed_webhook_is_refused_and_nothing_is_processed(host, sandbox, case):
    wa_id = new_wa_id()
    message = text_message(wa_id, "please refund me")
    body = encode(webhook(change([message])))
    signature = {
        "wrong secret": sign(body, secret="not-the-app-secret"),
        "missing header": None,
        "body altered": sign(body),
        "no sha256 prefix": sign(body)[len("sha256="):],
        "not hex": "sha256=" + "zz" * 32,
    }[case]
    sent = body.replace(b"please refund me", b"please refund ME") if case == "body altered" else body
    answer = host.post(body=sent, signature=signature)
    assert answer.status_code == 403
    time.sleep(0.5)
    assert host.store.inbound(message["id"]) is None
    assert host.journal(wa_id) == []
    assert sandbox.business_messages(wa_id) == []


# --- text, metadata, slashes ----------------------------------------------------------------


def test_customer_metadata_reaches_the_bot(host, sandbox):
    wa_id = new_wa_id()
    message = text_message(wa_id, "kurta size chart?")
    host.post(webhook(change([message], names={wa_id: "Anjali Rao"})))
    sandbox.wait_for_business(wa_id)
    [event] = [e for e in host.journal(wa_id) if e["event"] == "user"]
    assert event["message_id"] == message["id"]
    assert event["metadata"] == {"whatsapp": {
        "wa_id": wa_id, "user_id": None, "username": None, "profile_name": "Anjali Rao", "phone_number_id": PHONE_NUMBER_ID,
        "message_id": message["id"], "type": "text", "timestamp": message["timestamp"]}}


@pytest.mark.parametrize("typed, reaches_bot_as", [
    ("/restart", "restart"),
    ("/ request_refund", "request_refund"),
    ('//request_refund{"order_number": "#2812"}', 'request_refund{"order_number": "#2812"}'),
    ("  /stop", "stop"),
    ("size 40/42 available?", "size 40/42 available?"),
])
def test_free_text_with_a_leading_slash_is_not_an_intent(host, sandbox, typed, reaches_bot_as):
    wa_id = new_wa_id()
    host.post(webhook(change([text_message(wa_id, typed)])))
    sandbox.wait_for_business(wa_id)
    assert [e["text"] for e in host.journal(wa_id) if e["event"] == "user"] == [reaches_bot_as]


# --- buttons and lists -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["button_reply", "list_reply"])
def test_interactive_reply_passes_the_button_payload(host, sandbox, kind):
    wa_id = new_wa_id()
    payload = '/inform_size{"size": "M"}'
    message = {"from": wa_id, "id": new_message_id(), "timestamp": "1764065702", "type": "interactive",
               "context": {"from": "15550001234", "id": "wamid.previous"},
               "interactive": {"type": kind, kind: {"id": payload, "title": "Medium"}}}
    host.post(webhook(change([message])))
    assert texts(sandbox.wait_for_business(wa_id)) == [f"echo: {payload}"]
    [event] = [e for e in host.journal(wa_id) if e["event"] == "user"]
    assert event["metadata"]["whatsapp"]["type"] == "interactive"
    assert event["metadata"]["whatsapp"]["reply"] == {"id": payload, "title": "Medium"}


def test_template_quick_reply_passes_its_payload(host, sandbox):
    wa_id = new_wa_id()
    message = {"from": wa_id, "id": new_message_id(), "timestamp": "1764065702", "type": "button",
               "button": {"payload": "/track_order", "text": "Track my order"}}
    host.post(webhook(change([message])))
    assert texts(sandbox.wait_for_business(wa_id)) == ["echo: /track_order"]


# --- what the bot cannot read ------------------------------------------------------------------

UNREADABLE = {
    "image": ({"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "abc", "caption": "torn kurta"}, "[image] torn kurta"),
    "audio": ({"id": "1003383421387256", "mime_type": "audio/ogg; codecs=opus", "sha256": "abc", "voice": True}, "[audio]"),
    "video": ({"id": "1166846181421424", "mime_type": "video/mp4", "sha256": "abc"}, "[video]"),
    "document": ({"id": "1003383421387257", "mime_type": "application/pdf", "sha256": "abc", "filename": "invoice.pdf",
                  "caption": "my bill"}, "[document] invoice.pdf my bill"),
    "sticker": ({"id": "1003383421387258", "mime_type": "image/webp", "sha256": "abc", "animated": False}, "[sticker]"),
    "location": ({"latitude": 19.076, "longitude": 72.8777, "name": "Home", "address": "Bandra West, Mumbai"},
                 "[location] Home, Bandra West, Mumbai (19.076, 72.8777)"),
    "contacts": ([{"name": {"formatted_name": "Rahul Verma", "first_name": "Rahul"},
                   "phones": [{"phone": "+91 98200 00000", "wa_id": "919820000000", "type": "CELL"}]}], "[contacts] Rahul Verma"),
}


@pytest.mark.parametrize("message_type", list(UNREADABLE))
def test_unreadable_message_gets_a_polite_reply_and_is_kept_for_agents(host, sandbox, message_type):
    wa_id = new_wa_id()
    content, expected_text = UNREADABLE[message_type]
    message = {"from": wa_id, "id": new_message_id(), "timestamp": "1764065702", "type": message_type, message_type: content}
    assert host.post(webhook(change([message]))).status_code == 200

    [reply] = sandbox.wait_for_business(wa_id)
    assert reply["content"]["text"]["body"].startswith(UNREADABLE_REPLY_START)
    user_events = [e for e in host.journal(wa_id) if e["event"] == "user"]
    assert [e["text"] for e in user_events] == [expected_text]
    details = user_events[0]["metadata"]["whatsapp"]
    assert details["type"] == message_type and details["message_id"] == message["id"]
    if message_type in ("image", "audio", "video", "document", "sticker"):
        assert details["media"]["id"] == content["id"]
        assert details["media"]["mime_type"] == content["mime_type"]
        assert details["media"].get("caption") == content.get("caption")
    stored = host.store.wait_for_state(message["id"], "done")
    assert json.loads(stored["raw"]) == message


def test_unreadable_message_in_a_handed_off_conversation_gets_no_reply(host, sandbox):
    wa_id = new_wa_id()
    host.pause(wa_id)
    message = {"from": wa_id, "id": new_message_id(), "timestamp": "1764065702", "type": "image",
               "image": {"id": "1479537139650974", "mime_type": "image/jpeg", "sha256": "abc", "caption": "see this"}}
    host.post(webhook(change([message])))
    host.store.wait_for_state(message["id"], "done")
    assert [e["text"] for e in host.journal(wa_id)] == ["[image] see this"]
    time.sleep(0.3)
    assert sandbox.business_messages(wa_id) == []


@pytest.mark.parametrize("message", [
    {"type": "reaction", "reaction": {"message_id": "wamid.bot-reply", "emoji": ""}},
    {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}]},
    {"type": "poll_vote_from_the_future", "poll_vote_from_the_future": {"option": 2}},
], ids=["removed reaction", "unsupported", "unknown type"])
def test_removed_reactions_and_unknown_types_are_acknowledged_kept_and_not_answered(host, sandbox, message):
    wa_id = new_wa_id()
    message = {"from": wa_id, "id": new_message_id(), "timestamp": "1764065702", **message}
    assert host.post(webhook(change([message]))).status_code == 200
    stored = host.store.wait_for_state(message["id"], "ignored", timeout=5)
    assert json.loads(stored["raw"]) == message
    # a later text from the same customer is answered normally, and only that
    host.post(webhook(change([text_message(wa_id, "hello?")])))
    assert texts(sandbox.wait_for_business(wa_id)) == ["echo: hello?"]
    assert [e["text"] for e in host.journal(wa_id) if e["event"] == "user"] == ["hello?"]
    assert f"WhatsApp {message['type']} message {message['id']}" in host.process.logs()


# --- reactions -----------------------------------------------------------------------------------


def reaction(wa_id: str, to_message_id: str, emoji: str) -> Dict[str, Any]:
    return {"from": wa_id, "id": new_message_id(), "timestamp": "1764065702", "type": "reaction",
            "reaction": {"message_id": to_message_id, "emoji": emoji}}


def answered(host, sandbox, wa_id: str, text: str = "is cod available?") -> str:
    """The customer writes, the bot answers; returns the WhatsApp id of the bot's answer."""
    before = len(sandbox.business_messages(wa_id))
    host.post(webhook(change([text_message(wa_id, text)])))
    return sandbox.wait_for_business(wa_id, at_least=before + 1)[-1]["id"]


def test_a_reaction_to_a_bot_message_reaches_the_bot_as_a_reaction_and_gets_no_reply(host, sandbox):
    wa_id = new_wa_id()
    bot_message = answered(host, sandbox, wa_id)
    thumbs_up = reaction(wa_id, bot_message, "\U0001F44D\U0001F3FD")
    host.post(webhook(change([thumbs_up])))
    host.store.wait_for_state(thumbs_up["id"], "done")
    seen = [e for e in host.journal(wa_id) if e["event"] == "user"][-1]
    assert seen["text"] == "\U0001F44D\U0001F3FD" and seen["message_id"] == thumbs_up["id"]
    whatsapp = seen["metadata"]["whatsapp"]
    assert whatsapp["type"] == "reaction"  # only the connector can mark a message as a reaction
    assert whatsapp["reaction"] == {"message_id": bot_message, "emoji": "\U0001F44D\U0001F3FD"}
    assert len(sandbox.business_messages(wa_id)) == 1  # the connector adds no reply of its own
    # the conversation goes on as usual
    host.post(webhook(change([text_message(wa_id, "and what about returns?")])))
    assert texts(sandbox.wait_for_business(wa_id, at_least=2))[-1] == "echo: and what about returns?"


def test_a_reaction_to_a_message_the_bot_did_not_send_is_kept_but_not_passed_on(host, sandbox):
    wa_id = new_wa_id()
    answered(host, sandbox, wa_id)
    to_own_message = reaction(wa_id, "wamid.the-customers-own-message", "\u2764\ufe0f")
    host.post(webhook(change([to_own_message])))
    stored = host.store.wait_for_state(to_own_message["id"], "ignored")
    assert json.loads(stored["raw"]) == to_own_message
    assert [e["text"] for e in host.journal(wa_id) if e["event"] == "user"] == ["is cod available?"]
    assert "is to a message the bot did not send" in host.process.logs()


def test_a_reaction_in_a_handed_off_conversation_goes_nowhere_near_the_bot(host, sandbox):
    wa_id = new_wa_id()
    bot_message = answered(host, sandbox, wa_id)
    host.pause(wa_id)
    thumbs_down = reaction(wa_id, bot_message, "\U0001F44E")
    host.post(webhook(change([thumbs_down])))
    host.store.wait_for_state(thumbs_down["id"], "ignored")
    assert [e["text"] for e in host.journal(wa_id) if e["event"] == "user"] == ["is cod available?"]
    assert len(sandbox.business_messages(wa_id)) == 1


def test_a_customer_typing_a_reaction_payload_sends_text_not_a_reaction(host, sandbox):
    wa_id = new_wa_id()
    host.post(webhook(change([text_message(wa_id, '/affirm{"reaction": "positive"}')])))
    sandbox.wait_for_business(wa_id)
    [seen] = [e for e in host.journal(wa_id) if e["event"] == "user"]
    assert seen["text"] == 'affirm{"reaction": "positive"}'  # no intent payload, no reaction metadata
    assert seen["metadata"]["whatsapp"]["type"] == "text"


# --- several entries and changes ---------------------------------------------------------------


def test_every_entry_and_change_of_a_payload_is_handled(host, sandbox):
    customers = [new_wa_id() for _ in range(4)]
    messages = [text_message(wa_id, f"question {index}") for index, wa_id in enumerate(customers)]
    payload = webhook(entries=[
        [change([messages[0]]), change([messages[1]])],
        [change([messages[2]]), {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}],
        [change([messages[3]])],
    ])
    assert host.post(payload).status_code == 200
    for index, wa_id in enumerate(customers):
        assert texts(sandbox.wait_for_business(wa_id)) == [f"echo: question {index}"]


def test_several_messages_in_one_change_are_all_answered_in_order(host, sandbox):
    wa_id = new_wa_id()
    messages = [text_message(wa_id, f"part {n}") for n in range(3)]
    host.post(webhook(change(messages)))
    assert texts(sandbox.wait_for_business(wa_id, at_least=3)) == ["echo: part 0", "echo: part 1", "echo: part 2"]


# --- statuses ---------------------------------------------------------------------------------


def status(message_id: str, wa_id: str, state: str, **extra):
    return {"id": message_id, "status": state, "timestamp": "1764065703", "recipient_id": wa_id, **extra}


def test_statuses_are_recorded_and_forwarded_to_the_inbox_as_received(host, inbox):
    wa_id, message_id = new_wa_id(), new_message_id()
    statuses = [status(message_id, wa_id, "sent", conversation={"id": "c1", "origin": {"type": "service"}}),
                status(message_id, wa_id, "delivered")]
    assert host.post(webhook(change(statuses=statuses))).status_code == 200
    assert [row["status"] for row in host.store.statuses(message_id)] == ["sent", "delivered"]
    forwarded = wait_until(lambda: len(inbox.statuses_for(message_id)) >= 2 and inbox.statuses_for(message_id))
    assert [{k: v for k, v in s.items() if not k.startswith("_")} for s in forwarded] == statuses
    assert {s["_authorization"] for s in forwarded} == {"Bearer test-inbox-bot-token"}
    assert {s["_path"] for s in forwarded} == {"/api/v1/whatsapp/statuses"}


def test_failed_status_is_logged_with_metas_code_and_title(host, inbox):
    wa_id, message_id = new_wa_id(), new_message_id()
    failed = status(message_id, wa_id, "failed", errors=[{
        "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}])
    assert host.post(webhook(change(statuses=[failed]))).status_code == 200
    # The customer's number is masked at INFO and above (connectors/privacy.py).
    assert wait_until(lambda: f"WhatsApp message {message_id} to {mask_user_id(wa_id)} failed: code 131047 "
                      "(Re-engagement message)" in host.process.logs())
    assert wa_id not in host.process.logs()
    assert wait_until(lambda: inbox.statuses_for(message_id))[0]["errors"][0]["code"] == 131047


def test_statuses_reach_the_inbox_later_when_it_was_down(host, inbox):
    wa_id, message_id = new_wa_id(), new_message_id()
    inbox.fail_statuses[message_id] = 2
    inbox.hold = threading.Event()  # the inbox answers nothing until released
    try:
        # Meta gets its 200 while the inbox is still silent: the webhook is not held up by the inbox.
        assert host.post(webhook(change(statuses=[status(message_id, wa_id, "read")]))).status_code == 200
    finally:
        inbox.hold.set()
        inbox.hold = None
    delivered = wait_until(lambda: [s for s in inbox.statuses_for(message_id) if s["_answered"] == 200], timeout=20)
    assert len(delivered) == 1
    assert [s["_answered"] for s in inbox.statuses_for(message_id)] == [503, 503, 200]


def test_duplicate_status_deliveries_are_recorded_once(host):
    wa_id, message_id = new_wa_id(), new_message_id()
    payload = webhook(change(statuses=[status(message_id, wa_id, "delivered")]))
    assert host.post(payload).status_code == 200
    assert host.post(payload).status_code == 200
    assert len(host.store.statuses(message_id)) == 1


# --- bad input: acknowledged, kept, never a 5xx -------------------------------------------------


@pytest.mark.parametrize("body, reason", [
    (b'{"object": "whatsapp_business_account", "entry": [', "not JSON"),
    (b"", "empty body"),
    (b"   ", "empty body"),
    ('{"object": "whatsapp_business_account", "note": "caf\u00e9"}'.encode("latin-1"), "not UTF-8"),
    (b"[1, 2, 3]", "not an object"),
    (b'{"object": "page", "entry": []}', "expected 'whatsapp_business_account'"),
    (b'{"object": "whatsapp_business_account"}', "not a webhook envelope"),
], ids=["malformed JSON", "empty", "blank", "non-UTF-8", "JSON array", "other object", "no entries"])
def test_unreadable_payload_is_acknowledged_and_kept_as_dead_letter(host, body, reason):
    before = len(host.store.dead_letters())
    answer = host.post(body=body)
    assert answer.status_code == 200
    letters = host.store.dead_letters()
    assert len(letters) == before + 1
    assert reason in letters[-1]["reason"]
    assert bytes(letters[-1]["body"]) == body


def test_one_unreadable_message_does_not_sink_its_neighbours(host, sandbox):
    wa_id = new_wa_id()
    broken = {"id": new_message_id(), "timestamp": "1764065702", "type": "text", "text": {"body": "no sender"}}
    good = text_message(wa_id, "I am fine")
    before = len(host.store.dead_letters())
    assert host.post(webhook(change([broken, good]))).status_code == 200
    assert texts(sandbox.wait_for_business(wa_id)) == ["echo: I am fine"]
    letters = host.store.dead_letters()
    assert len(letters) == before + 1
    assert "unreadable message" in letters[-1]["reason"] and json.loads(letters[-1]["body"]) == broken


def test_a_3_mb_payload_is_acknowledged_quickly_and_handled(host, sandbox):
    wa_id = new_wa_id()
    message = text_message(wa_id, "big one")
    payload = webhook(change([message]))
    payload["entry"][0]["changes"][0]["value"]["future_field"] = "x" * (3 * 1024 * 1024)
    body = encode(payload)
    assert len(body) > 3_000_000
    answer = host.post(body=body)
    assert answer.status_code == 200  # how fast: bench/, not a timed test
    assert texts(sandbox.wait_for_business(wa_id)) == ["echo: big one"]


def test_a_3_mb_unreadable_payload_becomes_a_dead_letter(host):
    body = b'{"object": "whatsapp_business_account", "entry": "' + b"\xff" * (3 * 1024 * 1024) + b'"}'
    before = len(host.store.dead_letters())
    assert host.post(body=body).status_code == 200
    letters = host.store.dead_letters()
    assert len(letters) == before + 1 and len(bytes(letters[-1]["body"])) == len(body)
