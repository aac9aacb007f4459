"""Per-customer order across instances: five messages from one customer within a second, their webhooks posted
alternately to Rasa instance 1 and instance 2 (as Meta may land them behind a load balancer), are answered in
order, once each. The connector's store (PostgreSQL, shared) lets only one instance at a time claim a customer's
oldest unfinished message (connectors/README.md, "Several Rasa processes")."""
from __future__ import annotations

import json
import secrets
import time

import httpx

from tests.e2e.clients import Customer
from whatsapp_sandbox.webhooks import sign

FIVE = [("do your prices include gst", "GST"), ("which size will fit me", "size chart"),
        ("thanks", "welcome"), ("what is your return policy?", "Free returns"),
        ("how long does delivery take?", "warehouse")]


def signed_webhook(cluster, customer: Customer, user_id: str, text: str) -> tuple[bytes, dict]:
    """A text message webhook shaped like the sandbox's (and Meta's), signed with the app secret."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": cluster.env["WHATSAPP_PHONE_NUMBER_ID"]},
        "contacts": [{"profile": {"name": customer.name}, "wa_id": customer.wa_id, "user_id": user_id}],
        "messages": [{"from": customer.wa_id, "from_user_id": user_id, "id": "wamid.order" + secrets.token_hex(12),
                      "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}],
    }
    body = json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "100000000000002", "changes": [{"value": value, "field": "messages"}]}]}).encode()
    return body, {"Content-Type": "application/json",
                  "X-Hub-Signature-256": sign(cluster.env["WHATSAPP_APP_SECRET"], body)}


def test_five_messages_within_a_second_on_both_instances_are_answered_in_order_once_each(cluster, capsys):
    customer = Customer(cluster.url("sandbox"), "919699000001", "Order Test")
    customer.send("hi")  # the sandbox now knows the customer; its reply names their user id
    greeting = customer.business_messages(0, wait=60)
    assert greeting, "no greeting"
    customer.seen = greeting[-1]["seq"]
    user_id = greeting[-1]["user_id"]

    instances = [cluster.url("rasa1"), cluster.url("rasa2")]
    started = time.monotonic()
    with httpx.Client(timeout=10) as http:
        for number, (text, _answer) in enumerate(FIVE):
            body, headers = signed_webhook(cluster, customer, user_id, text)
            response = http.post(f"{instances[number % 2]}/webhooks/whatsapp/webhook", content=body, headers=headers)
            assert response.status_code == 200, response.text
    posted_in = time.monotonic() - started
    replies = customer.replies(len(FIVE), timeout=120)
    replies += customer.silence(5)  # a duplicate would arrive now
    with capsys.disabled():
        print(f"\n[order] 5 webhooks posted alternately to instances 1 and 2 in {posted_in:.2f} s; "
              f"{len(replies)} replies: {[r[:30] for r in replies]}")
    assert len(replies) == len(FIVE), replies
    for reply, (text, answer) in zip(replies, FIVE, strict=True):
        assert answer.lower() in reply.lower(), (text, reply)
