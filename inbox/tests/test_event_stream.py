"""Mirroring Rasa's event broker: every conversation, hand-offs whose call never came, catch-up."""

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from inbox.models import Conversation, Handoff, KbMatch, Message
from inbox.services.event_stream import EventStreamConsumer, SqlBrokerSource
from inbox.settings import REPO_ROOT
from inbox.tests.conftest import WEDNESDAY_11AM, handoff_payload, login, post_handoff

T0 = WEDNESDAY_11AM - timedelta(minutes=10)


def utc(hour, minute, second, microsecond=0) -> datetime:
    return datetime(2026, 11, 25, hour, minute, second, microsecond, tzinfo=UTC)


RASA_PYTHON = Path(os.environ.get("RASA_PYTHON", REPO_ROOT / ".venv" / "bin" / "python"))


def consume(inbox, broker, **options) -> int:
    consumer = EventStreamConsumer(inbox, SqlBrokerSource(broker.url), **options)
    total = 0
    while (count := consumer.run_once()) > 0:
        total += count
    return total


def transcript(inbox, sender_id="919876543210"):
    with inbox.db.read() as session:
        conversation = session.scalars(select(Conversation).where(Conversation.sender_id == sender_id)).one()
        return conversation, [
            (message.role, message.text)
            for message in session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.created_at, Message.id)
            )
        ]


def test_a_conversation_the_bot_handled_alone_is_mirrored_as_handled_by_the_bot(inbox, broker):
    broker.user("919876543210", "What are your delivery times?", T0)
    broker.action("919876543210", "action_answer_question", T0)
    broker.bot("919876543210", "Orders ship within 2 working days.", T0 + timedelta(seconds=1))
    broker.user("919876543210", "Thanks!", T0 + timedelta(seconds=30))
    assert consume(inbox, broker) == 4
    conversation, messages = transcript(inbox)
    assert conversation.status == "bot"
    assert conversation.customer.name == "Priya Sharma"
    assert conversation.last_message_preview == "Thanks!"
    assert messages == [
        ("customer", "What are your delivery times?"),
        ("bot", "Orders ship within 2 working days."),
        ("customer", "Thanks!"),
    ]


def test_a_handoff_whose_call_never_arrived_is_created_from_the_slots_and_the_pause(
    inbox, broker, agents, client, external_services
):
    broker.user("919876543210", "I want a refund for #2812", T0, order_numbers=("#2812",))
    broker.handoff("919876543210", "hf_stream_only", T0 + timedelta(seconds=1))
    consume(inbox, broker)
    conversation, messages = transcript(inbox)
    assert conversation.status == "open" and conversation.reason == "topic" and conversation.topic == "refund"
    assert conversation.assignee.first_name == "Anita"
    assert conversation.order_numbers == ["#2812"]
    with inbox.db.read() as session:
        handoff = session.scalars(select(Handoff)).one()
        assert handoff.source == "event_stream" and handoff.handoff_key == "hf_stream_only"
        assert handoff.summary == "Refund hand-off"
    inbox.slack.wait_until_sent()
    assert "Refund hand-off" in external_services.slack_messages[0]["text"]

    # The bot's call arrives late (it was retrying): same conversation, nothing shown twice.
    late = handoff_payload(
        handoff_id="hf_stream_only",
        transcript=[{"role": "customer", "text": "I want a refund for #2812", "timestamp": T0.isoformat()}],
    )
    response = post_handoff(client, late)
    assert response.status_code == 200
    assert response.json()["assignee"]["first_name"] == "Anita"
    _, after = transcript(inbox)
    assert [m for m in after if m[0] != "system"] == [m for m in messages if m[0] != "system"]
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(Handoff.id))) == 1


def test_a_handoff_written_by_the_connector_when_the_bot_could_not_answer(
    inbox, broker, agents, client, external_services
):
    """actions/CONTRACT.md, "When the bot cannot answer at all": no action_handoff, no HTTP call."""
    sender = "919876543210"
    broker.user(sender, "What is your return policy?", T0)
    broker.action(sender, "action_answer_question", T0)  # failed: the action server was down
    broker.action(sender, "action_listen", T0)
    at = T0 + timedelta(seconds=1)
    broker.bot(sender, "Sorry — I've run into a technical problem and can't answer right now.", at)
    broker.slot(sender, "escalation_reason", "bot_unavailable", at)
    broker.slot(sender, "escalation_topic", None, at)
    broker.slot(sender, "handoff_id", "c0ffee", at)
    broker.slot(
        sender,
        "handoff_details",
        {
            "tags": ["bot_unavailable"],
            "priority": "high",
            "summary": "The bot could not answer (assistant error) — customer wrote: What is your return policy?",
            "order_numbers": [],
            "delivered_to_inbox": False,
            "assignee": None,
            "failed_actions": ["action_answer_question"],
        },
        at,
    )
    broker.pause(sender, at)
    consume(inbox, broker)

    conversation, messages = transcript(inbox)
    assert conversation.status == "open" and conversation.reason == "bot_unavailable"
    assert conversation.assignee is not None
    assert ("customer", "What is your return policy?") in messages
    with inbox.db.read() as session:
        handoff = session.scalars(select(Handoff)).one()
        assert handoff.priority == "high" and "bot_unavailable" in handoff.tags
    inbox.slack.wait_until_sent()
    assert "Bot Unavailable hand-off" in external_services.slack_messages[0]["text"]
    login(client, "anita")
    page = client.get("/dashboard")
    assert page.status_code == 200 and "Bot error (could not answer)" in page.text


def test_the_http_transcript_and_the_stream_never_show_a_message_twice(inbox, broker, agents, client):
    payload = handoff_payload(handoff_id="hf_both")
    assert post_handoff(client, payload).status_code == 201
    # The same turn as Rasa's broker publishes it (timestamps with sub-second precision).
    broker.user("919876543210", "Hi, my kurta came torn", utc(5, 24, 40, 123456))
    broker.bot("919876543210", "Sorry to hear that…", utc(5, 24, 41, 2))
    broker.user("919876543210", "I want a refund for #2812", utc(5, 25, 2, 900000))
    broker.handoff("919876543210", "hf_both", utc(5, 25, 3))
    consume(inbox, broker)
    _, messages = transcript(inbox)
    conversation_messages = [m for m in messages if m[0] != "system"]
    assert conversation_messages == [
        ("customer", "Hi, my kurta came torn"),
        ("bot", "Sorry to hear that…"),
        ("customer", "I want a refund for #2812"),
        ("bot", "I'm bringing in Anita"),
    ]
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(Handoff.id))) == 1


def test_customer_messages_while_an_agent_has_the_conversation_appear_and_start_the_wait(inbox, broker, agents, client):
    conversation_id = post_handoff(client).json()["inbox_conversation_id"]
    with inbox.db.write() as session:
        session.get(Conversation, conversation_id).waiting_since = None  # as after an agent's reply
    broker.user("919876543210", "Hello? Anyone there?", WEDNESDAY_11AM + timedelta(minutes=1))
    consume(inbox, broker)
    conversation, messages = transcript(inbox)
    assert messages[-1] == ("customer", "Hello? Anyone there?")
    assert conversation.waiting_since == WEDNESDAY_11AM + timedelta(minutes=1)
    login(client, "anita")
    assert "Hello? Anyone there?" in client.get(f"/conversations/{conversation_id}").text


def test_the_consumer_remembers_its_position_and_catches_up_after_downtime(inbox, broker, agents):
    broker.user("919876543210", "first", T0)
    assert consume(inbox, broker) == 1
    # The inbox is down while Rasa keeps publishing, including a whole hand-off.
    broker.user("919876543210", "I want a refund", T0 + timedelta(minutes=1))
    broker.handoff("919876543210", "hf_during_downtime", T0 + timedelta(minutes=1))
    broker.user("919800000002", "hello from someone else", T0 + timedelta(minutes=2))
    restarted = EventStreamConsumer(inbox, SqlBrokerSource(broker.url))
    assert restarted.position() == 1
    assert consume(inbox, broker) == 9  # 1 + 7 hand-off events + 1
    assert consume(inbox, broker) == 0  # nothing applied twice
    conversation, messages = transcript(inbox)
    assert conversation.status == "open"
    assert [m for m in messages if m[0] == "customer"] == [("customer", "first"), ("customer", "I want a refund")]
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(Conversation.id))) == 2
        assert session.scalar(select(func.count(Handoff.id))) == 1


def test_a_missing_broker_database_is_waited_for_not_created(inbox, tmp_path):
    missing = tmp_path / "not-yet" / "rasa_events.db"
    consumer = EventStreamConsumer(inbox, SqlBrokerSource(f"sqlite:///{missing}"))
    assert consumer.run_once() == 0
    assert not missing.exists()


def test_a_repause_without_a_new_handoff_id_creates_nothing(inbox, broker, agents, client):
    post_handoff(client)
    broker.publish("919876543210", {"event": "session_started", "timestamp": WEDNESDAY_11AM.timestamp()})
    broker.pause("919876543210", WEDNESDAY_11AM)
    consume(inbox, broker)
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(Handoff.id))) == 1


def test_a_malformed_event_is_skipped_without_blocking_the_ones_after_it(inbox, broker, agents):
    broker.slot("919876543210", "handoff_id", "not a valid id!", T0)
    broker.slot("919876543210", "escalation_reason", "topic", T0)
    broker.pause("919876543210", T0)  # hand-off with an id the contract forbids: logged, skipped
    broker.user("919876543210", "still here", T0 + timedelta(seconds=5))
    assert consume(inbox, broker) == 4
    _, messages = transcript(inbox)
    assert messages == [("customer", "still here")]


def test_an_id_gap_is_waited_for_briefly_then_passed(inbox, broker):
    broker.user("919876543210", "one", WEDNESDAY_11AM)
    with __import__("sqlite3").connect(broker.path) as connection:  # id 2 is "in flight"
        connection.execute(
            "INSERT INTO events (id, sender_id, data) VALUES (3, ?, ?)",
            (
                "919876543210",
                json.dumps(
                    {
                        "event": "user",
                        "timestamp": WEDNESDAY_11AM.timestamp(),
                        "text": "three",
                        "input_channel": "whatsapp",
                        "metadata": {},
                    }
                ),
            ),
        )
    seconds = [100.0]  # the consumer's monotonic clock, moved by hand
    consumer = EventStreamConsumer(
        inbox, SqlBrokerSource(broker.url), gap_grace_seconds=5.0, monotonic=lambda: seconds[0]
    )
    assert consumer.run_once() == 1  # stops before the gap
    seconds[0] += 4.9
    assert consumer.run_once() == 0  # still within the grace period: id 2 may yet commit
    seconds[0] += 0.1
    assert consumer.run_once() == 1
    _, messages = transcript(inbox)
    assert messages == [("customer", "one"), ("customer", "three")]


def test_knowledge_base_lookups_feed_the_kb_page(inbox, broker, agents, client):
    broker.slot(
        "919876543210", "kb_match", {"entry_id": "returns", "score": 0.81, "answered": True, "threshold": 0.55}, T0
    )
    broker.slot(
        "919800000002",
        "kb_match",
        {"entry_id": "returns", "score": 0.41, "answered": False, "threshold": 0.55},
        T0 + timedelta(minutes=3),
    )
    broker.slot(
        "919800000003", "kb_match", {"entry_id": "shipping", "score": 0.9, "answered": True, "threshold": 0.55}, T0
    )
    broker.slot("919800000004", "kb_match", {"entry_id": None, "score": 0.1, "answered": False, "threshold": 0.55}, T0)
    consume(inbox, broker)
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(KbMatch.id))) == 4
    login(client, "anita")
    page = client.get("/knowledge-base").text
    returns_row = page.split('data-entry-id="returns"')[1].split("</tr>")[0]
    # two lookups, one answered, the last at 05:23 UTC = 10:53 in Kolkata
    assert '<td class="num">2</td>' in returns_row and "50.0%" in returns_row and "10:53 AM" in returns_row
    cod_row = page.split('data-entry-id="cod"')[1].split("</tr>")[0]
    assert "never" in cod_row and "inactive" in cod_row
    assert "matched no entry at all: 1" in page


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason=f"needs the Rasa environment at {RASA_PYTHON}")
def test_reads_events_written_by_rasas_own_sql_broker(inbox, tmp_path):
    """Contract check against Rasa 3.6's SQLEventBroker (run in the Rasa virtualenv)."""
    database = tmp_path / "rasa_broker.db"
    script = f"""
from rasa.core.brokers.sql import SQLEventBroker
from rasa.shared.core.events import UserUttered, BotUttered, SlotSet, ConversationPaused
broker = SQLEventBroker(db={str(database)!r})
events = [
    UserUttered("Where is my order #3001?",
                entities=[{{"entity": "order_number", "start": 12, "end": 23, "value": "order #3001"}}],
                metadata={{"whatsapp": {{"wa_id": "919811112222", "profile_name": "Arjun"}}}},
                input_channel="whatsapp", timestamp={T0.timestamp()}),
    BotUttered("Let me check.", timestamp={T0.timestamp() + 1}),
    SlotSet("escalation_reason", "customer_request", timestamp={T0.timestamp() + 2}),
    SlotSet("handoff_id", "hf_from_real_rasa", timestamp={T0.timestamp() + 2}),
    ConversationPaused(timestamp={T0.timestamp() + 2}),
]
for event in events:
    broker.publish({{"sender_id": "919811112222", **event.as_dict()}})
"""
    subprocess.run([str(RASA_PYTHON), "-c", script], check=True, capture_output=True, timeout=120, cwd=tmp_path)
    consumer = EventStreamConsumer(inbox, SqlBrokerSource(f"sqlite:///{database}"))
    assert consumer.run_once() == 5
    conversation, messages = transcript(inbox, "919811112222")
    assert conversation.customer.name == "Arjun" and conversation.status == "open"
    assert conversation.order_numbers == ["#3001"]
    assert messages[:2] == [("customer", "Where is my order #3001?"), ("bot", "Let me check.")]


def test_a_customer_saying_the_same_thing_twice_keeps_both_messages(inbox, broker, agents, client):
    hello = [
        {"role": "customer", "text": "hello?", "timestamp": utc(5, 20, 0).isoformat()},
        {"role": "customer", "text": "hello?", "timestamp": utc(5, 20, 3).isoformat()},
    ]
    post_handoff(client, handoff_payload(handoff_id="hf_twice", transcript=hello))
    broker.user("919876543210", "hello?", utc(5, 20, 0, 400000))
    broker.user("919876543210", "hello?", utc(5, 20, 3, 200000))
    consume(inbox, broker)
    _, messages = transcript(inbox)
    assert [m for m in messages if m[0] == "customer"] == [("customer", "hello?"), ("customer", "hello?")]
