"""Hostile customer input and request bodies: nothing a customer or a caller sends can freeze the inbox
or make it buffer without bound (issue 13, items 1 and 5)."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from inbox.models import Conversation, Message
from inbox.services.event_stream import EventStreamConsumer, SqlBrokerSource
from inbox.services.order_numbers import MAX_ENTITIES, order_numbers_in_user_event
from inbox.tests.conftest import WEDNESDAY_11AM, handoff_payload, login, post_handoff

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
    broker.user(
        SENDER, "Any news on order no. 2812?", WEDNESDAY_11AM + timedelta(seconds=5), order_numbers=("order no. 2812",)
    )
    consumer = EventStreamConsumer(inbox, SqlBrokerSource(broker.url))
    with fails_if_hung():
        assert consumer.run_once() == 2
    with inbox.db.read() as session:
        conversation = session.scalars(select(Conversation).where(Conversation.sender_id == SENDER)).one()
        stored = session.scalars(select(Message.text).where(Message.conversation_id == conversation.id)).all()
        assert conversation.order_numbers == ["#2812"]  # the next, normal message still yields its order
    assert text in stored  # the customer's text is kept whole; the inbox does not scan it


def test_a_whitespace_bomb_in_a_hand_off_transcript_is_answered_at_once(client, agents):
    bomb = "my order" + " " * 3_000 + "x"
    payload = handoff_payload(
        order_numbers=[],
        transcript=[{"role": "customer", "text": bomb, "timestamp": "2026-11-25T05:24:40Z"}],
    )
    with fails_if_hung():
        assert post_handoff(client, payload).status_code == 201


def test_order_numbers_are_read_from_a_bounded_number_of_entities():
    # Forged events: one value 100,000 characters long; 100,000 entities.
    entity = {"entity": "order_number", "value": " " * 100_000 + "2812"}
    forged = {"parse_data": {"entities": [dict(entity, value=f"#{1000 + i}") for i in range(100_000)]}}
    with fails_if_hung():
        assert order_numbers_in_user_event({"parse_data": {"entities": [entity]}}) == []  # beyond 64 characters
        assert len(order_numbers_in_user_event(forged)) == MAX_ENTITIES


# -- request bodies (item 5) -----------------------------------------------------------------------

CHUNK = b"x" * 65_536


async def _post_in_chunks(app, path: str, headers: dict[str, str], chunks: int) -> tuple[int, int]:
    """Sends `chunks` body chunks of 64 KiB straight into the ASGI app the way uvicorn does, and
    returns (status, how many chunks the app asked for before it answered)."""
    asked = 0
    answer: dict = {}

    async def receive():
        nonlocal asked
        asked += 1
        more = asked < chunks
        return {"type": "http.request", "body": CHUNK if asked <= chunks else b"", "more_body": more}

    async def send(message):
        if message["type"] == "http.response.start":
            answer.setdefault("status", message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("203.0.113.7", 50000),
        "server": ("inbox.test", 80),
    }
    await app(scope, receive, send)
    return answer["status"], asked


HUGE_CHUNKS = 800  # 50 MiB


@pytest.mark.parametrize("announced", [False, True], ids=["chunked", "with Content-Length"])
def test_a_huge_form_body_is_refused_with_413_without_being_read_to_the_end(inbox, announced):
    import anyio

    from inbox.web.app import PAGE_BODY_LIMIT_BYTES, create_app

    headers = {"content-type": "application/x-www-form-urlencoded", "cookie": "csrftoken=forged"}
    if announced:
        headers["content-length"] = str(HUGE_CHUNKS * len(CHUNK))
    app = create_app(inbox, run_background_workers=False)
    status, asked = anyio.run(_post_in_chunks, app, "/login", headers, HUGE_CHUNKS)
    assert status == 413
    # It stopped reading just past the limit (an announced length is refused before the first chunk).
    assert asked <= (0 if announced else PAGE_BODY_LIMIT_BYTES // len(CHUNK) + 1)


def test_the_machine_api_takes_a_full_hand_off_but_refuses_a_huge_one(client, inbox):
    import anyio

    from inbox.tests.conftest import BOT_TOKEN
    from inbox.web.app import create_app
    from inbox.web.routes_api import API_BODY_LIMIT_BYTES

    # 60 transcript messages of 10,000 characters (what the bot may send) are above the pages' limit.
    long_transcript = [
        {"role": "customer", "text": f"{index} " + "kurta " * 1_600, "timestamp": "2026-11-25T05:24:40Z"}
        for index in range(60)
    ]
    assert post_handoff(client, handoff_payload(transcript=long_transcript)).status_code == 201

    headers = {"content-type": "application/json", "authorization": f"Bearer {BOT_TOKEN}"}
    app = create_app(inbox, run_background_workers=False)
    status, asked = anyio.run(_post_in_chunks, app, "/api/v1/handoffs", headers, HUGE_CHUNKS)
    assert status == 413 and asked <= API_BODY_LIMIT_BYTES // len(CHUNK) + 1


def test_a_multi_megabyte_message_is_stored_whole_and_found_by_its_beginning(inbox, broker, client, agents):
    # 2.3 MB of distinct words: PostgreSQL's tsvector of the whole text would pass its 1 MB limit.
    huge = "saffronkurta " + " ".join(f"w{number}" for number in range(300_000))
    broker.user(SENDER, huge, WEDNESDAY_11AM)
    with fails_if_hung():
        assert EventStreamConsumer(inbox, SqlBrokerSource(broker.url)).run_once() == 1
    with inbox.db.read() as session:
        assert session.scalars(select(Message.text)).all() == [huge]
    login(client, "anita")
    assert "Priya Sharma" in client.get("/conversations", params={"q": "saffronkurta"}).text
