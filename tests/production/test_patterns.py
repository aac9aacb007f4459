"""The four escalation patterns and the agent loop, through the production profile: the sandbox (Meta) posts
signed webhooks to the proxy over HTTPS, the agent works in the inbox through the proxy."""
from __future__ import annotations

import httpx

from tests.e2e.clients import Customer
from tests.e2e.test_patterns import KB_QUESTIONS, agent_takes_over_and_hands_back, assert_handed_off, assert_kb_answer


def test_low_confidence_hands_off_and_the_agent_loop_works(customer, inbox_db, agent_login):
    assert len(customer.say("hi")) == 1
    assignee = assert_handed_off(customer.say("my cat knocked over the plant"))
    assert inbox_db.wait_conversation(customer.wa_id)["reason"] == "low_confidence"
    agent_takes_over_and_hands_back(customer, inbox_db, agent_login, assignee)


def test_agent_please(customer, inbox_db, agent_login):
    assert_kb_answer(customer.say(KB_QUESTIONS[0]))
    assignee = assert_handed_off(customer.say("agent please"))
    assert inbox_db.wait_conversation(customer.wa_id)["reason"] == "customer_request"
    agent_takes_over_and_hands_back(customer, inbox_db, agent_login, assignee)


def test_refund_topic_pings_slack(customer, inbox_db, agent_login, slack):
    assignee = assert_handed_off(customer.say("I want a refund for #2812"))
    conversation = inbox_db.wait_conversation(customer.wa_id)
    assert (conversation["reason"], conversation["topic"]) == ("topic", "refund")
    ping = slack.wait_for(f"/conversations/{conversation['id']}")
    assert "#2812" in ping["text"]
    agent_takes_over_and_hands_back(customer, inbox_db, agent_login, assignee)


def test_fourth_unthanked_message_hands_off(customer, inbox_db, agent_login):
    for question in KB_QUESTIONS:
        assert_kb_answer(customer.say(question))
    assignee = assert_handed_off(customer.say("what sizes do you have?"))
    assert inbox_db.wait_conversation(customer.wa_id)["reason"] == "unresolved_turns"
    agent_takes_over_and_hands_back(customer, inbox_db, agent_login, assignee)


def test_customer_with_a_username_and_no_phone_number(production, inbox_db, agent_login, turn_finished):
    """Meta's business-scoped user id (BSUID) only: hand-off, the agent's reply and the bot again, through the proxy."""
    created = httpx.post(production.url("sandbox") + "/sandbox/api/customers",
                         json={"username": "kiran.prod", "profile_name": "Kiran"}, timeout=30)
    assert created.status_code == 201, created.text
    assert created.json()["phone"] is None
    customer = Customer(production.url("sandbox"), created.json()["user_id"], "Kiran", turn_finished)
    assignee = assert_handed_off(customer.say("agent please"))
    agent_takes_over_and_hands_back(customer, inbox_db, agent_login, assignee)


def test_rasa_starts_with_the_tested_speed_ups(production):
    """The production launcher takes the same explicit start-up step as the local Procfile."""
    log = (production.data_dir / "profile.log").read_text()
    assert "Rasa speed-ups: on (Rasa 3.6.21" in log
