"""The one Graph API client, sync and async, against a local fake Graph API: what is sent, what is
tried again (contracts/graph_api.yml) and what never is."""

from __future__ import annotations

import pytest

from conftest import closed_port
from fake_graph import HOLD, meta_error
from whatsapp_cloud import (
    OUTSIDE_SERVICE_WINDOW,
    RETRY_POLICY,
    SEND_KEY_FIELD,
    MetaError,
    WhatsAppSendError,
    WhatsAppSendUnconfirmed,
    read_payload,
)

TEXT = {"messaging_product": "whatsapp", "to": "919812345210", "type": "text", "text": {"body": "Hello"}}


@pytest.mark.parametrize(
    "failure",
    [
        (429, {}),
        (500, {"error": {"message": "oops"}}),
        (503, "busy"),
        meta_error(130429, "rate limit"),
        meta_error(131056, "pair rate limit"),
    ],
)
def test_throttling_and_server_errors_are_tried_again(graph, make_client, failure):
    client = make_client(graph.base_url)
    graph.script = [failure, failure]
    result = client.send(TEXT)
    assert result.ok and result.wamid == "wamid.3" and result.attempts == 3
    assert len(graph.bodies()) == 3 and client.sleeps == [0.5, 1.0]  # the caller's backoff, doubling


def test_the_pauses_double_up_to_the_callers_maximum_and_the_last_answer_is_returned(graph, make_client):
    client = make_client(graph.base_url, attempts=4)
    graph.script = [meta_error(130429, "rate limit")] * 4
    result = client.send(TEXT)
    assert not result.ok and result.attempts == 4 and result.http_status == 400
    assert result.error.code == 130429 and result.retryable and not result.uncertain
    assert client.sleeps == [0.5, 1.0, 1.5]
    with pytest.raises(WhatsAppSendError) as raised:
        graph.script = [meta_error(130429, "rate limit")] * 4
        client.send_text("Hello", to="919812345210")
    assert raised.value.retryable and raised.value.code == 130429 and "rate limit" in raised.value.reason


def test_outside_the_24_hour_window_is_not_tried_again(graph, make_client):
    client = make_client(graph.base_url)
    graph.script = [meta_error(OUTSIDE_SERVICE_WINDOW, "(#131047) Re-engagement message", details="more than 24 hours")]
    result = client.send(TEXT)
    assert not result.ok and not result.retryable and result.attempts == 1 and client.sleeps == []
    assert result.error == MetaError(131047, "Re-engagement message", "more than 24 hours")
    graph.script = [meta_error(OUTSIDE_SERVICE_WINDOW, "Re-engagement message")]
    with pytest.raises(WhatsAppSendError, match="24-hour window has closed") as raised:
        client.send_text("Are you there?", to="919812345210")
    assert raised.value.code == 131047 and not raised.value.retryable
    assert len(graph.bodies()) == 2  # one POST each


@pytest.mark.parametrize("code", [100, 190, 131026, 132000])
def test_other_refusals_are_returned_at_once(graph, make_client, code):
    client = make_client(graph.base_url)
    graph.script = [meta_error(code)]
    assert client.send(TEXT).attempts == 1 and len(graph.bodies()) == 1


def test_a_request_that_gets_no_answer_is_unconfirmed_and_sent_once(graph, make_client):
    client = make_client(graph.base_url, attempts=5, timeout=0.3)
    graph.script = [HOLD]  # Meta took the message; the answer never comes back
    result = client.send(TEXT)
    assert result.uncertain and not result.ok and not result.retryable
    assert result.attempts == 1 and client.sleeps == []
    graph.wait_for_requests(1)
    graph.script = [HOLD]
    with pytest.raises(WhatsAppSendUnconfirmed, match="may or may not have been sent"):
        client.send_text("Your order ships today.", to="919812345210")
    graph.wait_for_requests(2)
    assert len(graph.bodies()) == 2  # 5 attempts allowed each time, but a second POST could be a second message


def test_a_connection_never_made_is_tried_again(graph, make_client):
    client = make_client(graph.base_url, refused_connections=2)
    result = client.send(TEXT)
    assert result.ok and result.attempts == 3 and client.sleeps == [0.5, 1.0]
    assert len(graph.bodies()) == 1  # the refused attempts never reached Meta


def test_a_server_that_is_not_there_is_not_sent_and_not_uncertain(make_client):
    client = make_client(f"http://127.0.0.1:{closed_port()}/v21.0", attempts=3)
    result = client.send(TEXT)
    assert not result.ok and not result.uncertain and result.retryable and result.attempts == 3
    with pytest.raises(WhatsAppSendError, match="Could not reach the WhatsApp API") as raised:
        client.send_text("Hello", to="919812345210")
    assert raised.value.retryable


def test_a_customer_known_only_by_their_user_id_gets_it_as_recipient(graph, make_client):
    client = make_client(graph.base_url)
    assert client.send_text("Hello", recipient="US.13491208655302741918") == "wamid.1"
    client.send_interactive({"type": "button"}, to="919812345210", recipient="US.13491208655302741918")
    first, second = graph.bodies()
    assert first["recipient"] == "US.13491208655302741918" and "to" not in first
    assert second["to"] == "919812345210" and "recipient" not in second  # `to` wins (Meta's rule)
    with pytest.raises(WhatsAppSendError, match="neither a phone number nor a WhatsApp user id"):
        client.send_text("Hello")
    assert len(graph.bodies()) == 2


def test_the_send_key_travels_as_biz_opaque_callback_data(graph, make_client):
    client = make_client(graph.base_url)
    client.send_template({"name": "order_update", "language": {"code": "en"}}, to="919812345210", send_key="reply:42")
    client.send_text("No key", to="919812345210")
    keyed, plain = graph.bodies()
    assert SEND_KEY_FIELD == "biz_opaque_callback_data" and keyed[SEND_KEY_FIELD] == "reply:42"
    assert keyed["type"] == "template" and keyed["template"]["name"] == "order_update"
    assert SEND_KEY_FIELD not in plain and plain["text"] == {"preview_url": False, "body": "No key"}


def test_mark_read_with_typing_is_tried_once(graph, make_client):
    client = make_client(graph.base_url)
    graph.script = [(200, {"success": True})]
    client.mark_read("wamid.IN1", typing=True)
    assert graph.bodies() == [read_payload("wamid.IN1", typing=True)]
    assert graph.bodies()[0]["typing_indicator"] == {"type": "text"}
    graph.script = [(503, {})]
    with pytest.raises(WhatsAppSendError):
        client.mark_read("wamid.IN2")
    assert len(graph.bodies()) == 2 and client.sleeps == []


def test_a_document_is_uploaded_then_sent_by_its_media_id(graph, make_client):
    client = make_client(graph.base_url)
    graph.script = [(503, {})]  # the upload is tried again; nothing reached the customer yet
    wamid = client.send_media(
        kind="document",
        data=b"%PDF-1.4",
        mime="application/pdf",
        filename="invoice.pdf",
        caption="Your invoice",
        send_key="reply:7",
        recipient="US.1349",
    )
    paths = [path for path, _ in graph.requests]
    assert paths == ["/v21.0/1234/media", "/v21.0/1234/media", "/v21.0/1234/messages"] and wamid == "wamid.3"
    [message] = graph.bodies()
    assert message["document"] == {"id": "media.2", "caption": "Your invoice", "filename": "invoice.pdf"}
    assert message["recipient"] == "US.1349" and message[SEND_KEY_FIELD] == "reply:7"


def test_the_policy_file_is_the_contract():
    assert RETRY_POLICY["transport"] == "connection_not_made" and 130429 in RETRY_POLICY["meta_error_codes"]
    assert 131047 not in RETRY_POLICY["meta_error_codes"]
