"""A customer's photo end to end (issue 15): the sandbox sends Meta's webhook with a media id, the
connector records it in Rasa, the inbox takes it from the event stream and downloads it through the
sandbox's Graph API media endpoints. Before a hand-off the bot answers as before; during one it stays
silent and the photo reaches the agent. Prints the time from the webhook to the stored photo."""
from __future__ import annotations

import base64
import struct
import time
import zlib

import pytest

from tests.e2e.test_patterns import assert_handed_off


def _png(width: int = 64, height: int = 48) -> bytes:
    raw = b"".join(b"\x00" + bytes((30, 90, 200)) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _send_photo(customer, caption: str) -> float:
    """Returns when the webhook was answered (the sandbox posts it within this call)."""
    body = {"profile_name": customer.name, "media": {
        "type": "image", "mime_type": "image/jpeg", "caption": caption, "data_base64": base64.b64encode(_png()).decode()}}
    response = customer.http.post(f"/sandbox/api/customers/{customer.wa_id}/messages", json=body)
    response.raise_for_status()
    assert response.json()["webhook_status"] == 200
    return time.monotonic()


def _wait_stored(inbox_db, caption: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = inbox_db.query("select * from media_files where caption = ?", caption)
        if rows and rows[0]["state"] in ("stored", "failed"):
            return rows[0], time.monotonic()
        time.sleep(0.02)
    pytest.fail(f"the photo {caption!r} was not downloaded by the inbox within {timeout}s")


def test_a_photo_before_and_during_a_hand_off(customer, inbox_db, agent_login):
    # Before a hand-off: the bot's polite answer as before, and the inbox has the photo too.
    _send_photo(customer, "is this the right size?")
    assert len(customer.replies(1, timeout=60)) == 1
    row, _ = _wait_stored(inbox_db, "is this the right size?")
    assert (row["state"], row["mime"], row["size"]) == ("stored", "image/png", len(_png()))

    # During a hand-off: no bot answer, the photo reaches the agent's transcript.
    assignee = assert_handed_off(customer.say("agent please"))
    conversation = inbox_db.wait_conversation(customer.wa_id)
    webhook_answered = _send_photo(customer, "the zip on my jacket broke")
    row, stored_at = _wait_stored(inbox_db, "the zip on my jacket broke")
    print(f"\nphoto webhook answered -> stored by the inbox: {(stored_at - webhook_answered) * 1000:.0f} ms")
    assert row["state"] == "stored", row["last_error"]
    assert customer.silence(3) == []
    login = inbox_db.query("select login, name from agents where id = ?", conversation["assignee_id"])[0]
    assert login["name"].startswith(assignee)
    page = agent_login(login["login"]).page(conversation["id"])
    assert f'<img src="/media/{row["id"]}"' in page and "the zip on my jacket broke" in page
