"""POST /api/v1/handoffs — the contract in inbox/API.md."""

from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from inbox.models import Conversation, Handoff, Message
from inbox.tests.conftest import BOT_TOKEN, handoff_payload, login, post_form, post_handoff
from inbox.tests.fakes import ThreadedServer
from inbox.web.app import create_app


def test_refund_handoff_goes_to_the_returns_team_and_names_the_agent(client, agents):
    response = post_handoff(client)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "assigned"
    assert body["assignee"] == {"id": agents["anita"], "first_name": "Anita", "pronoun": "she"}
    assert body["team"] == "Returns"
    assert body["eta_minutes"] == 5
    assert body["eta_text"] == "within 5 minutes"
    assert body["team_back_at"] is None
    assert body["conversation_id"] == "919876543210"
    assert body["conversation_url"] == f"http://inbox.test/conversations/{body['inbox_conversation_id']}"


def test_the_same_handoff_id_again_answers_200_with_the_first_answer(client, agents, inbox):
    first = post_handoff(client)
    # Anita goes away; a re-sent hand-off must still name her (same assignee, same ETA).
    with inbox.db.write() as session:
        from inbox.models import Agent

        session.get(Agent, agents["anita"]).status = "away"
    again = post_handoff(client)
    assert again.status_code == 200
    assert again.json() == first.json()
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(Handoff.id))) == 1
        assert session.scalar(select(func.count(Message.id)).where(Message.role == "customer")) == 2


def test_handoff_id_reused_for_another_conversation_is_a_conflict(client, agents):
    post_handoff(client)
    other = handoff_payload(conversation_id="919800000002", customer={"whatsapp_id": "919800000002", "name": "Ravi"})
    response = post_handoff(client, other)
    assert response.status_code == 409
    assert "different conversation" in response.json()["detail"]


def test_missing_or_wrong_token_is_refused_before_anything_is_read(client, agents, inbox):
    assert post_handoff(client, token=None).status_code == 401
    wrong = post_handoff(client, token="guess")
    assert wrong.status_code == 401 and wrong.json()["detail"]
    # Even an invalid body gets 401 first, and nothing is stored.
    assert post_handoff(client, {"nonsense": True}, token="guess").status_code == 401
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(Conversation.id))) == 0


def test_invalid_body_gets_422_with_the_field_named(client, agents):
    response = post_handoff(client, handoff_payload(reason="bored", handoff_id="has spaces"))
    assert response.status_code == 422
    locations = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert ("body", "reason") in locations
    assert ("body", "handoff_id") in locations


def test_transcript_tags_and_order_numbers_land_in_the_conversation(client, agents, inbox):
    conversation_id = post_handoff(client).json()["inbox_conversation_id"]
    with inbox.db.read() as session:
        conversation = session.get(Conversation, conversation_id)
        texts = [
            (m.role, m.text)
            for m in session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.created_at, Message.id)
            )
        ]
        assert conversation.status == "open"
        assert conversation.customer.name == "Priya Sharma"
        assert conversation.customer.phone == "+91 98765 43210"
        assert conversation.order_numbers == ["#2812"]
        assert conversation.priority == "high"
    assert texts[:3] == [
        ("customer", "Hi, my kurta came torn"),
        ("bot", "Sorry to hear that…"),
        ("customer", "I want a refund for #2812"),
    ]
    assert texts[3][0] == "system" and "Anita Desai" in texts[3][1]
    login(client, "anita")
    page = client.get(f"/conversations/{conversation_id}")
    assert "refund" in page.text and "Wants a refund for order #2812" in page.text


def test_nobody_online_queues_and_promises_the_next_opening(client, agents, inbox):
    from inbox.models import Agent

    with inbox.db.write() as session:
        for agent in session.scalars(select(Agent)):
            agent.status = "away"
    body = post_handoff(client).json()
    assert body["status"] == "queued" and body["assignee"] is None
    assert body["eta_minutes"] is None
    assert body["team_back_at"] == "2026-11-26T03:30:00Z"  # Thursday 09:00 in Kolkata
    assert body["eta_text"] == "by 9:00 AM tomorrow"


def test_outside_business_hours_the_team_is_back_at_opening(client, agents, clock):
    clock.advance(hours=11)  # Wednesday 22:00 in Kolkata
    body = post_handoff(client).json()
    assert body["status"] == "queued"
    assert body["team"] == "Returns"
    assert body["eta_text"] == "by 9:00 AM tomorrow"


def test_a_resolved_conversation_is_reopened_by_the_next_handoff(client, agents, inbox, external_services):
    conversation_id = post_handoff(client).json()["inbox_conversation_id"]
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/resolve")
    second = post_handoff(
        client, handoff_payload(handoff_id="hf_second", reason="customer_request", topic=None, tags=[])
    )
    assert second.status_code == 201
    assert second.json()["inbox_conversation_id"] == conversation_id
    with inbox.db.read() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation.status == "open" and conversation.handoff_count == 2
        assert conversation.first_response_at is None


def test_concurrent_duplicate_calls_create_one_conversation(inbox, agents):
    """Twelve copies of the same hand-off at once through a real server: one 201, the rest 200."""
    server = ThreadedServer(create_app(inbox, run_background_workers=False)).start()
    try:
        payload = handoff_payload()
        headers = {"Authorization": f"Bearer {BOT_TOKEN}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http, ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda _: http.post("/api/v1/handoffs", json=payload), range(12)))
    finally:
        server.stop()
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 11 + [201]
    assert len({response.json()["inbox_conversation_id"] for response in responses}) == 1
    assert len({response.json()["assignee"]["id"] for response in responses}) == 1
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(Conversation.id))) == 1
        assert session.scalar(select(func.count(Handoff.id))) == 1
        assert session.scalar(select(func.count(Message.id)).where(Message.role != "system")) == 3


def test_topic_handoff_pings_slack_with_a_link(client, agents, inbox, external_services):
    body = post_handoff(client).json()
    inbox.slack.wait_until_sent()
    assert len(external_services.slack_messages) == 1
    text = external_services.slack_messages[0]["text"]
    assert "Refund hand-off from Priya Sharma" in text
    assert f"<http://inbox.test/conversations/{body['inbox_conversation_id']}|Open conversation>" in text


def test_a_non_topic_handoff_does_not_ping_slack(client, agents, inbox, external_services):
    post_handoff(client, handoff_payload(reason="low_confidence", topic=None, tags=[]))
    inbox.slack.wait_until_sent()
    assert external_services.slack_messages == []
