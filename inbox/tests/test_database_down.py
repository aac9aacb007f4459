"""The inbox's database refuses connections after the agent's page is loaded: a reply or note is not
lost — a clear 503 says it was not sent and hands the text back in a composer (htmx and plain form),
one log line names the route without customer data, nothing reaches WhatsApp, and the same text goes
through once the database is back."""

from __future__ import annotations

import logging
import socket

import pytest
from sqlalchemy import select

from inbox.db import Database
from inbox.models import Message
from inbox.tests.conftest import csrf_cookie, login, post_form, post_handoff

TEXT = "Aapka refund <b>kal</b> tak aa jayega — धन्यवाद"
ESCAPED = "Aapka refund &lt;b&gt;kal&lt;/b&gt; tak aa jayega — धन्यवाद"


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # bound, never listening: connections are refused
    return port


@pytest.fixture
def cut_database(inbox):
    """Call it to point the inbox at a PostgreSQL port that refuses connections; restored afterwards."""
    alive = inbox.db

    def cut():
        inbox.db = Database(f"postgresql+psycopg://inbox@127.0.0.1:{closed_port()}/inbox")

    def restore():
        if inbox.db is not alive:
            inbox.db.dispose()
            inbox.db = alive

    cut.restore = restore
    yield cut
    restore()


@pytest.fixture
def open_conversation(client, agents) -> int:
    conversation_id = post_handoff(client).json()["inbox_conversation_id"]
    login(client, "anita")
    assert client.get(f"/conversations/{conversation_id}").status_code == 200  # the page is loaded
    return conversation_id


def sends(external_services) -> list[dict]:
    return [request for request in external_services.graph_requests if request["body"].get("type") == "text"]


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "no-js"])
def test_a_reply_while_the_database_is_down_keeps_the_text(
    inbox, client, open_conversation, cut_database, external_services, caplog, htmx
):
    headers = {"HX-Request": "true"} if htmx else {"Accept": "text/html"}
    cut_database()
    with caplog.at_level(logging.INFO):
        answer = post_form(client, f"/conversations/{open_conversation}/reply", {"text": TEXT}, headers=headers)

    assert answer.status_code == 503
    page = answer.text
    assert "The inbox database is unavailable — your reply was not sent; it is kept below, try again." in page
    assert f">{ESCAPED}</textarea>" in page and "<b>kal" not in page  # back in the box, as text
    assert f'action="/conversations/{open_conversation}/reply"' in page
    assert f'name="csrftoken" value="{csrf_cookie(client)}"' in page  # it can be sent again as it is
    if htmx:
        assert page.lstrip().startswith('<div id="conversation"')  # swapped in place of the conversation
        assert "<html" not in page
    else:
        assert "<!doctype html>" in page
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("inbox") and r.levelno >= logging.WARNING]
    assert lines == [
        f"database unavailable: POST /conversations/{open_conversation}/reply answered 503 (OperationalError)"
    ]
    assert "9876543210" not in caplog.text and "refund" not in caplog.text

    cut_database.restore()
    assert sends(external_services) == []
    with inbox.db.read() as session:
        assert session.scalars(select(Message).where(Message.role == "agent")).all() == []
    again = post_form(client, f"/conversations/{open_conversation}/reply", {"text": TEXT}, headers=headers)
    assert again.status_code in (200, 303)
    assert [request["body"]["text"]["body"] for request in sends(external_services)] == [TEXT]


def test_a_note_while_the_database_is_down_keeps_the_text(client, open_conversation, cut_database):
    cut_database()
    answer = post_form(
        client, f"/conversations/{open_conversation}/notes", {"text": TEXT}, headers={"HX-Request": "true"}
    )
    assert answer.status_code == 503
    assert "your note was not saved; it is kept below" in answer.text
    assert f'id="note-text" name="text" rows="3">{ESCAPED}</textarea>' in answer.text


def test_a_live_poll_while_the_database_is_down_leaves_the_screen_alone(client, open_conversation, cut_database):
    cut_database()
    answer = client.get(f"/conversations/{open_conversation}/transcript", headers={"HX-Request": "true"})
    assert answer.status_code == 503
    assert answer.headers["hx-reswap"] == "none"
    assert answer.json() == {"detail": "The inbox database is unavailable. Nothing was changed; try again in a moment."}


def test_an_attachment_without_javascript_while_the_database_is_down_keeps_the_caption(
    client, open_conversation, cut_database
):
    cut_database()
    answer = client.post(
        f"/conversations/{open_conversation}/attachment",
        data={"csrftoken": csrf_cookie(client), "caption": TEXT},
        files={"file": ("zip.png", b"\x89PNG\r\n\x1a\n", "image/png")},
        headers={"Accept": "text/html"},
    )
    assert answer.status_code == 503
    assert "your file was not sent; its caption is kept below, choose the file again" in answer.text
    assert f'value="{ESCAPED}"' in answer.text and "Choose the file again" in answer.text
