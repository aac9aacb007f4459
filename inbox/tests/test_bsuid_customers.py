"""Customers WhatsApp identifies by a business-scoped user id (BSUID) and a username, with the phone
number absent (Meta, 2026): they are listed, shown and answered like everyone else."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from inbox.models import Conversation, Customer, Message
from inbox.tests.conftest import BOT_TOKEN, WEDNESDAY_11AM, handoff_payload, login, post_form, post_handoff
from inbox.tests.test_event_stream import consume

BSUID = "US.13491208655302741918"
PHONE = "919876543210"
T0 = WEDNESDAY_11AM - timedelta(minutes=10)


def user_event(broker, sender_id, text, at, *, wa_id=None, user_id=None, username=None, name=None):
    """A user event as the connector writes it for Meta's 2026 webhooks (wa_id may be absent)."""
    whatsapp = {"phone_number_id": "106540352242922", "message_id": f"wamid.in{at.timestamp()}", "type": "text"}
    whatsapp |= {"wa_id": wa_id, "user_id": user_id, "username": username, "profile_name": name}
    return broker.publish(
        sender_id,
        {
            "event": "user",
            "timestamp": at.timestamp(),
            "metadata": {"whatsapp": {key: value for key, value in whatsapp.items() if value is not None}},
            "text": text,
            "parse_data": {"intent": {"name": "greet", "confidence": 0.9}, "entities": [], "text": text},
            "input_channel": "whatsapp",
        },
    )


def customer_of(inbox, sender_id) -> Customer:
    with inbox.db.read() as session:
        conversation = session.scalars(select(Conversation).where(Conversation.sender_id == sender_id)).one()
        customer = conversation.customer
        session.expunge(customer)
        return customer


def test_a_message_without_a_phone_number_lands_under_its_bsuid(client, agents, inbox, broker):
    user_event(broker, BSUID, "hi, where is my order", T0, user_id=BSUID, username="kesar.fan")
    consume(inbox, broker)
    customer = customer_of(inbox, BSUID)
    assert (customer.bsuid, customer.username, customer.phone, customer.name) == (BSUID, "kesar.fan", None, None)

    login(client, "anita")
    listing = client.get("/conversations?view=all").text
    assert "@kesar.fan" in listing  # no profile name: the username names the row
    with inbox.db.read() as session:
        conversation_id = session.scalars(select(Conversation.id)).one()
    panel = client.get(f"/conversations/{conversation_id}").text
    assert "@kesar.fan" in panel and "No phone number shared" in panel


def test_the_phone_is_kept_when_a_later_message_omits_it(inbox, broker):
    user_event(broker, PHONE, "hello", T0, wa_id=PHONE, user_id=BSUID, username="kesar.fan", name="Priya Sharma")
    # The connector keeps the conversation under the phone it remembered; this webhook had none.
    user_event(broker, PHONE, "still there?", T0 + timedelta(minutes=1), user_id=BSUID, username="priya.s")
    consume(inbox, broker)
    customer = customer_of(inbox, PHONE)
    assert customer.phone == "+91 98765 43210" and customer.bsuid == BSUID
    assert customer.username == "priya.s"  # usernames change; the latest is shown
    assert customer.display_name == "Priya Sharma"


def test_a_bsuid_is_not_mistaken_for_a_phone_number(client, agents, inbox):
    payload = handoff_payload(
        handoff_id="hf_bsuid_1",
        conversation_id=BSUID,
        customer={"whatsapp_id": BSUID, "name": None, "bsuid": BSUID, "username": "kesar.fan"},
    )
    assert post_handoff(client, payload).status_code == 201
    customer = customer_of(inbox, BSUID)
    assert customer.external_id == BSUID and customer.phone is None  # not "+13491208655302741918"
    assert customer.username == "kesar.fan"


def test_an_agent_reply_to_a_phoneless_customer_goes_to_the_bsuid(client, agents, inbox, external_services):
    payload = handoff_payload(
        handoff_id="hf_bsuid_2",
        conversation_id=BSUID,
        customer={"whatsapp_id": BSUID, "name": "Ravi", "bsuid": BSUID, "username": "ravi.k"},
    )
    conversation_id = post_handoff(client, payload).json()["inbox_conversation_id"]
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Hi Ravi, checking now"})
    body = external_services.graph_requests[-1]["body"]
    assert body["recipient"] == BSUID and "to" not in body
    with inbox.db.read() as session:
        assert session.scalars(select(Message.delivery_status).where(Message.role == "agent")).one() == "accepted"


def test_an_agent_reply_to_a_customer_with_both_goes_to_the_phone(client, agents, external_services):
    payload = handoff_payload(handoff_id="hf_bsuid_3", customer={"whatsapp_id": PHONE, "name": "Priya", "bsuid": BSUID})
    conversation_id = post_handoff(client, payload).json()["inbox_conversation_id"]
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Hello Priya"})
    body = external_services.graph_requests[-1]["body"]
    assert body["to"] == PHONE and "recipient" not in body


def test_statuses_without_recipient_id_are_applied(client, agents, inbox, external_services):
    payload = handoff_payload(handoff_id="hf_bsuid_4", conversation_id=BSUID, customer={"bsuid": BSUID})
    conversation_id = post_handoff(client, payload).json()["inbox_conversation_id"]
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "On it"})
    with inbox.db.read() as session:
        wamid = session.scalars(select(Message.whatsapp_message_id).where(Message.role == "agent")).one()
    response = client.post(
        "/api/v1/whatsapp/statuses",
        json={
            "statuses": [{"id": wamid, "status": "delivered", "timestamp": "1764065703", "recipient_user_id": BSUID}]
        },
        headers={"Authorization": f"Bearer {BOT_TOKEN}"},
    )
    assert response.status_code == 200 and response.json() == {"accepted": 1}
    with inbox.db.read() as session:
        assert session.scalars(select(Message.delivery_status).where(Message.role == "agent")).one() == "delivered"


def test_a_handoff_from_the_stream_keeps_the_bsuid_and_username(inbox, broker):
    user_event(broker, BSUID, "I want a refund", T0, user_id=BSUID, username="kesar.fan")
    broker.handoff(BSUID, "hf_stream_bsuid", T0 + timedelta(seconds=1))
    consume(inbox, broker)
    with inbox.db.read() as session:
        conversation = session.scalars(select(Conversation).where(Conversation.sender_id == BSUID)).one()
        assert conversation.status == "open"
        assert (conversation.customer.bsuid, conversation.customer.username) == (BSUID, "kesar.fan")


def test_search_finds_a_bsuid_customer_by_username_and_by_a_phone_learnt_later(client, agents, inbox, broker):
    user_event(broker, BSUID, "hi", T0, user_id=BSUID, username="kesar.fan")
    consume(inbox, broker)
    with inbox.db.write() as session:  # the phone became known later (e.g. the customer shared it)
        session.scalars(select(Customer)).one().phone = "+91 98765 43210"
        conversation_id = session.scalars(select(Conversation.id)).one()
    login(client, "anita")
    for query in ("@kesar", "kesar.fan", "98765 43210", PHONE):
        listing = client.get("/conversations", params={"view": "all", "q": query}).text
        assert f'data-conversation-id="{conversation_id}"' in listing, query
