"""Media both ways against the real WhatsApp sandbox (Meta's Graph API media endpoints): a customer's
photo, document, voice note, location and contact card reach the agent as what they are; a failed
download is retried and never lost; an expired id is shown as failed; hostile files (wrong type, too
big, SVG with script) are never rendered inline; an agent's photo or PDF is uploaded and sent by id."""

from __future__ import annotations

import base64
import struct
import zlib
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from inbox.models import MediaFile, Message
from inbox.services.event_stream import EventStreamConsumer, SqlBrokerSource
from inbox.services.media import MediaFetcher, storage_for
from inbox.services.replies import AgentReplies
from inbox.tests import sandbox_server
from inbox.tests.conftest import WEDNESDAY_11AM, login, post_handoff

if not sandbox_server.available():
    pytest.skip("the WhatsApp sandbox needs the Rasa environment (.venv)", allow_module_level=True)

CUSTOMER = "919876543210"
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
SVG_WITH_SCRIPT = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'


def png(width: int = 4, height: int = 3) -> bytes:
    raw = b"".join(b"\x00" + bytes((200, 30, 30)) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_server.running_sandbox() as url:
        yield url


@pytest.fixture
def media_inbox(settings, sandbox, clock):
    """The inbox of conftest, talking to the sandbox instead of the fake Graph API."""
    from inbox.context import Inbox
    from inbox.services import bootstrap

    settings = settings.model_copy(update={"whatsapp_api_base_url": f"{sandbox}/v21.0"})
    instance = Inbox(settings, clock=clock)
    instance.whatsapp.sleep = lambda _seconds: None
    bootstrap.prepare(instance)
    yield instance
    instance.close()


@pytest.fixture
def agent_client(media_inbox, agents):
    from starlette.testclient import TestClient

    from inbox.web.app import create_app

    with TestClient(create_app(media_inbox, run_background_workers=False), follow_redirects=False) as client:
        login(client, "anita")
        yield client


def customer_sends(sandbox: str, kind: str, data: bytes | None, mime: str, **extra) -> dict:
    """The customer's phone sends a file; returns the message object Meta's webhook carries."""
    media = {"type": kind, "mime_type": mime, **extra}
    if data is not None:
        media["data_base64"] = base64.b64encode(data).decode()
    sent = httpx.post(f"{sandbox}/sandbox/api/customers/{CUSTOMER}/messages", json={"media": media}).json()
    messages = httpx.get(f"{sandbox}/sandbox/api/messages", params={"wa_id": CUSTOMER, "direction": "customer"}).json()
    return next(m["content"] for m in messages["messages"] if m["id"] == sent["message_id"])


def stream_user_event(inbox, broker, message: dict, at=WEDNESDAY_11AM) -> None:
    """What the connector records in Rasa for that message, through the event broker."""
    kind = message["type"]
    details = message[kind]
    whatsapp = {"wa_id": CUSTOMER, "profile_name": "Priya Sharma", "phone_number_id": "106540352242922",
                "message_id": message["id"], "type": kind, "timestamp": str(int(at.timestamp()))}  # fmt: skip
    if kind in ("location", "contacts"):
        whatsapp[kind] = details
    else:
        whatsapp["media"] = {
            k: v for k, v in details.items() if k in ("id", "mime_type", "sha256", "caption", "filename", "voice")
        }
    named = details if isinstance(details, dict) else {}
    label = " ".join(p for p in (f"[{kind}]", named.get("filename"), named.get("caption")) if p)
    broker.publish(CUSTOMER, {"event": "user", "timestamp": at.timestamp(), "text": label,
                              "metadata": {"whatsapp": whatsapp}, "input_channel": "whatsapp"})  # fmt: skip
    EventStreamConsumer(inbox, SqlBrokerSource(inbox.settings.resolved_rasa_events_db_url)).run_once()


def only_media(inbox) -> MediaFile:
    with inbox.db.read() as session:
        row = session.scalars(select(MediaFile).order_by(MediaFile.id.desc())).first()
        session.expunge(row)
        return row


def transcript(client, inbox) -> str:
    with inbox.db.read() as session:
        conversation_id = session.scalar(select(Message.conversation_id))
    return client.get(f"/conversations/{conversation_id}/transcript").text


def test_a_customer_photo_is_downloaded_checked_and_shown_with_its_caption(media_inbox, broker, sandbox, agent_client):
    photo = png()
    stream_user_event(media_inbox, broker, customer_sends(sandbox, "image", photo, "image/jpeg", caption="see the zip"))
    assert only_media(media_inbox).state == "pending"
    assert MediaFetcher(media_inbox).run_once() == 1

    media = only_media(media_inbox)
    assert (media.state, media.mime, media.size, media.declared_mime) == (
        "stored",
        "image/png",
        len(photo),
        "image/jpeg",
    )
    assert storage_for(media_inbox).path(media.sha256).read_bytes() == photo  # content-addressed: <dir>/ab/cd/<sha256>
    assert storage_for(media_inbox).path(media.sha256).parent.name == media.sha256[2:4]
    page = transcript(agent_client, media_inbox)
    assert f'<img src="/media/{media.id}"' in page and "see the zip" in page and "[image]" not in page

    served = agent_client.get(f"/media/{media.id}")
    assert served.status_code == 200 and served.content == photo
    assert served.headers["content-type"] == "image/png"  # the sniffed type, not Meta's declared one
    assert served.headers["content-disposition"].startswith("inline")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]


def test_media_are_for_signed_in_agents_only(media_inbox, broker, sandbox, client):
    stream_user_event(media_inbox, broker, customer_sends(sandbox, "image", png(), "image/png"))
    MediaFetcher(media_inbox).run_once()
    answer = client.get(f"/media/{only_media(media_inbox).id}")
    assert answer.status_code == 401 and answer.content != png()


def test_a_failed_download_is_retried_and_shown_meanwhile(media_inbox, broker, sandbox, agent_client, clock):
    stream_user_event(
        media_inbox, broker, customer_sends(sandbox, "document", PDF, "application/pdf", filename="invoice.pdf")
    )
    httpx.post(f"{sandbox}/sandbox/api/media-failures", json={"count": 1}).raise_for_status()
    MediaFetcher(media_inbox).run_once()
    media = only_media(media_inbox)
    assert media.state == "retrying" and "HTTP 500" in media.last_error
    assert "unavailable — retrying automatically" in transcript(agent_client, media_inbox)

    assert MediaFetcher(media_inbox).run_once() == 0  # not due yet (backoff)
    clock.advance(seconds=3)
    assert MediaFetcher(media_inbox).run_once() == 1
    media = only_media(media_inbox)
    assert (media.state, media.mime, media.filename, media.attempts) == ("stored", "application/pdf", "invoice.pdf", 2)
    page = transcript(agent_client, media_inbox)
    assert "invoice.pdf" in page and "application/pdf" in page and f"/media/{media.id}?download=1" in page
    served = agent_client.get(f"/media/{media.id}")
    assert served.headers["content-disposition"].startswith("attachment")  # a PDF viewer can run script


def test_an_expired_media_id_is_shown_as_failed_with_a_try_again(media_inbox, broker, sandbox, agent_client):
    message = customer_sends(sandbox, "audio", b"OggS" + b"\x00" * 60, "audio/ogg")
    httpx.post(f"{sandbox}/sandbox/api/media/{message['audio']['id']}/expire").raise_for_status()
    stream_user_event(media_inbox, broker, message)
    MediaFetcher(media_inbox).run_once()
    media = only_media(media_inbox)
    assert media.state == "failed" and "does not exist" in media.last_error
    page = transcript(agent_client, media_inbox)
    assert "Audio unavailable — download failed" in page and "Try again" in page


def test_a_voice_note_gets_a_player(media_inbox, broker, sandbox, agent_client):
    message = customer_sends(sandbox, "audio", b"OggS" + b"\x00" * 60, "audio/ogg; codecs=opus")
    message["audio"]["voice"] = True  # recorded in WhatsApp: Meta marks voice notes
    stream_user_event(media_inbox, broker, message)
    MediaFetcher(media_inbox).run_once()
    media = only_media(media_inbox)
    assert media.mime == "audio/ogg"
    page = transcript(agent_client, media_inbox)
    assert f'<audio controls preload="metadata" src="/media/{media.id}">' in page and "Voice note" in page


def test_an_svg_with_script_posing_as_a_photo_is_never_rendered_inline(media_inbox, broker, sandbox, agent_client):
    stream_user_event(media_inbox, broker, customer_sends(sandbox, "image", SVG_WITH_SCRIPT, "image/jpeg"))
    MediaFetcher(media_inbox).run_once()
    media = only_media(media_inbox)
    assert (media.state, media.mime) == ("stored", "image/svg+xml")
    page = transcript(agent_client, media_inbox)
    assert "<img" not in page and "<script>" not in page and "the content is image/svg+xml" in page
    served = agent_client.get(f"/media/{media.id}")
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]


def test_html_declared_as_png_is_an_attachment(media_inbox, broker, sandbox, agent_client):
    stream_user_event(
        media_inbox, broker, customer_sends(sandbox, "document", b"<html><script>x()</script></html>", "image/png")
    )
    MediaFetcher(media_inbox).run_once()
    served = agent_client.get(f"/media/{only_media(media_inbox).id}")
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")


def test_an_oversized_file_is_refused_without_being_stored(media_inbox, broker, sandbox, agent_client):
    media_inbox.settings.inbox_media_max_bytes = 1000
    stream_user_event(media_inbox, broker, customer_sends(sandbox, "video", b"\x00" * 5000, "video/mp4"))
    MediaFetcher(media_inbox).run_once()
    media = only_media(media_inbox)
    assert media.state == "failed" and "over the 1000 bytes limit" in media.last_error and media.sha256 is None


def test_a_location_and_a_contact_card(media_inbox, broker, agent_client):
    location = {"id": "wamid.loc", "type": "location",
                "location": {"latitude": 12.9716, "longitude": 77.5946, "name": "Kesar Lane store", "address": "MG Road"}}  # fmt: skip
    stream_user_event(media_inbox, broker, location)
    contact = {
        "id": "wamid.card",
        "type": "contacts",
        "contacts": [{"name": "Ravi Kumar", "phones": ["+91 98450 12345"]}],
    }
    stream_user_event(media_inbox, broker, contact, at=WEDNESDAY_11AM + timedelta(seconds=5))
    page = transcript(agent_client, media_inbox)
    assert "https://www.openstreetmap.org/?mlat=12.9716&amp;mlon=77.5946" in page and "Kesar Lane store" in page
    assert "Ravi Kumar" in page and "+91 98450 12345" in page
    assert MediaFetcher(media_inbox).run_once() == 0  # nothing to download


def _open_conversation(agent_client) -> int:
    from inbox.tests.conftest import BOT_TOKEN, handoff_payload

    answer = agent_client.post(
        "/api/v1/handoffs", json=handoff_payload(), headers={"Authorization": f"Bearer {BOT_TOKEN}"}
    )
    return answer.json()["inbox_conversation_id"]


def _attach(agent_client, conversation_id: int, name: str, data: bytes, mime: str, caption: str = ""):
    from inbox.tests.conftest import csrf_cookie

    return agent_client.post(
        f"/conversations/{conversation_id}/attachment",
        data={"caption": caption},
        files={"file": (name, data, mime)},
        # htmx sends the CSRF token as a header (inbox.js); asgi-csrf 0.11 cannot read it from a
        # multipart body with python-multipart 0.0.34, so the attachment form needs JavaScript.
        headers={"HX-Request": "true", "X-CSRFToken": csrf_cookie(agent_client)},
    )


def _business_messages(sandbox: str) -> list[dict]:
    return httpx.get(f"{sandbox}/sandbox/api/messages", params={"wa_id": CUSTOMER, "direction": "business"}).json()[
        "messages"
    ]


def test_an_agent_sends_a_photo_and_a_pdf_uploaded_and_sent_by_id(media_inbox, sandbox, agent_client):
    conversation_id = _open_conversation(agent_client)
    before = len(_business_messages(sandbox))
    assert (
        _attach(agent_client, conversation_id, "new-zip.png", png(), "image/png", "The replacement zip").status_code
        == 200
    )
    assert _attach(agent_client, conversation_id, "return label.pdf", PDF, "application/pdf").status_code == 200

    image, document = _business_messages(sandbox)[before:]
    assert image["type"] == "image" and image["content"]["image"]["caption"] == "The replacement zip"
    assert httpx.get(f"{sandbox}/sandbox/api/media/{image['content']['image']['id']}").content == png()
    assert document["type"] == "document" and document["content"]["document"]["filename"] == "return label.pdf"
    assert httpx.get(f"{sandbox}/sandbox/api/media/{document['content']['document']['id']}").content == PDF
    assert document["content"]["biz_opaque_callback_data"].startswith("kl-reply-")  # the text replies' send key
    with media_inbox.db.read() as session:
        statuses = session.scalars(select(Message.delivery_status).where(Message.role == "agent")).all()
    assert statuses == ["accepted", "accepted"]
    page = transcript(agent_client, media_inbox)
    assert "return label.pdf" in page and "The replacement zip" in page


@pytest.mark.parametrize(
    ("name", "data", "mime", "reason"),
    [
        ("evil.png", SVG_WITH_SCRIPT, "image/png", "this file is image/svg+xml"),
        ("huge.png", png() + b"\x00" * (5 * 1024 * 1024), "image/png", "up to 5.0 MB"),
    ],
)
def test_an_attachment_whatsapp_would_refuse_is_refused_before_upload(
    media_inbox, sandbox, agent_client, name, data, mime, reason
):
    conversation_id = _open_conversation(agent_client)
    before = len(_business_messages(sandbox))
    answer = _attach(agent_client, conversation_id, name, data, mime)
    assert answer.status_code == 422 and reason in answer.text
    assert len(_business_messages(sandbox)) == before


def test_an_attachment_whose_send_fails_is_retried_like_a_text_reply(media_inbox, sandbox, agent_client, clock):
    conversation_id = _open_conversation(agent_client)
    httpx.post(f"{sandbox}/sandbox/api/failures", json={"mode": "http_500", "count": 3}).raise_for_status()
    _attach(agent_client, conversation_id, "photo.png", png(), "image/png")
    with media_inbox.db.read() as session:
        reply = session.scalars(select(Message).where(Message.role == "agent")).one()
        assert reply.delivery_status == "sending" and reply.next_attempt_at is not None  # retry scheduled
    clock.advance(seconds=31)
    AgentReplies(media_inbox).recover()
    with media_inbox.db.read() as session:
        assert session.scalars(select(Message.delivery_status).where(Message.role == "agent")).one() == "accepted"
    assert _business_messages(sandbox)[-1]["type"] == "image"


def test_a_photo_during_a_hand_off_reaches_the_agent(media_inbox, broker, sandbox, agent_client):
    post_handoff(agent_client)
    stream_user_event(media_inbox, broker, customer_sends(sandbox, "image", png(), "image/png", caption="the zip"))
    MediaFetcher(media_inbox).run_once()
    with media_inbox.db.read() as session:
        from inbox.models import Conversation

        conversation = session.scalars(select(Conversation)).one()
        assert conversation.status == "open" and conversation.waiting_since is not None
    assert f'<img src="/media/{only_media(media_inbox).id}"' in transcript(agent_client, media_inbox)


def test_an_attachment_without_the_csrf_token_is_refused(media_inbox, sandbox, agent_client):
    conversation_id = _open_conversation(agent_client)
    before = len(_business_messages(sandbox))
    try:
        answer = agent_client.post(
            f"/conversations/{conversation_id}/attachment",
            files={"file": ("a.png", png(), "image/png")},
            headers={"HX-Request": "true", "X-CSRFToken": "forged"},
        )
        assert answer.status_code == 403
    except TypeError:  # asgi-csrf 0.11 + python-multipart 0.0.34 fail parsing the body: refused all the same
        pass
    assert len(_business_messages(sandbox)) == before


def test_the_sandbox_plays_metas_media_endpoints(sandbox):
    """The Graph calls the inbox relies on, as Meta answers them: token-protected, expiring URLs; uploads
    checked against Meta's types and sizes; sends by id only for uploaded files."""
    from inbox.tests.fakes import GRAPH_TOKEN, PHONE_NUMBER_ID

    token = {"Authorization": f"Bearer {GRAPH_TOKEN}"}
    media_id = customer_sends(sandbox, "image", png(), "image/png")["image"]["id"]
    assert httpx.get(f"{sandbox}/v21.0/{media_id}").json()["error"]["code"] == 190  # no token
    info = httpx.get(f"{sandbox}/v21.0/{media_id}", headers=token).json()
    assert (info["mime_type"], info["file_size"], info["id"]) == ("image/png", len(png()), media_id)
    assert httpx.get(info["url"]).status_code == 401  # the download URL needs the token too
    assert httpx.get(info["url"], headers=token).content == png()

    upload = f"{sandbox}/v21.0/{PHONE_NUMBER_ID}/media"
    form = {"messaging_product": "whatsapp", "type": "image/svg+xml"}
    refused = httpx.post(upload, data=form, files={"file": ("x.svg", SVG_WITH_SCRIPT, "image/svg+xml")}, headers=token)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == 131053
    big = png() + b"\x00" * (5 * 1024 * 1024)
    form["type"] = "image/png"
    refused = httpx.post(upload, data=form, files={"file": ("big.png", big, "image/png")}, headers=token)
    assert refused.json()["error"]["code"] == 131053
    send = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "image", "image": {"id": "123456789"}}
    refused = httpx.post(f"{sandbox}/v21.0/{PHONE_NUMBER_ID}/messages", json=send, headers=token)
    assert refused.json()["error"]["code"] == 131053  # not an uploaded file


def test_a_photo_whose_bytes_are_audio_is_offered_as_a_download(media_inbox, broker, sandbox, agent_client):
    stream_user_event(media_inbox, broker, customer_sends(sandbox, "image", b"OggS" + b"\x00" * 60, "image/jpeg"))
    MediaFetcher(media_inbox).run_once()
    media = only_media(media_inbox)
    page = transcript(agent_client, media_inbox)
    assert media.mime == "audio/ogg" and "<img" not in page and f"/media/{media.id}?download=1" in page
    assert "the content is audio/ogg" in page
