"""What the web process does per customer message in the cluster (issue 16): the connector forwards every WhatsApp
status, three per bot reply, and the inbox did not send the bot's replies. A batch of those costs one read and no
write transaction; a batch with one of the inbox's statuses is applied as before, with one query for its messages
instead of one per status. The security headers come from a plain ASGI middleware, with the same headers."""

from __future__ import annotations

from sqlalchemy import select

from inbox.models import Message
from inbox.tests.conftest import BOT_TOKEN, login, post_form
from inbox.tests.test_agent_screens import open_handoff
from inbox.tests.test_event_stream_batches import Statements
from inbox.tests.test_reply_recovery import GraphScript, read_timeout, send_reply, the_reply, use_graph

AUTH = {"Authorization": f"Bearer {BOT_TOKEN}"}


def statements(seen: Statements, prefix: str) -> int:
    return sum(n for kind, n in seen.kinds.items() if kind.upper().startswith(prefix))


def bot_reply_statuses(turn: int) -> list[dict]:
    """Meta's three statuses of one bot reply, as the connector forwards them (with the connector's own key)."""
    return [
        {
            "id": f"wamid.bot{turn}",
            "status": status,
            "timestamp": str(1764065700 + n),
            "recipient_id": "919800000009",
            "biz_opaque_callback_data": f"919800000009:turn{turn}:0",
        }
        for n, status in enumerate(("sent", "delivered", "read"))
    ]


def post_statuses(client, statuses: list[dict]):
    return client.post("/api/v1/whatsapp/statuses", json={"statuses": statuses}, headers=AUTH)


def test_statuses_of_the_bots_replies_cost_one_read_and_no_write(client, inbox):
    statuses = [status for turn in range(3) for status in bot_reply_statuses(turn)]
    with Statements(inbox.db.engine) as seen:
        response = post_statuses(client, statuses)
    assert response.status_code == 200 and response.json() == {"accepted": 0}
    # Before: a write transaction (SQLite: BEGIN IMMEDIATE) and one SELECT per status (9 here).
    assert statements(seen, "SELECT") == 1, seen.kinds
    writes = statements(seen, "BEGIN IMMEDIATE") + statements(seen, "UPDATE") + statements(seen, "INSERT")
    assert writes == 0, seen.kinds


def test_a_batch_with_an_agent_replys_statuses_is_applied_with_one_query_for_its_messages(client, agents, inbox):
    conversation_id = open_handoff(client)
    login(client, "anita")  # the reply goes out through the test Graph API as wamid.test1
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "On it!"})
    ours = [
        {"id": "wamid.test1", "status": "delivered", "timestamp": "1764065703", "recipient_id": "919876543210"},
        {"id": "wamid.test1", "status": "sent", "timestamp": "1764065702", "recipient_id": "919876543210"},
    ]
    statuses = bot_reply_statuses(1) + ours[:1] + bot_reply_statuses(2) + ours[1:]
    with Statements(inbox.db.engine) as seen:
        response = post_statuses(client, statuses)
    assert response.json() == {"accepted": 2}  # the inbox's two; the bot's six are not its own
    with inbox.db.read() as session:
        reply = session.scalars(select(Message).where(Message.role == "agent")).one()
        assert reply.delivery_status == "delivered"  # the older "sent" after it changed nothing
    # The look that found one of its own, then the batch's messages once (before: one SELECT per status, 8).
    assert statements(seen, "SELECT MESSAGES") <= 2, seen.kinds
    assert 'data-delivery="delivered"' in client.get(f"/conversations/{conversation_id}/transcript").text


def test_a_status_with_our_key_confirms_a_timed_out_reply_and_its_later_status_in_the_batch_applies(
    client, agents, inbox
):
    use_graph(inbox, GraphScript(read_timeout()))
    send_reply(client, inbox)
    reply = the_reply(inbox)
    assert reply.delivery_status == "unconfirmed" and reply.whatsapp_message_id is None
    statuses = [
        *bot_reply_statuses(1),
        {"id": "wamid.late1", "status": "sent", "timestamp": "1764065701", "biz_opaque_callback_data": reply.send_key},
        # Its next status in the same batch: found by the id the first one just gave it.
        {"id": "wamid.late1", "status": "delivered", "timestamp": "1764065702"},
    ]
    assert post_statuses(client, statuses).json() == {"accepted": 2}
    reply = the_reply(inbox)
    assert (reply.delivery_status, reply.whatsapp_message_id) == ("delivered", "wamid.late1")


def test_a_status_without_our_key_for_a_stored_reply_is_still_applied(client, agents, inbox):
    """The one read decides by the id alone when no status carries a key (e.g. a reply sent before keys)."""
    conversation_id = open_handoff(client)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "On it!"})
    statuses = [*bot_reply_statuses(1), {"id": "wamid.test1", "status": "read", "timestamp": "1764065709"}]
    assert post_statuses(client, statuses).json() == {"accepted": 1}
    with inbox.db.read() as session:
        assert session.scalars(select(Message.delivery_status).where(Message.role == "agent")).one() == "read"


def test_the_security_headers_are_the_same_on_pages_api_answers_errors_and_static_files(client, agents):
    expected = {
        "content-security-policy": "default-src 'self'",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    }
    answers = {
        "api": post_statuses(client, bot_reply_statuses(1)),
        "api refused": client.post("/api/v1/whatsapp/statuses", json={"statuses": []}),
        "login page": client.get("/login"),
        "not found": client.get("/no-such-page", headers={"Accept": "application/json"}),
    }
    for name, response in answers.items():
        for header, start in expected.items():
            assert response.headers[header].startswith(start), (name, header)
        assert response.headers["cache-control"] == "no-store", name
        assert len(response.headers.get_list("content-security-policy")) == 1, name
    static = client.get("/static/inbox.js")
    assert static.status_code == 200 and static.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in static.headers.get("cache-control", "")
