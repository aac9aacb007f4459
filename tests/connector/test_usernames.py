"""Customers with WhatsApp usernames: business-scoped user ids (BSUIDs) and no phone number.

Since 2026 Meta sends every customer's BSUID (`messages[].from_user_id`, `contacts[].user_id`,
`contacts[].profile.username`) and may leave the phone out (`from`, `contacts[].wa_id`,
`statuses[].recipient_id`). The conversation key is the phone when known, else the BSUID; replies
to a customer without a known phone go to `"recipient": <BSUID>`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Dict, List, Optional

import pytest
import requests

from connectors.customer_identities import CustomerIdentities
from connectors.graph_api import MetaError, SendResult
from connectors.inbound import InboundMessage, parse_webhook
from connectors.outbound_messages import custom_message, text_messages
from connectors.output import MessageSender
from connectors.store import WhatsAppStore
from tests.connector.support import PHONE_NUMBER_ID, SECRETS, encode, new_message_id, new_wa_id, texts, wait_until

BSUID = "IN.13491208655302741918"
PARENT_BSUID = "US.ENT.11815799212886844830"
PHONE = "919876543210"

# --- Meta-shaped payloads (field names as in Meta's "Business-scoped user IDs" documentation) ---


def _value(**parts: Any) -> Dict[str, Any]:
    return {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001234", "phone_number_id": PHONE_NUMBER_ID}, **parts}


def _webhook(value: Dict[str, Any]) -> bytes:
    return encode({"object": "whatsapp_business_account",
                   "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]})


def customer_text(text: str, *, phone: Optional[str] = PHONE, user_id: Optional[str] = BSUID,
                  username: Optional[str] = None, name: str = "Priya Sharma",
                  message_id: Optional[str] = None) -> bytes:
    """A text message as Meta sends it: phone fields only when Meta shares the phone."""
    profile: Dict[str, Any] = {"name": name}
    if username:
        profile["username"] = username
    contact: Dict[str, Any] = {"profile": profile}
    message: Dict[str, Any] = {"id": message_id or new_message_id(), "timestamp": "1775000000", "type": "text",
                               "text": {"body": text}}
    if phone:
        contact["wa_id"] = message["from"] = phone
    if user_id:
        contact["user_id"] = message["from_user_id"] = user_id
    return _webhook(_value(contacts=[contact], messages=[message]))


def delivered_status(wamid: str, *, phone: Optional[str] = None, user_id: str = BSUID) -> bytes:
    status: Dict[str, Any] = {"id": wamid, "status": "delivered", "timestamp": "1775000001",
                              "recipient_user_id": user_id}
    contact: Dict[str, Any] = {"user_id": user_id, "profile": {"username": "priya.k"}}
    if phone:
        status["recipient_id"] = contact["wa_id"] = phone
    return _webhook(_value(contacts=[contact], statuses=[status]))


# --- parsing -----------------------------------------------------------------------------------


def test_a_message_with_phone_and_bsuid_is_keyed_by_the_phone_and_carries_both():
    [received] = parse_webhook(customer_text("hi")).messages
    assert received.message.wa_id == PHONE
    assert {
        "wa_id": PHONE, "user_id": BSUID, "username": None, "profile_name": "Priya Sharma",
        "phone_number_id": PHONE_NUMBER_ID,
    }.items() <= received.message.rasa_metadata()["whatsapp"].items()


def test_a_message_without_a_phone_is_keyed_by_the_bsuid_and_carries_the_username():
    [received] = parse_webhook(customer_text("hi", phone=None, username="priya.k")).messages
    assert received.message.wa_id == BSUID
    whatsapp = received.message.rasa_metadata()["whatsapp"]
    assert (whatsapp["wa_id"], whatsapp["user_id"], whatsapp["username"], whatsapp["profile_name"]) == (
        None, BSUID, "priya.k", "Priya Sharma")
    assert received.message.text == "hi"


@pytest.mark.parametrize("username, kept", [
    ("priya.k", "priya.k"), ("@priya_k", "priya_k"), ("priya k", None), ("x" * 65, None), ("a\u0000b", None), ("", None),
])
def test_a_username_that_does_not_look_like_one_is_left_out_and_the_message_goes_through(username, kept):
    [received] = parse_webhook(customer_text("hi", phone=None, username=username)).messages
    assert received.message.username == kept


def test_a_parent_bsuid_is_a_bsuid():
    [received] = parse_webhook(customer_text("hi", phone=None, user_id=PARENT_BSUID)).messages
    assert received.message.wa_id == PARENT_BSUID


@pytest.mark.parametrize("garbage", [
    "98765432109876543210",  # no country code
    "in.13491208655302741918",  # country code in lower case
    "IN.",  # nothing after the dot
    "IN.1349-1208",  # not alphanumeric
    "IN." + "1" * 129,  # longer than Meta's 128
    "IN.1 OR 1=1",
])
def test_a_malformed_bsuid_is_a_dead_letter_with_a_clear_reason(garbage):
    parsed = parse_webhook(customer_text("hi", phone=None, user_id=garbage))
    assert parsed.messages == []
    [rejected] = parsed.rejected
    assert "'from_user_id' is not a business-scoped user id" in rejected.reason
    assert garbage not in rejected.reason  # masked: the reason is logged


def test_a_message_from_nobody_is_a_dead_letter():
    parsed = parse_webhook(customer_text("hi", phone=None, user_id=None))
    [rejected] = parsed.rejected
    assert "neither 'from' nor 'from_user_id'" in rejected.reason


def test_a_status_with_only_recipient_user_id_is_read():
    [status] = parse_webhook(delivered_status("wamid.out1")).statuses
    assert (status.recipient_id, status.recipient_user_id, status.recipient_phone) == (BSUID, BSUID, None)
    assert "recipient_id" not in status.raw  # forwarded to the inbox as Meta sent it


def test_a_status_naming_no_recipient_is_a_dead_letter():
    body = _webhook(_value(statuses=[{"id": "wamid.x", "status": "sent", "timestamp": "1"}]))
    [rejected] = parse_webhook(body).rejected
    assert "neither 'recipient_id' nor 'recipient_user_id'" in rejected.reason


def test_messages_stored_before_bsuids_still_load():
    old_record = {"message_id": "wamid.old", "wa_id": PHONE, "profile_name": "Priya", "phone_number_id": "1",
                  "timestamp": "1", "type": "text", "action": "converse", "text": "hi", "details": {}}
    message = InboundMessage.from_record(old_record)
    assert (message.wa_id, message.phone, message.user_id) == (PHONE, PHONE, None)


# --- the BSUID <-> phone map (SQLite and PostgreSQL) ------------------------------------------


@pytest.fixture
def store(store_url):
    store = WhatsAppStore(store_url)
    store.create_schema()  # creates wa_customer_identities with the store's tables
    yield store
    store.close()


def _resolved(identities: CustomerIdentities, body: bytes):
    return identities.resolve(parse_webhook(body))


def test_a_customer_whose_phone_disappears_stays_in_the_same_conversation(store):
    identities = CustomerIdentities(store)
    first = _resolved(identities, customer_text("hi", username="priya.k")).messages[0].message
    later = _resolved(identities, customer_text("still there?", phone=None, username="priya.kapoor")).messages[0]
    assert first.wa_id == later.message.wa_id == PHONE
    whatsapp = later.message.rasa_metadata()["whatsapp"]
    # The username changed (display only); the phone is the remembered one.
    assert (whatsapp["wa_id"], whatsapp["user_id"], whatsapp["username"]) == (PHONE, BSUID, "priya.kapoor")

    # And the connector's queue holds it under the phone: the same customer queue as before.
    store.persist_webhook([later], [], [], forward_statuses=False)
    claimed = store.claim_next(PHONE, "test-owner", 10)
    assert claimed is not None and claimed.message.text == "still there?"


def _longest_bsuid() -> str:
    """Meta's format at its longest: a parent BSUID with 128 characters after `US.ENT.`."""
    stamp = str(time.time_ns())
    return "US.ENT." + stamp + "9" * (128 - len(stamp))


def _keep_everything_of(store, user_id: str) -> None:
    parsed = CustomerIdentities(store).resolve(parse_webhook(customer_text("hi", phone=None, user_id=user_id)))
    statuses = CustomerIdentities(store).resolve(parse_webhook(delivered_status("wamid.l" + user_id[-12:], user_id=user_id)))
    store.persist_webhook(parsed.messages, statuses.statuses, [], forward_statuses=False)
    store.record_outbound(recipient_id=user_id, kind="text", request={"recipient": user_id}, wamid="wamid.o" + user_id[-12:],
                          http_status=200, error_code=None, error_title=None, attempts=1)
    assert store.claim_next(user_id, "test-owner", 10).message.user_id == user_id
    assert store.sent_to("wamid.o" + user_id[-12:], user_id)


def test_the_longest_bsuid_fits_every_store_column(store):
    _keep_everything_of(store, _longest_bsuid())


def test_a_postgresql_store_with_the_old_64_character_columns_is_widened_at_start(store_url):
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite does not enforce column lengths")
    old = WhatsAppStore(store_url)
    old.create_schema()
    with old.engine.begin() as connection:
        for table, column in (("wa_inbound_messages", "wa_id"), ("wa_statuses", "recipient_id"),
                              ("wa_outbound_messages", "recipient_id")):
            connection.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE VARCHAR(64)")
    old.close()
    upgraded = WhatsAppStore(store_url)
    upgraded.create_schema()
    try:
        _keep_everything_of(upgraded, _longest_bsuid())
    finally:
        upgraded.close()


def test_a_customer_never_seen_with_a_phone_is_keyed_by_the_bsuid_and_their_statuses_match(store):
    identities = CustomerIdentities(store)
    user_id = "IN.77" + str(time.time_ns())[-10:]
    message = _resolved(identities, customer_text("hi", phone=None, user_id=user_id)).messages[0].message
    assert message.wa_id == user_id
    [status] = _resolved(identities, delivered_status("wamid.out2", user_id=user_id)).statuses
    assert status.recipient_id == user_id
    # A status that carries both teaches the phone; the next phone-less status is matched to it.
    _resolved(identities, delivered_status("wamid.out3", phone="919811112222", user_id=user_id))
    [status] = _resolved(identities, delivered_status("wamid.out4", user_id=user_id)).statuses
    assert (status.recipient_id, status.recipient_phone) == ("919811112222", "919811112222")


def test_a_customer_first_seen_without_a_phone_keeps_the_bsuid_conversation_when_the_phone_appears(store):
    """Switching to the phone key would start a new conversation in Rasa and the inbox; the phone is
    carried in the metadata instead, and every process agrees."""
    user_id = "IN.88" + str(time.time_ns())[-10:]
    identities = CustomerIdentities(store)
    first = _resolved(identities, customer_text("hi", phone=None, user_id=user_id, username="meera.j")).messages[0].message
    assert first.wa_id == user_id

    later = _resolved(identities, customer_text("my number is shared now", phone="919822223333", user_id=user_id))
    message = later.messages[0].message
    assert message.wa_id == user_id
    assert message.rasa_metadata()["whatsapp"]["wa_id"] == "919822223333"

    another_process = CustomerIdentities(store)
    again = _resolved(another_process, customer_text("and again", phone=None, user_id=user_id)).messages[0].message
    assert (again.wa_id, again.phone) == (user_id, "919822223333")


def test_a_phone_customer_is_never_moved_to_the_bsuid_key(store):
    user_id = "IN.99" + str(time.time_ns())[-10:]
    identities = CustomerIdentities(store)
    assert _resolved(identities, customer_text("hi", phone="919833334444", user_id=user_id)).messages[0].message.wa_id \
        == "919833334444"
    hidden = _resolved(CustomerIdentities(store), customer_text("phone hidden now", phone=None, user_id=user_id))
    assert hidden.messages[0].message.wa_id == "919833334444"
    assert identities.keyed_by_bsuid([user_id]) == set()


# --- replies ---------------------------------------------------------------------------------


def test_replies_go_to_the_phone_with_to_and_to_a_bsuid_with_recipient():
    [to_phone] = text_messages(PHONE, "hello")
    [to_bsuid] = text_messages(BSUID, "hello")
    assert to_phone.body["to"] == PHONE and "recipient" not in to_phone.body
    assert to_bsuid.body["recipient"] == BSUID and "to" not in to_bsuid.body
    assert custom_message(BSUID, {"type": "template", "template": {"name": "x"}}).body["recipient"] == BSUID
    # A custom message that names its addressee keeps it.
    assert "recipient" not in custom_message(BSUID, {"to": PHONE, "type": "text"}).body


class _Meta:
    """Stands in for the Graph API client: 131062 for BSUID-only sends of the test's message."""

    def __init__(self) -> None:
        self.bodies: List[Dict[str, Any]] = []

    async def send(self, body: Dict[str, Any]) -> SendResult:
        self.bodies.append(body)
        if "to" not in body:
            error = MetaError(131062, "Business-scoped User ID recipients are not supported for this message.")
            return SendResult(wamid=None, http_status=400, error=error, attempts=1)
        return SendResult(wamid=f"wamid.sent{len(self.bodies)}", http_status=200, error=None, attempts=1)


def test_131062_goes_to_the_phone_when_it_has_become_known(store):
    CustomerIdentities(store).remember([(BSUID, PHONE)])
    meta = _Meta()
    message = custom_message(BSUID, {"type": "template", "template": {"name": "otp"}})
    result = asyncio.run(MessageSender(meta, store).send(BSUID, message))
    assert result.ok
    assert [("to" in body, body.get("recipient")) for body in meta.bodies] == [(False, BSUID), (True, BSUID)]
    assert meta.bodies[1]["to"] == PHONE


def test_131062_without_a_known_phone_is_logged_clearly_and_not_raised(store, caplog):
    meta = _Meta()
    user_id = "IN.88" + str(time.time_ns())[-10:]
    message = custom_message(user_id, {"type": "template", "template": {"name": "otp"}})
    with caplog.at_level(logging.INFO, logger="connectors.output"):
        result = asyncio.run(MessageSender(meta, store).send(user_id, message))
    assert not result.ok and result.error.code == 131062 and len(meta.bodies) == 1
    [line] = [r.getMessage() for r in caplog.records if "131062" in r.getMessage()]
    assert "cannot be sent to a business-scoped user id" in line
    assert user_id not in line and "IN.88" in line  # masked at ERROR


# --- end to end through the sandbox (connector in a real server, scripted bot) ----------------


def _create_customer(sandbox, **body: Any) -> Dict[str, Any]:
    answer = requests.post(f"{sandbox.api}/customers", json=body, timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _says(sandbox, chat_id: str, **body: Any) -> Dict[str, Any]:
    answer = requests.post(f"{sandbox.api}/customers/{chat_id}/messages", json=body, timeout=15)
    answer.raise_for_status()
    return answer.json()


def test_a_customer_without_a_phone_gets_answers_addressed_to_their_bsuid(sandbox, host, inbox):
    customer = _create_customer(sandbox, username="meera.k", profile_name="Meera")
    user_id = customer["user_id"]
    assert customer["wa_id"] is None and user_id.startswith("IN.")

    sent = _says(sandbox, user_id, text="do you have sunscreen?")
    assert sent["webhook_status"] == 200
    [reply] = sandbox.wait_for_business(user_id)
    assert texts([reply]) == ["echo: do you have sunscreen?"]
    assert reply["content"]["recipient"] == user_id and "to" not in reply["content"]

    # The scripted bot notes its reply just after sending it: the sandbox can have the reply first.
    assert wait_until(lambda: len(host.journal(user_id)) == 2)
    [user_turn, _bot] = host.journal(user_id)
    whatsapp = user_turn["metadata"]["whatsapp"]
    assert (whatsapp["wa_id"], whatsapp["user_id"], whatsapp["username"], whatsapp["profile_name"]) == (
        None, user_id, "meera.k", "Meera")

    # Its statuses carry only recipient_user_id; they are stored under the conversation key. They are the
    # bot reply's, which the inbox does not act on: not forwarded (test_status_recipients.py).
    stored = wait_until(lambda: len(host.store.statuses(reply["id"])) == 3 and host.store.statuses(reply["id"]))
    assert {row["recipient_id"] for row in stored} == {user_id}
    assert {row["forward_state"] for row in stored} == {"not_needed"}
    # A message the inbox sends this customer (straight to the Graph API, with its send key): its statuses,
    # with only recipient_user_id, are forwarded to the inbox as Meta sent them.
    agent = requests.post(f"{sandbox.base_url}/v21.0/{PHONE_NUMBER_ID}/messages", timeout=5, headers={
        "Authorization": f"Bearer {SECRETS['WHATSAPP_ACCESS_TOKEN']}"}, json={
        "messaging_product": "whatsapp", "recipient": user_id, "type": "text", "text": {"body": "Agent here"},
        "biz_opaque_callback_data": "kl-reply-0123456789abcdef0123456789abcdef"})
    assert agent.status_code == 200, agent.text
    agent_id = agent.json()["messages"][0]["id"]
    forwarded = wait_until(lambda: {s["status"] for s in inbox.statuses_for(agent_id)} >= {"sent", "delivered", "read"})
    assert forwarded
    assert all("recipient_id" not in s and s["recipient_user_id"] == user_id for s in inbox.statuses_for(agent_id))
    assert inbox.statuses_for(reply["id"]) == []  # stored before the agent's: would have been posted first

    # A reaction to the bot's answer reaches the bot, like a phone customer's.
    _says(sandbox, user_id, message={"type": "reaction", "reaction": {"message_id": reply["id"], "emoji": "👍"}})
    assert wait_until(lambda: len(host.journal(user_id)) == 3)
    assert host.journal(user_id)[2]["metadata"]["whatsapp"]["type"] == "reaction"


def test_a_phone_customer_who_hides_the_phone_stays_in_the_same_conversation(sandbox, host):
    phone = new_wa_id()
    first = _says(sandbox, phone, text="hi", profile_name="Asha")
    user_id = first["customer"]["user_id"]
    assert texts(sandbox.wait_for_business(phone)) == ["echo: hi"]
    assert host.journal(phone)[0]["metadata"]["whatsapp"]["user_id"] == user_id  # Meta sends it to everyone

    _create_customer(sandbox, phone=phone, username="asha.r", share_phone=False)
    hidden = _says(sandbox, phone, text="me again")
    sandbox_message = requests.get(f"{sandbox.api}/messages", params={"wa_id": phone, "direction": "customer"},
                                   timeout=5).json()["messages"][-1]
    assert "from" not in sandbox_message["content"] and sandbox_message["content"]["from_user_id"] == user_id
    assert hidden["webhook_status"] == 200
    replies = sandbox.wait_for_business(phone, at_least=2)
    assert texts(replies) == ["echo: hi", "echo: me again"]
    assert replies[1]["content"]["to"] == phone  # the remembered phone
    whatsapp = host.journal(phone)[2]["metadata"]["whatsapp"]
    assert (whatsapp["wa_id"], whatsapp["user_id"], whatsapp["username"]) == (phone, user_id, "asha.r")


def test_a_webhook_with_a_malformed_bsuid_is_acknowledged_and_kept_as_a_dead_letter(host):
    before = len(host.store.dead_letters())
    message_id = new_message_id()
    answer = host.post(body=customer_text("hi", phone=None, user_id="IN.<script>", message_id=message_id))
    assert answer.status_code == 200
    letters = host.store.dead_letters()[before:]
    assert any("'from_user_id' is not a business-scoped user id" in row["reason"] for row in letters)
    assert host.store.inbound(message_id) is None


def test_131062_from_meta_does_not_stop_the_customers_conversation(sandbox, host):
    user_id = _create_customer(sandbox, username="dev.otp")["user_id"]
    sandbox.fail_next("meta_error", code=131062)
    _says(sandbox, user_id, text="first")
    assert wait_until(lambda: host.store.query(
        "SELECT error_code FROM wa_outbound_messages WHERE recipient_id = ?", user_id))
    [row] = host.store.query("SELECT error_code, state FROM wa_outbound_messages WHERE recipient_id = ?", user_id)
    assert (row["error_code"], row["state"]) == (131062, "failed")
    _says(sandbox, user_id, text="second")
    assert texts(sandbox.wait_for_business(user_id)) == ["echo: second"]
    assert "131062" in host.process.logs() and user_id not in host.process.logs()


# --- the sandbox plays Meta for BSUID sends ----------------------------------------------------


def _send(stack, body: Dict[str, Any]) -> requests.Response:
    from tests.connector.support import SECRETS

    return requests.post(f"{stack['sandbox_url']}/v21.0/{PHONE_NUMBER_ID}/messages", json=body, timeout=5,
                         headers={"Authorization": f"Bearer {SECRETS['WHATSAPP_ACCESS_TOKEN']}"})


def test_the_sandbox_answers_a_bsuid_send_like_meta_and_refuses_unknown_or_malformed_ones(stack, sandbox):
    user_id = _create_customer(sandbox, username="ravi.s")["user_id"]
    text = {"type": "text", "text": {"body": "hello"}, "messaging_product": "whatsapp"}
    accepted = _send(stack, {**text, "recipient": user_id})
    assert accepted.status_code == 200
    assert accepted.json()["contacts"] == [{"input": user_id, "user_id": user_id}]

    unknown = _send(stack, {**text, "recipient": "IN.12345678901234567890"})
    malformed = _send(stack, {**text, "recipient": "someone"})
    neither = _send(stack, text)
    for answer in (unknown, malformed, neither):
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 100
    assert "not a WhatsApp user of this business" in unknown.json()["error"]["error_data"]["details"]
    assert "business-scoped user id" in malformed.json()["error"]["error_data"]["details"]

    # `to` wins when both are given, like Meta.
    phone = new_wa_id()
    both = _send(stack, {**text, "to": phone, "recipient": user_id})
    assert both.json()["contacts"] == [{"input": phone, "wa_id": phone}]


def test_the_sandbox_refuses_a_phone_less_customer_without_a_username(sandbox):
    answer = requests.post(f"{sandbox.api}/customers", json={"profile_name": "No One"}, timeout=5)
    assert answer.status_code == 400 and "needs a username" in answer.json()["error"]
    answer = requests.post(f"{sandbox.api}/customers", json={"username": "<b>x</b>"}, timeout=5)
    assert answer.status_code == 400
    unknown = requests.post(f"{sandbox.api}/customers/IN.999/messages", json={"text": "hi"}, timeout=5)
    assert unknown.status_code == 404


def test_customer_webhooks_look_like_metas(sandbox):
    user_id = _create_customer(sandbox, username="tara.m", profile_name="Tara")["user_id"]
    _says(sandbox, user_id, text="hi")
    logged = requests.get(f"{sandbox.api}/messages", params={"wa_id": user_id, "direction": "customer"},
                          timeout=5).json()["messages"][-1]
    assert "from" not in logged["content"] and logged["content"]["from_user_id"] == user_id
    assert logged["user_id"] == user_id and logged["wa_id"] == user_id
    assert json.dumps(logged["content"]).count(user_id) == 1


def test_sandbox_statuses_are_shaped_like_metas():
    from whatsapp_sandbox.settings import SandboxSettings
    from whatsapp_sandbox.state import SandboxCustomer
    from whatsapp_sandbox.webhooks import WebhookSender

    webhooks = WebhookSender(SandboxSettings(app_secret="s", access_token="t", phone_number_id=PHONE_NUMBER_ID))
    phone_less = SandboxCustomer(user_id=BSUID, phone=None, username="priya.k")
    phone_customer = SandboxCustomer(user_id=PARENT_BSUID, phone=PHONE)

    def value(customer, status, **fields):
        return json.loads(json.dumps(webhooks.status("wamid.s", customer, status, **fields)))["entry"][0]["changes"][0]["value"]

    delivered = value(phone_less, "delivered", sent_to_phone=False, callback_data="key:0")
    [status] = delivered["statuses"]
    assert "recipient_id" not in status and status["recipient_user_id"] == BSUID
    assert status["biz_opaque_callback_data"] == "key:0"
    assert delivered["contacts"] == [{"user_id": BSUID, "profile": {"username": "priya.k"}}]
    assert "profile" not in value(phone_less, "sent", sent_to_phone=False)["contacts"][0]  # username on delivered/read
    # A send to a phone: both ids; when it failed, no recipient_user_id and no contacts (like Meta).
    [sent] = value(phone_customer, "sent")["statuses"]
    assert (sent["recipient_id"], sent["recipient_user_id"]) == (PHONE, PARENT_BSUID)
    failed = value(phone_customer, "failed", errors=[{"code": 131047}])
    assert "recipient_user_id" not in failed["statuses"][0] and "contacts" not in failed
    # Parsed by the connector: matched to the phone's conversation.
    assert [s.recipient_id for s in parse_webhook(encode(webhooks.status("wamid.t", phone_customer, "read"))).statuses] == [PHONE]
