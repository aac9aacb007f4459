"""A WhatsApp customer with a username and no phone number, end to end: the sandbox sends Meta's
webhooks without `from` (only the business-scoped user id, BSUID, and the username), the connector
keys the conversation by the BSUID, the bot's answers and the agent's reply go to
`"recipient": <BSUID>`, and the inbox shows the customer by @username."""
from __future__ import annotations

import itertools
import time

import pytest

from tests.e2e.clients import Customer
from tests.e2e.test_patterns import assert_handed_off, assert_kb_answer

_usernames = itertools.count(1)


@pytest.fixture
def phone_less_customer(healthy, turn_finished):
    return Customer.without_phone(healthy.url("sandbox"), f"meera.e2e{time.time_ns() % 10**6}{next(_usernames)}",
                                  turn_finished=turn_finished)


def test_a_customer_without_a_phone_is_answered_handed_off_and_reached_by_an_agent(
        phone_less_customer, inbox_db, agent_login):
    customer = phone_less_customer
    bsuid = customer.wa_id
    assert bsuid.startswith("IN.")

    # The bot answers, addressed to the BSUID (no phone is known).
    assert customer.say("hi")
    assert_kb_answer(customer.say("what is your return policy?"))
    answers = customer.business_messages()
    assert answers and all(m["content"].get("recipient") == bsuid and "to" not in m["content"] for m in answers)

    # Asking for a person hands off honestly; the inbox has the conversation under the BSUID.
    assignee = assert_handed_off(customer.say("agent please"))
    conversation = inbox_db.wait_conversation(bsuid)
    [person] = inbox_db.query("select * from customers where id = ?", conversation["customer_id"])
    assert (person["phone"], person["bsuid"], person["username"]) == (None, bsuid, customer.username)

    login = inbox_db.query("select login, name from agents where id = ?", conversation["assignee_id"])[0]
    assert login["name"].startswith(assignee)
    agent = agent_login(login["login"])
    assert f"@{customer.username}" in agent.page(conversation["id"])

    # A further message reaches the agent, the bot stays silent, and the agent's reply reaches the customer.
    customer.send("hello? is anyone there")
    inbox_db.wait_message(conversation["id"], "customer", "hello? is anyone there")
    assert customer.silence(3) == []
    agent.reply(conversation["id"], "Hi Meera, this is a person. Looking into it now.")
    assert customer.replies(1, timeout=20) == ["Hi Meera, this is a person. Looking into it now."]
    [reply] = customer.business_messages()[-1:]
    assert reply["content"].get("recipient") == bsuid and "to" not in reply["content"]
