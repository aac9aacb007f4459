"""Hostile customer input and request bodies: nothing a customer or a caller sends can freeze the inbox
or make it buffer without bound (issue 13, items 1 and 5)."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from inbox.models import Conversation, Message
from inbox.services.conversation_store import find_order_numbers
from inbox.services.event_stream import EventStreamConsumer, SqlBrokerSource
from inbox.tests.conftest import WEDNESDAY_11AM, handoff_payload, post_handoff

WATCHDOG_SECONDS = 10  # far above the milliseconds the work takes; only a freeze reaches it
SENDER = "919876543210"


class Hung(Exception):
    pass


@contextmanager
def fails_if_hung(seconds: int = WATCHDOG_SECONDS):
    """Interrupts the main thread after `seconds`. Python's regex engine checks for signals while it
    matches, so even a catastrophically backtracking pattern is stopped here instead of hanging the run."""

    def _interrupt(_signum, _frame):
        raise Hung(f"still busy after {seconds} s")

    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


WHITESPACE_BOMBS = {
    "3,000 spaces": "my order" + " " * 3_000 + "x",
    "100,000 spaces": "my order" + " " * 100_000 + "x",
    "100,000 mixed blanks after #": "#" + " \t\n" * 33_000 + "x order no" + " " * 50_000,
}


@pytest.mark.parametrize("text", WHITESPACE_BOMBS.values(), ids=WHITESPACE_BOMBS.keys())
def test_a_whitespace_bomb_from_a_customer_is_mirrored_without_freezing_the_inbox(inbox, broker, text):
    broker.user(SENDER, text, WEDNESDAY_11AM)
    broker.user(SENDER, "Any news on order no. 2812?", WEDNESDAY_11AM + timedelta(seconds=5))
    consumer = EventStreamConsumer(inbox, SqlBrokerSource(broker.url))
    with fails_if_hung():
        assert consumer.run_once() == 2
    with inbox.db.read() as session:
        conversation = session.scalars(select(Conversation).where(Conversation.sender_id == SENDER)).one()
        stored = session.scalars(select(Message.text).where(Message.conversation_id == conversation.id)).all()
        assert conversation.order_numbers == ["#2812"]  # the next, normal message still yields its order
    assert text in stored  # the customer's text is kept whole; only the scanning is capped


def test_a_whitespace_bomb_in_a_hand_off_transcript_is_answered_at_once(client, agents):
    bomb = "my order" + " " * 3_000 + "x"
    payload = handoff_payload(
        order_numbers=[],
        transcript=[{"role": "customer", "text": bomb, "timestamp": "2026-11-25T05:24:40Z"}],
    )
    with fails_if_hung():
        assert post_handoff(client, payload).status_code == 201


@pytest.mark.parametrize(
    ("text", "orders"),
    [
        ("I want a refund for #2812", ["#2812"]),
        ("order no. 48213 hasn't come", ["#48213"]),
        ("Order number: 77120 and # 99881", ["#77120", "#99881"]),
        ("mera order id 123456 kab aayega", ["#123456"]),
        ("order   #2812", ["#2812"]),
        ("I ordered 3 kurtas", []),
        ("#12 is too short to be an order", []),
    ],
)
def test_order_numbers_are_still_found_in_ordinary_messages(text, orders):
    assert find_order_numbers(text) == orders


def test_order_numbers_are_looked_for_in_the_first_4096_characters_only():
    assert find_order_numbers("#2812 " + "a" * 5_000 + " #9999") == ["#2812"]
