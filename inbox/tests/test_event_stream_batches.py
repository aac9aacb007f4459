"""The event-stream consumer applies a batch with a few statements, not dozens per message (issue 16),
and the same inbox rows as event by event: redeliveries, a failing event, CSAT comments, WhatsApp ids,
transcript copies and new customers."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from inbox.models import Conversation, CsatSurvey, Customer, Handoff, KbMatch, Message
from inbox.services.event_stream import BrokerEvent, EventStreamConsumer, SqlBrokerSource
from inbox.tests.conftest import WEDNESDAY_11AM, handoff_payload, post_handoff
from inbox.tests.test_csat_follow_ups import SENDER, answered_and_resolved, tap

T0 = WEDNESDAY_11AM - timedelta(minutes=30)


def utc(hour, minute, second, microsecond=0) -> datetime:
    return datetime(2026, 11, 25, hour, minute, second, microsecond, tzinfo=UTC)


def kb_answered_turn(broker, sender: str, turn: int, at) -> None:
    """One customer message answered from the knowledge base, with every event Rasa 3.6 publishes for it."""
    broker.user(sender, f"what is your return policy? ({turn})", at)
    broker.publish(
        sender, {"event": "user_featurization", "timestamp": at.timestamp(), "use_text_for_featurization": False}
    )
    broker.action(sender, "action_answer_question", at)
    broker.bot(sender, f"Returns are accepted within 7 days. ({turn})", at + timedelta(milliseconds=400))
    broker.slot(sender, "kb_match", {"entry_id": "returns", "score": 0.8, "answered": True, "threshold": 0.55}, at)
    broker.slot(sender, "bot_answer_count", float(turn), at)
    broker.action(sender, "action_listen", at)


class Statements:
    """Counts the statements the inbox database runs (SAVEPOINT and RELEASE included)."""

    def __init__(self, engine):
        self.engine = engine
        self.count = 0
        self.kinds: Counter[str] = Counter()

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc):
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, _params, _context, _executemany):
        self.count += 1
        self.kinds[re.sub(r"sa_savepoint_\d+", "sa_savepoint", " ".join(statement.split())[:90])] += 1


def run_once(inbox, broker) -> int:
    return EventStreamConsumer(inbox, SqlBrokerSource(broker.url)).run_once()


def consume(inbox, broker) -> int:
    consumer = EventStreamConsumer(inbox, SqlBrokerSource(broker.url))
    total = 0
    while (count := consumer.run_once()) > 0:
        total += count
    return total


def texts(inbox, sender: str) -> list[tuple[str, str]]:
    with inbox.db.read() as session:
        return [
            (role, text)
            for role, text in session.execute(
                select(Message.role, Message.text)
                .join(Conversation)
                .where(Conversation.sender_id == sender)
                .order_by(Message.created_at, Message.id)
            )
        ]


def test_a_bot_answered_message_costs_a_few_statements_not_dozens(inbox, broker):
    customers = [f"9198000000{n:02d}" for n in range(8)]
    # (A customer's second apart: the test broker's WhatsApp message ids are made of the time.)
    for n, customer in enumerate(customers):  # they have written before
        kb_answered_turn(broker, customer, 0, T0 + timedelta(seconds=n))
    consume(inbox, broker)

    # One message per batch (a quiet stream): the batch's own statements (the stored position: three) included.
    with Statements(inbox.db.engine) as alone:
        for n, customer in enumerate(customers):
            kb_answered_turn(broker, customer, 1, T0 + timedelta(minutes=1, seconds=n))
            assert run_once(inbox, broker) == 7
    # Before: 28 (finding, locking and reloading the conversation for each event, a savepoint around each,
    # upserting the customer and the conversation, asking for duplicates, transcript copies, WhatsApp ids
    # and CSAT comments one message at a time).
    assert alone.count / len(customers) <= 10, alone.kinds

    # Eight customers' messages in one batch (a busy stream): the questions are asked once per batch.
    for n, customer in enumerate(customers):
        kb_answered_turn(broker, customer, 2, T0 + timedelta(minutes=2, seconds=n))
    with Statements(inbox.db.engine) as together:
        assert run_once(inbox, broker) == 7 * len(customers)
    assert together.count / len(customers) <= 4, together.kinds  # before: 25 per message

    for customer in customers:
        assert texts(inbox, customer) == [
            (role, f"{text} ({turn})")
            for turn in range(3)
            for role, text in (
                ("customer", "what is your return policy?"),
                ("bot", "Returns are accepted within 7 days."),
            )
        ]
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(KbMatch.id))) == 3 * len(customers)
        wamids = session.scalars(select(Message.whatsapp_message_id).where(Message.role == "customer")).all()
        assert len(wamids) == 3 * len(customers) and all(wamids)


def test_a_new_customers_first_message_costs_half_what_it_did(inbox, broker):
    with Statements(inbox.db.engine) as first:
        at = T0.timestamp()
        broker.action("919800000077", "action_session_start", T0)
        broker.publish("919800000077", {"event": "session_started", "timestamp": at})
        broker.action("919800000077", "action_listen", T0)
        kb_answered_turn(broker, "919800000077", 0, T0)
        assert run_once(inbox, broker) == 10
    # With the stored position's four (its row is new too). Before: 30 on PostgreSQL, 31 on SQLite.
    assert first.count <= 15, first.kinds
    with inbox.db.read() as session:
        customer = session.scalars(select(Customer)).one()
        assert (customer.external_id, customer.name, customer.phone) == (
            "919800000077",
            "Priya Sharma",
            "+91 98000 00077",
        )
    assert texts(inbox, "919800000077") == [
        ("customer", "what is your return policy? (0)"),
        ("bot", "Returns are accepted within 7 days. (0)"),
    ]


def test_new_customers_in_one_batch_are_created_without_splitting_its_writes(inbox, broker):
    """Eight new customers' first messages in one batch (a busy stream where most customers are new, as in the
    capacity benchmark): each new customer costs its look-up and two inserts; the batch's messages and list
    columns are written together at the end, not once per new conversation (issue 16)."""
    run_once(inbox, broker)  # the stored position's row exists
    customers = [f"9198100000{n:02d}" for n in range(8)]
    for n, customer in enumerate(customers):
        at = T0 + timedelta(seconds=n)
        broker.action(customer, "action_session_start", at)
        broker.publish(customer, {"event": "session_started", "timestamp": at.timestamp()})
        broker.action(customer, "action_listen", at)
        kb_answered_turn(broker, customer, 0, at)
    with Statements(inbox.db.engine) as batch:
        assert run_once(inbox, broker) == 10 * len(customers)
    # Before: PostgreSQL 54 (each new conversation reloaded after its insert, and a flush of the messages and
    # list columns before each new customer's look-up: 8 message inserts, 8 conversation updates).
    message_inserts = sum(n for kind, n in batch.kinds.items() if kind.startswith("INSERT INTO messages"))
    if inbox.db.engine.dialect.name == "postgresql":
        assert message_inserts == 1, batch.kinds  # SQLite's driver inserts them one row at a time either way
    assert batch.count - message_inserts <= 4 * len(customers) + 8, batch.kinds
    updates = sum(n for kind, n in batch.kinds.items() if kind.startswith("UPDATE conversations"))
    assert updates == 1, batch.kinds  # one statement (executemany) for the eight conversations' list columns
    for customer in customers:
        assert texts(inbox, customer) == [
            ("customer", "what is your return policy? (0)"),
            ("bot", "Returns are accepted within 7 days. (0)"),
        ]
    with inbox.db.read() as session:
        rows = session.execute(select(Conversation.sender_id, Customer.external_id, Customer.phone).join(Customer))
        assert sorted(tuple(row) for row in rows) == [
            (customer, customer, f"+91 {customer[2:7]} {customer[7:]}") for customer in customers
        ]
        previews = session.scalars(select(Conversation.last_message_preview).order_by(Conversation.id)).all()
        assert previews == ["Returns are accepted within 7 days. (0)"] * len(customers)


def test_a_bsuid_learnt_earlier_in_the_batch_finds_the_customer_of_a_new_bsuid_conversation(inbox):
    """The look-up by BSUID still sees what the batch changed before it (the look-up by key need not)."""
    bsuid = "US.13491208655302741918"
    apply_in_one_transaction(inbox, [user_event(-11, "919811110009", "hello", T0, "wamid.b1")])
    learnt = user_event(-12, "919811110009", "it's me", T0 + timedelta(seconds=5), "wamid.b2")
    learnt.data["metadata"]["whatsapp"]["user_id"] = bsuid  # the customer's BSUID, first seen in this batch
    phoneless = rasa_event(
        -13,
        bsuid,
        {
            "event": "user",
            "timestamp": (T0 + timedelta(seconds=9)).timestamp(),
            "text": "and from my username",
            "input_channel": "whatsapp",
            "metadata": {"whatsapp": {"user_id": bsuid, "message_id": "wamid.b3", "type": "text"}},
        },
    )
    apply_in_one_transaction(inbox, [learnt, phoneless])
    with inbox.db.read() as session:
        customers = session.execute(select(Customer.external_id, Customer.bsuid, Customer.phone)).all()
        assert [tuple(row) for row in customers] == [("919811110009", bsuid, "+91 98111 10009")]
        assert session.scalar(select(func.count(Conversation.id))) == 2


def apply_in_one_transaction(inbox, events: list[BrokerEvent]) -> None:
    """What the RabbitMQ consumer does with one delivery batch (a redelivery brings the same events)."""
    EventStreamConsumer(inbox, source=None).apply_in_transaction(events)


def rasa_event(event_id: int, sender: str, data: dict) -> BrokerEvent:
    return BrokerEvent(id=event_id, sender_id=sender, data=json.loads(json.dumps({"sender_id": sender, **data})))


def user_event(event_id: int, sender: str, text: str, at, wamid: str) -> BrokerEvent:
    whatsapp = {
        "wa_id": sender,
        "profile_name": "Arjun",
        "phone_number_id": "106540352242922",
        "message_id": wamid,
        "type": "text",
    }
    return rasa_event(
        event_id,
        sender,
        {
            "event": "user",
            "timestamp": at.timestamp(),
            "text": text,
            "input_channel": "whatsapp",
            "metadata": {"whatsapp": whatsapp},
        },
    )


def bot_event(event_id: int, sender: str, text: str, at) -> BrokerEvent:
    return rasa_event(event_id, sender, {"event": "bot", "timestamp": at.timestamp(), "text": text, "data": {}})


def kb_event(event_id: int, sender: str, at) -> BrokerEvent:
    value = {"entry_id": "returns", "score": 0.8, "answered": True, "threshold": 0.55}
    return rasa_event(
        event_id, sender, {"event": "slot", "timestamp": at.timestamp(), "name": "kb_match", "value": value}
    )


def stored(inbox) -> list[tuple]:
    with inbox.db.read() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(
                    Conversation.sender_id,
                    Message.role,
                    Message.text,
                    Message.rasa_event_id,
                    Message.whatsapp_message_id,
                )
                .join(Conversation)
                .order_by(Message.id)
            )
        ]


def test_a_redelivered_batch_and_a_batch_mixing_old_and_new_events_store_each_message_once(inbox):
    first = [
        user_event(-1, "919811110001", "hello", T0, "wamid.a1"),
        bot_event(-2, "919811110001", "Hi! How can I help?", T0 + timedelta(seconds=1)),
        kb_event(-3, "919811110001", T0 + timedelta(seconds=1)),
        user_event(-4, "919811110002", "where is my order", T0, "wamid.b1"),
    ]
    apply_in_one_transaction(inbox, first)
    apply_in_one_transaction(inbox, first)  # RabbitMQ redelivers a batch whose acknowledgement was lost
    assert stored(inbox) == [
        ("919811110001", "customer", "hello", -1, "wamid.a1"),
        ("919811110001", "bot", "Hi! How can I help?", -2, None),
        ("919811110002", "customer", "where is my order", -4, "wamid.b1"),
    ]
    later = T0 + timedelta(minutes=1)
    apply_in_one_transaction(
        inbox,
        [*first, user_event(-5, "919811110001", "thanks", later, "wamid.a2"), kb_event(-6, "919811110002", later)],
    )
    assert stored(inbox)[3:] == [("919811110001", "customer", "thanks", -5, "wamid.a2")]
    with inbox.db.read() as session:
        assert session.scalar(select(func.count(KbMatch.id))) == 2
        assert session.scalar(select(func.count(Conversation.id))) == 2


def test_a_whatsapp_id_already_on_a_message_is_not_given_to_another(inbox):
    apply_in_one_transaction(inbox, [user_event(-1, "919811110001", "hello", T0, "wamid.same")])
    # The same WhatsApp message twice more (e.g. Rasa handled a retried webhook): stored, without the id.
    apply_in_one_transaction(
        inbox,
        [
            user_event(-2, "919811110001", "hello", T0 + timedelta(seconds=5), "wamid.same"),
            user_event(-3, "919811110001", "hello again", T0 + timedelta(seconds=6), "wamid.new"),
            user_event(-4, "919811110001", "hello again", T0 + timedelta(seconds=7), "wamid.new"),
        ],
    )
    assert [(row[3], row[4]) for row in stored(inbox)] == [
        (-1, "wamid.same"),
        (-2, None),
        (-3, "wamid.new"),
        (-4, None),
    ]
    # A brand-new conversation's message carrying an id stored elsewhere.
    apply_in_one_transaction(inbox, [user_event(-5, "919811110009", "hi", T0, "wamid.new")])
    assert stored(inbox)[-1] == ("919811110009", "customer", "hi", -5, None)


def test_a_failing_event_is_skipped_and_the_rest_of_its_batch_applied_once(
    inbox, broker, agents, external_services, caplog
):
    broker.user("919800000001", "hello", T0)
    broker.publish("919800000002", {"event": "user", "timestamp": T0.timestamp(), "text": {"not": "text"}})
    broker.user("919800000003", "I want a refund for #2812", T0 + timedelta(seconds=2), order_numbers=("#2812",))
    broker.handoff("919800000003", "hf_after_a_bad_event", T0 + timedelta(seconds=3))
    broker.user("919800000002", "hello?", T0 + timedelta(seconds=4))
    with caplog.at_level(logging.WARNING, logger="inbox.services.event_stream"):
        assert consume(inbox, broker) == 11
    assert texts(inbox, "919800000001") == [("customer", "hello")]
    assert texts(inbox, "919800000002") == [("customer", "hello?")]
    assert ("customer", "I want a refund for #2812") in texts(inbox, "919800000003")
    with inbox.db.read() as session:
        handoff = session.scalars(select(Handoff)).one()
        assert handoff.handoff_key == "hf_after_a_bad_event" and handoff.conversation.status == "open"
    skipped = [record for record in caplog.records if "could not be applied; skipped" in record.getMessage()]
    assert len(skipped) == 1
    assert any("applying it again event by event" in record.getMessage() for record in caplog.records)
    inbox.slack.wait_until_sent()
    assert len(external_services.slack_messages) == 1  # the hand-off is announced once, not once per pass


def test_a_comment_in_a_later_batch_than_the_rating_is_recorded(
    inbox, broker, clock, client, agents, external_services
):
    _conversation_id, [body] = answered_and_resolved(inbox, broker, clock, client, external_services)
    buttons = body["interactive"]["action"]["buttons"]
    tap(broker, clock, buttons[1]["reply"]["id"], "😐 Okay")
    consume(inbox, broker)
    clock.advance(minutes=3)
    broker.user(SENDER, "It took a while", clock.now)
    consume(inbox, broker)
    clock.advance(minutes=20)  # after comment_minutes (10): an ordinary message again
    broker.user(SENDER, "One more thing", clock.now)
    consume(inbox, broker)
    with inbox.db.read() as session:
        survey = session.scalars(select(CsatSurvey)).one()
    assert (survey.rating, survey.comment) == ("okay", "It took a while")


def test_the_latest_profile_name_is_kept_for_a_known_customer(inbox, broker):
    broker.user("919800000001", "hello", T0, name="Priya")
    consume(inbox, broker)
    broker.user("919800000001", "it's me again", T0 + timedelta(minutes=1), name="Priya S.")
    broker.user("919800000001", "and again", T0 + timedelta(minutes=2), name=None)
    consume(inbox, broker)
    with inbox.db.read() as session:
        assert session.scalars(select(Customer.name)).all() == ["Priya S."]


@pytest.mark.parametrize("batch_size", [200, 1])
def test_transcript_copies_are_claimed_once_in_a_batch_or_event_by_event(inbox, broker, agents, client, batch_size):
    broker.user("919876543210", "Hi", T0)  # the conversation exists before the hand-off call
    consume(inbox, broker)
    assert post_handoff(client, handoff_payload(handoff_id="hf_copies")).status_code == 201  # 05:24:40 - 05:25:02
    broker.user("919876543210", "Hi, my kurta came torn", utc(5, 24, 40, 300000))
    broker.bot("919876543210", "Sorry to hear that…", utc(5, 24, 41, 2))
    broker.user("919876543210", "I want a refund for #2812", utc(5, 25, 2, 900000))
    consumer = EventStreamConsumer(inbox, SqlBrokerSource(broker.url), batch_size=batch_size)
    while consumer.run_once():
        pass
    assert [message for message in texts(inbox, "919876543210") if message[0] != "system"] == [
        ("customer", "Hi"),
        ("customer", "Hi, my kurta came torn"),
        ("bot", "Sorry to hear that…"),
        ("customer", "I want a refund for #2812"),
    ]
    with inbox.db.read() as session:
        claimed = session.scalars(select(Message).where(Message.from_transcript.is_(True))).all()
        assert len(claimed) == 3 and all(message.rasa_event_id is not None for message in claimed)
