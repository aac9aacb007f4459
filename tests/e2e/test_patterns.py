"""The four escalation patterns end to end: signed WhatsApp webhooks from the sandbox, real Rasa, action server
and inbox; then the agent takes over and hands back."""
from __future__ import annotations

import re
import time

from tests.e2e.clients import Agent, Customer, InboxDB

HONEST_HANDOFF = re.compile(r"I'm bringing in (Anita|Priya|Rahul|Meera) from our team — (she|he|they)'ll reply "
                            r"within \d+ minutes")
KB_QUESTIONS = ["what is your return policy?", "how long does delivery take?", "do you have cash on delivery?"]


def assert_handed_off(replies: list[str]) -> str:
    """One honest message naming the person and the time; returns that person's first name."""
    assert len(replies) == 1, replies
    match = HONEST_HANDOFF.search(replies[0])
    assert match, replies[0]
    assert "transferring" not in replies[0].lower()
    return match.group(1)


CSAT_QUESTION = "Thanks for talking to us! How did our team do?"  # inbox/config/csat.yml


def hand_back(agent: Agent, customer: Customer, inbox_db: InboxDB, conversation_id: int) -> None:
    """The agent resolves; the customer gets the satisfaction question (three reply buttons)."""
    agent.resolve(conversation_id)
    inbox_db.wait_conversation(customer.wa_id, status="resolved")
    assert customer.replies(1, timeout=20) == [CSAT_QUESTION]


def assert_kb_answer(replies: list[str]) -> None:
    assert len(replies) == 1, replies
    assert not HONEST_HANDOFF.search(replies[0]) and "not sure" not in replies[0], replies[0]


def agent_takes_over_and_hands_back(customer: Customer, inbox_db: InboxDB, agent_login, assignee: str) -> None:
    conversation = inbox_db.wait_conversation(customer.wa_id)
    login = inbox_db.query("select login, name from agents where id = ?", conversation["assignee_id"])[0]
    assert login["name"].startswith(assignee)
    agent: Agent = agent_login(login["login"])

    # A further customer message reaches the agent, and the bot stays silent.
    customer.send("hello? is anyone there")
    inbox_db.wait_message(conversation["id"], "customer", "hello? is anyone there")
    assert customer.silence(4) == []

    # The agent's reply reaches the customer's phone.
    agent.reply(conversation["id"], "Hi, this is a person. Looking into it now.")
    assert customer.replies(1, timeout=20) == ["Hi, this is a person. Looking into it now."]

    # Resolved in the inbox: the bot answers again.
    hand_back(agent, customer, inbox_db, conversation["id"])
    assert_kb_answer(customer.say("what is your return policy?"))


def test_low_confidence_hands_off_with_transcript(customer, inbox_db, agent_login):
    greeting = customer.say("hi")
    assert len(greeting) == 1
    assignee = assert_handed_off(customer.say("my cat knocked over the plant"))

    conversation = inbox_db.wait_conversation(customer.wa_id)
    assert conversation["reason"] == "low_confidence"
    inbox_db.wait_message(conversation["id"], "bot", greeting[0])
    messages = inbox_db.messages(conversation["id"])
    said = [text for role, text in messages if role == "customer"]
    assert said == ["hi", "my cat knocked over the plant"], messages
    # ... and the agent sees it on the conversation page.
    agent = agent_login(inbox_db.query("select login from agents where id = ?", conversation["assignee_id"])[0][0])
    page = agent.page(conversation["id"])
    assert "my cat knocked over the plant" in page

    agent_takes_over_and_hands_back(customer, inbox_db, agent_login, assignee)


def test_agent_please_mid_knowledge_base_exchange(customer, inbox_db, agent_login):
    assert_kb_answer(customer.say(KB_QUESTIONS[0]))
    assignee = assert_handed_off(customer.say("agent please"))
    conversation = inbox_db.wait_conversation(customer.wa_id)
    assert conversation["reason"] == "customer_request"
    agent_takes_over_and_hands_back(customer, inbox_db, agent_login, assignee)


def test_refund_is_tagged_flagged_and_pinged_to_slack(customer, inbox_db, agent_login, slack):
    replies = customer.say("I want a refund for #2812")
    assignee = assert_handed_off(replies)
    conversation = inbox_db.wait_conversation(customer.wa_id)
    assert conversation["reason"] == "topic"
    assert conversation["topic"] == "refund"
    assert "refund" in inbox_db.tags(conversation["id"])
    assert conversation["priority"] in ("high", "urgent")
    assert "#2812" in conversation["order_numbers"]
    ping = slack.wait_for(f"/conversations/{conversation['id']}")  # the link to this conversation
    assert "refund" in ping["text"].lower() and "#2812" in ping["text"], ping
    agent_takes_over_and_hands_back(customer, inbox_db, agent_login, assignee)


def test_fourth_message_after_three_unthanked_answers_hands_off(customer, inbox_db, agent_login):
    for question in KB_QUESTIONS:
        assert_kb_answer(customer.say(question))
    assignee = assert_handed_off(customer.say("what sizes do you have?"))
    conversation = inbox_db.wait_conversation(customer.wa_id)
    assert conversation["reason"] == "unresolved_turns"
    agent_takes_over_and_hands_back(customer, inbox_db, agent_login, assignee)


def test_a_not_good_rating_after_resolve_is_recorded_and_never_starts_a_complaint(customer, inbox_db, agent_login):
    """The satisfaction buttons on the phone, a tap on "😞 Not good" and an angry comment: both reach the
    inbox (flagged for the team lead) and the bot neither answers them nor hands off again."""
    assignee = assert_handed_off(customer.say("agent please"))
    conversation = inbox_db.wait_conversation(customer.wa_id)
    login = inbox_db.query("select login, name from agents where id = ?", conversation["assignee_id"])[0]
    assert login["name"].startswith(assignee)
    agent: Agent = agent_login(login["login"])
    agent.reply(conversation["id"], "Your refund has started.")
    assert customer.replies(1, timeout=20) == ["Your refund has started."]
    hand_back(agent, customer, inbox_db, conversation["id"])

    [question] = customer.business_messages()[-1:]
    buttons = question["content"]["interactive"]["action"]["buttons"]
    not_good = next(button["reply"] for button in buttons if button["reply"]["title"] == "😞 Not good")
    customer.http.post(f"/sandbox/api/customers/{customer.wa_id}/messages",
                       json={"reply": {"id": not_good["id"], "title": not_good["title"]}}).raise_for_status()
    customer.send("Terrible, I want to complain, the agent was rude")
    assert customer.silence(5) == []  # no answer, no complaint hand-off

    def survey():
        rows = inbox_db.query("select * from csat_surveys where conversation_id = ?", conversation["id"])
        return rows[0] if rows and rows[0]["comment"] else None

    deadline = time.monotonic() + 20
    while (row := survey()) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert row is not None, "the answer did not reach the inbox"
    assert (row["rating"], row["flagged"], row["comment"]) == ("not_good", 1, "Terrible, I want to complain, the agent was rude")
    assert len(inbox_db.handoffs(conversation["id"])) == 1
    assert inbox_db.wait_conversation(customer.wa_id, status="resolved")
    assert_kb_answer(customer.say("what is your return policy?"))  # the bot answers the next question
