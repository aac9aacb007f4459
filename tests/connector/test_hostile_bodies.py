"""Hostile webhook bodies (issue 13, item 5), against the connector in a real HTTP server.

A signed body nested 10,000 levels deep is a dead letter and a 200 (a 500 would make Meta
redeliver it for days); bodies over WHATSAPP_MAX_BODY_BYTES (4 MiB by default) are refused with
413, and a request without a well-formed signature is refused before its body is read.
"""

from __future__ import annotations

import json
import socket
import sys

from connectors.settings import DEFAULT_MAX_BODY_BYTES
from tests.connector.support import change, new_wa_id, sign, text_message, texts, webhook


def test_a_signed_body_nested_10000_levels_deep_is_a_dead_letter_and_a_200(host):
    body = b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    before = len(host.store.dead_letters())
    answer = host.post(body=body)
    assert answer.status_code == 200
    letters = host.store.dead_letters()
    assert len(letters) == before + 1
    assert "nested too deeply" in letters[-1]["reason"] and bytes(letters[-1]["body"]) == body


def test_a_deep_object_inside_a_message_does_not_sink_the_webhook(host, sandbox):
    wa_id = new_wa_id()
    message = text_message(wa_id, "hello")
    deep: dict = {}
    for _ in range(5_000):
        deep = {"x": deep}
    payload = webhook(change([message]))
    payload["entry"][0]["changes"][0]["value"]["future_field"] = deep
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # only so the test itself can encode it
    try:
        body = json.dumps(payload).encode()
    finally:
        sys.setrecursionlimit(limit)
    answer = host.post(body=body)
    assert answer.status_code == 200
    assert "nested too deeply" in host.store.dead_letters()[-1]["reason"]


def test_a_body_over_the_limit_is_refused_with_413_and_nothing_is_stored(host):
    wa_id = new_wa_id()
    payload = webhook(change([text_message(wa_id, "too big")]))
    payload["entry"][0]["changes"][0]["value"]["padding"] = "x" * DEFAULT_MAX_BODY_BYTES
    body = json.dumps(payload).encode()
    before = len(host.store.dead_letters())
    answer = host.post(body=body)
    assert answer.status_code == 413
    assert len(host.store.dead_letters()) == before
    assert host.store.query("SELECT count(*) AS n FROM wa_inbound_messages WHERE wa_id = ?", wa_id)[0]["n"] == 0


def raw_request(host, headers: str) -> bytes:
    """Sends only the request head (the body never comes) and returns the status line: the server
    must answer from the head alone, without waiting to buffer a body."""
    port = int(host.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            f"POST /webhooks/whatsapp/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{headers}\r\n".encode()
        )
        answer = connection.recv(200)
    return answer.split(b"\r\n", 1)[0]


def test_a_request_without_a_signature_is_refused_before_its_body_is_read(host):
    status_line = raw_request(host, "Content-Length: 90000000\r\n")
    assert status_line.endswith(b"403 Forbidden")


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(host):
    signature = sign(b"whatever")
    status_line = raw_request(host, f"Content-Length: 90000000\r\nX-Hub-Signature-256: {signature}\r\n")
    assert b"413" in status_line


def test_a_3_mb_text_message_is_stored_whole_and_reaches_the_bot_capped(host, sandbox):
    wa_id = new_wa_id()
    text = "my order " + "x" * 3_000_000
    message = text_message(wa_id, text)
    assert host.post(webhook(change([message]))).status_code == 200
    replies = texts(sandbox.wait_for_business(wa_id, at_least=2))
    # The echo (6 + 4,096 characters) comes back split at a space, which the split drops.
    assert "".join(replies).replace(" ", "") == ("echo: " + text[:4096]).replace(" ", "")
    [seen] = [event for event in host.journal(wa_id) if event["event"] == "user"]
    assert len(seen["text"]) == 4096
    assert text in host.store.inbound(message["id"])["raw"]
