"""Losing nothing: fast acknowledgement, duplicates, ordering, and a crash after the 200."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from tests.connector.support import (
    Host,
    change,
    encode,
    free_port,
    new_wa_id,
    sign,
    start_host,
    text_message,
    texts,
    webhook,
)


def test_acknowledges_at_once_while_the_bot_is_busy(host, sandbox):
    wa_id = new_wa_id()
    timings = []
    for text in ("slow 2", "and another thing"):
        started = time.monotonic()
        assert host.post(webhook(change([text_message(wa_id, text)]))).status_code == 200
        timings.append(time.monotonic() - started)
    assert max(timings) < 0.5  # the bot needs 2 s for the first one
    replies = texts(sandbox.wait_for_business(wa_id, at_least=2))
    assert replies == ["echo: slow 2", "echo: and another thing"]


def test_the_same_message_delivered_twice_is_answered_once(host, sandbox):
    wa_id = new_wa_id()
    message = text_message(wa_id, "where is my order #2812?")
    payload = webhook(change([message]))
    assert host.post(payload).status_code == 200
    host.store.wait_for_state(message["id"], "done")
    assert host.post(payload).status_code == 200  # Meta's redelivery
    time.sleep(0.5)
    assert texts(sandbox.business_messages(wa_id)) == ["echo: where is my order #2812?"]
    assert len([e for e in host.journal(wa_id) if e["event"] == "user"]) == 1


def test_concurrent_duplicate_deliveries_are_answered_once(host, sandbox):
    wa_id = new_wa_id()
    message = text_message(wa_id, "hello from two deliveries")
    body = encode(webhook(change([message])))
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: host.post(body=body).status_code, range(10)))
    assert statuses == [200] * 10
    host.store.wait_for_state(message["id"], "done")
    time.sleep(0.5)
    assert texts(sandbox.business_messages(wa_id)) == ["echo: hello from two deliveries"]
    assert len([e for e in host.journal(wa_id) if e["event"] == "user"]) == 1


def test_one_customers_messages_are_handled_in_order(host, sandbox):
    wa_id = new_wa_id()
    sent = ["slow 0.5"] + [f"message {n}" for n in range(1, 8)]
    for text in sent:
        assert host.post(webhook(change([text_message(wa_id, text)]))).status_code == 200
    replies = texts(sandbox.wait_for_business(wa_id, at_least=len(sent)))
    assert replies == [f"echo: {text}" for text in sent]
    assert [e["text"] for e in host.journal(wa_id) if e["event"] == "user"] == sent


def test_a_slow_customer_does_not_hold_up_another(host, sandbox):
    slow_customer, quick_customer = new_wa_id(), new_wa_id()
    host.post(webhook(change([text_message(slow_customer, "slow 2")])))
    host.post(webhook(change([text_message(quick_customer, "quick question")])))
    [quick_reply] = sandbox.wait_for_business(quick_customer)
    [slow_reply] = sandbox.wait_for_business(slow_customer)
    assert quick_reply["seq"] < slow_reply["seq"]
    assert slow_reply["at"] - quick_reply["at"] > 1.0


def test_a_message_acknowledged_before_a_crash_is_answered_after_restart(run_dir, stack, sandbox):
    """Kill -9 the connector while it is stuck replying (Meta answers 500), restart it. The reply
    whose send the crash cut short is sent again once Meta has reported no such message for the
    settle time (1 s here, 60 s by default)."""
    port = free_port()
    store_path = run_dir / "crash-store.db"
    slow_retries = {"WHATSAPP_SEND_ATTEMPTS": "8", "WHATSAPP_SEND_BACKOFF_SECONDS": "1",
                    "WHATSAPP_SEND_SETTLE_SECONDS": "1"}
    process = start_host(run_dir, "crash-host", port, stack["sandbox_url"], store_path, **slow_retries)
    host = Host(process, port, store_path)
    wa_id = new_wa_id()
    first, second = text_message(wa_id, "is COD available?"), text_message(wa_id, "and for Pune?")
    try:
        sandbox.fail_next("http_500", count=1000)
        assert host.post(webhook(change([first]))).status_code == 200
        assert host.post(webhook(change([second]))).status_code == 200
        host.store.wait_for_state(first["id"], "processing")
        process.kill()

        assert host.store.inbound(first["id"])["state"] == "processing"
        assert host.store.inbound(second["id"])["state"] == "pending"
        assert sandbox.business_messages(wa_id) == []

        sandbox.clear_failures()
        process.start(f"{host.url}/webhooks/whatsapp/")
        replies = texts(sandbox.wait_for_business(wa_id, at_least=2, timeout=20))
        assert replies == ["echo: is COD available?", "echo: and for Pune?"]
        assert host.store.wait_for_state(first["id"], "done")["attempts"] == 2
        assert host.store.wait_for_state(second["id"], "done")["attempts"] == 1
        time.sleep(0.5)
        assert len(sandbox.business_messages(wa_id)) == 2
    finally:
        process.stop()


def test_signature_is_checked_on_the_exact_bytes_received(host, sandbox):
    """Re-serialising the JSON (other spacing, other escaping) must not be what is verified."""
    wa_id = new_wa_id()
    body = ('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":'
            '{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"106540352242922"},'
            '"contacts":[{"profile":{"name":"Zo\\u00eb"},"wa_id":"' + wa_id + '"}],'
            '"messages":[{"from":"' + wa_id + '","id":"wamid.exact-' + wa_id + '","timestamp":"1","type":"text",'
            '"text":{"body":"caf\\u00e9 \\ud83d\\ude00"}}]}}]}]}').encode()
    assert host.post(body=body, signature=sign(body)).status_code == 200
    assert texts(sandbox.wait_for_business(wa_id)) == ["echo: caf\u00e9 \U0001F600"]
