"""The composer's attachment form without JavaScript: a plain multipart POST (the CSRF token in the
body's first field, as the form sends it) is checked and sent like the htmx one; bad input gets a
clear answer with the caption kept; a forged or token-less post is refused with a 403 and nothing is
sent; the upload size limit still holds."""

# ruff: noqa: F811 (fixtures of test_media.py, imported, are requested by name)
from __future__ import annotations

from inbox.tests.conftest import csrf_cookie
from inbox.tests.test_media import (  # noqa: F401 (fixtures)
    SVG_WITH_SCRIPT,
    _business_messages,
    _open_conversation,
    agent_client,
    media_inbox,
    png,
    sandbox,
)
from inbox.web.routes_media import UPLOAD_LIMIT_BYTES


def plain_post(client, conversation_id: int, fields: dict, file: tuple):
    """What a browser without JavaScript sends: no HX-Request, no X-CSRFToken header, fields then file."""
    return client.post(
        f"/conversations/{conversation_id}/attachment",
        data=fields,
        files={"file": file},
        headers={"Accept": "text/html"},
    )


def test_a_photo_sent_without_javascript_reaches_the_customer(media_inbox, sandbox, agent_client):
    conversation_id = _open_conversation(agent_client)
    before = len(_business_messages(sandbox))
    fields = {"csrftoken": csrf_cookie(agent_client), "caption": "Your replacement zip"}
    answer = plain_post(agent_client, conversation_id, fields, ("zip.png", png(), "image/png"))
    assert answer.status_code == 303 and answer.headers["location"] == f"/conversations/{conversation_id}"
    (sent,) = _business_messages(sandbox)[before:]
    assert sent["type"] == "image" and sent["content"]["image"]["caption"] == "Your replacement zip"
    assert "Your replacement zip" in agent_client.get(f"/conversations/{conversation_id}").text


def test_a_refused_file_without_javascript_says_why_and_keeps_the_caption(media_inbox, sandbox, agent_client):
    conversation_id = _open_conversation(agent_client)
    before = len(_business_messages(sandbox))
    fields = {"csrftoken": csrf_cookie(agent_client), "caption": "Label for the return"}
    answer = plain_post(agent_client, conversation_id, fields, ("label.png", SVG_WITH_SCRIPT, "image/png"))
    assert answer.status_code == 303
    page = agent_client.get(answer.headers["location"]).text
    assert "this file is image/svg+xml" in page  # the reason, as a flash
    assert "Label for the return</textarea>" in page  # the caption back in the composer
    assert len(_business_messages(sandbox)) == before


def test_forged_or_token_less_multipart_posts_are_refused_and_nothing_is_sent(media_inbox, sandbox, agent_client):
    conversation_id = _open_conversation(agent_client)
    before = len(_business_messages(sandbox))
    photo = ("a.png", png(), "image/png")
    forged_field = plain_post(agent_client, conversation_id, {"csrftoken": "forged", "caption": "x"}, photo)
    no_token = plain_post(agent_client, conversation_id, {"caption": "x"}, photo)
    forged_header = agent_client.post(
        f"/conversations/{conversation_id}/attachment",
        files={"file": photo},
        headers={"HX-Request": "true", "X-CSRFToken": "forged"},
    )
    for answer in (forged_field, no_token, forged_header):
        assert answer.status_code == 403
        assert "security token is missing or out of date" in answer.text and "Nothing was sent" in answer.text
    assert len(_business_messages(sandbox)) == before


def test_the_upload_limit_still_holds_without_javascript(media_inbox, sandbox, agent_client):
    conversation_id = _open_conversation(agent_client)
    before = len(_business_messages(sandbox))
    too_big = ("big.pdf", b"%PDF-1.4\n" + b"0" * UPLOAD_LIMIT_BYTES, "application/pdf")
    answer = plain_post(agent_client, conversation_id, {"csrftoken": csrf_cookie(agent_client)}, too_big)
    assert answer.status_code == 413
    assert len(_business_messages(sandbox)) == before
