"""Faults, with real processes: nothing lost, nothing duplicated."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid

import httpx

from tests.e2e.test_patterns import KB_QUESTIONS, assert_handed_off, assert_kb_answer, hand_back


def tracker(system, wa_id: str) -> dict:
    response = httpx.get(f"{system.url('rasa')}/conversations/{wa_id}/tracker",
                         headers=system.rasa_headers(), timeout=30)
    response.raise_for_status()
    return response.json()


def user_texts(system, wa_id: str) -> list[str]:
    return [e.get("text") for e in tracker(system, wa_id)["events"] if e["event"] == "user"]


def test_inbox_down_during_handoff_then_everything_arrives_once(healthy, customer, inbox_db, agent_login):
    assert_kb_answer(customer.say(KB_QUESTIONS[0]))
    healthy.stop("inbox")
    try:
        # Answered without the inbox (the bot retries it for < 3 s, tests/actions/test_handoff.py); the
        # timeout is only how long to wait on a loaded machine, not a speed claim.
        replies = customer.say("agent please", timeout=60)
        assert len(replies) == 1 and "A teammate from our support team will reply" in replies[0], replies
        assert "transferring" not in replies[0].lower()
        customer.send("my order is #2840")
        customer.send("it was a kurta, size M")
        assert customer.silence(4) == []  # paused: no bot reply to the messages written meanwhile
    finally:
        healthy.start("inbox")

    conversation = inbox_db.wait_conversation(customer.wa_id, timeout=30)
    assert conversation["reason"] == "customer_request"
    for text in ("agent please", "my order is #2840", "it was a kurta, size M"):
        inbox_db.wait_message(conversation["id"], "customer", text)
    time.sleep(2)  # let the event-stream consumer catch up completely before counting
    assert len(inbox_db.handoffs(conversation["id"])) == 1
    said = [text for role, text in inbox_db.messages(conversation["id"]) if role == "customer"]
    assert said == [KB_QUESTIONS[0], "agent please", "my order is #2840", "it was a kurta, size M"], said
    assert len(inbox_db.query("select id from conversations where sender_id = ?", customer.wa_id)) == 1

    # The hand-off created late is a normal one: the agent can reply and hand back.
    agent = agent_login(inbox_db.query("select login from agents where id = ?",
                                       conversation["assignee_id"])[0][0]) if conversation["assignee_id"] \
        else agent_login("admin")
    agent.reply(conversation["id"], "Sorry for the wait, checking #2840.")
    assert customer.replies(1, timeout=20) == ["Sorry for the wait, checking #2840."]


def test_rasa_restart_keeps_history_and_paused_state(healthy, new_customer, inbox_db, agent_login):
    mid_conversation, handed_off = new_customer("Asha"), new_customer("Ravi")
    # mid_conversation: two unthanked answers so far (pattern 4 counts them in the tracker).
    for question in KB_QUESTIONS[:2]:
        assert_kb_answer(mid_conversation.say(question))
    # handed_off: waiting for an agent.
    assert_handed_off(handed_off.say("agent please"))
    conversation = inbox_db.wait_conversation(handed_off.wa_id)

    healthy.restart("rasa")

    # History survived: the third answer and then the fourth message hand off, as without the restart.
    assert_kb_answer(mid_conversation.say(KB_QUESTIONS[2]))
    assert_handed_off(mid_conversation.say("what sizes do you have?"))
    assert inbox_db.wait_conversation(mid_conversation.wa_id)["reason"] == "unresolved_turns"
    assert user_texts(healthy, mid_conversation.wa_id)[:2] == KB_QUESTIONS[:2]

    # The paused state survived: no bot reply, the message reaches the agent.
    handed_off.send("still waiting for someone")
    inbox_db.wait_message(conversation["id"], "customer", "still waiting for someone")
    assert handed_off.silence(4) == []
    assert tracker(healthy, handed_off.wa_id)["paused"] is True

    agent = agent_login(inbox_db.query("select login from agents where id = ?", conversation["assignee_id"])[0][0])
    hand_back(agent, handed_off, inbox_db, conversation["id"])
    assert_kb_answer(handed_off.say(KB_QUESTIONS[0]))


def test_every_webhook_twice_some_concurrently_gets_one_reply_each(healthy, customer):
    def deliver(text: str, message_id: str, concurrently: bool) -> None:
        answers: list[dict] = []
        send = lambda: answers.append(customer.send(text, message_id))  # noqa: E731
        if concurrently:
            threads = [threading.Thread(target=send) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            send()
            send()
        # Both deliveries really reached the connector and were acknowledged (Meta would stop retrying).
        assert [a["message_id"] for a in answers] == [message_id, message_id], answers
        assert [a["webhook_status"] for a in answers] == [200, 200], answers

    sent = [("hi", False), (KB_QUESTIONS[0], True), (KB_QUESTIONS[1], False), ("thanks", True)]
    for text, concurrently in sent:
        deliver(text, f"wamid.e2e{uuid.uuid4().hex}", concurrently)
        replies = customer.replies(1, timeout=60, settle=3)
        assert len(replies) == 1, (text, replies)
    assert user_texts(healthy, customer.wa_id) == [text for text, _ in sent]


def age_tracker(db_path, sender_id: str, seconds: int) -> None:
    """Pretend every event of the conversation happened `seconds` earlier (an idle customer)."""
    connection = sqlite3.connect(db_path, timeout=30)
    try:
        rows = connection.execute("select id, timestamp, data from events where sender_id = ?", (sender_id,)).fetchall()
        for row_id, timestamp, data in rows:
            event = json.loads(data)
            event["timestamp"] = event["timestamp"] - seconds
            connection.execute("update events set timestamp = ?, data = ? where id = ?",
                               (timestamp - seconds, json.dumps(event), row_id))
        connection.commit()
    finally:
        connection.close()


def test_paused_conversation_still_paused_after_session_expiry(healthy, customer, inbox_db, agent_login):
    assert_handed_off(customer.say("I want a refund for #2812"))
    conversation = inbox_db.wait_conversation(customer.wa_id)
    age_tracker(healthy.data_dir / "rasa_tracker.db", customer.wa_id, 3 * 60 * 60)  # expiry is 60 minutes

    customer.send("hello, any update on my refund?")
    inbox_db.wait_message(conversation["id"], "customer", "hello, any update on my refund?")
    assert customer.silence(4) == []
    state = tracker(healthy, customer.wa_id)
    assert sum(e["event"] == "session_started" for e in state["events"]) >= 2, "the session did not expire"
    assert state["paused"] is True

    agent = agent_login(inbox_db.query("select login from agents where id = ?", conversation["assignee_id"])[0][0])
    hand_back(agent, customer, inbox_db, conversation["id"])
    assert_kb_answer(customer.say(KB_QUESTIONS[0]))


def test_action_server_down_gets_an_honest_reply_and_a_handoff(healthy, customer, inbox_db, agent_login, slack):
    healthy.stop("actions")
    try:
        replies = customer.say(KB_QUESTIONS[0], timeout=60)
        assert len(replies) == 1, replies
        assert "technical problem" in replies[0] and "a teammate will reply" in replies[0], replies
        assert "transferring" not in replies[0].lower()
        customer.send("hello? anyone there?")
        assert customer.silence(4) == []  # handed off: the bot does not try again
    finally:
        healthy.start("actions")

    conversation = inbox_db.wait_conversation(customer.wa_id, timeout=30)
    assert conversation["reason"] == "bot_unavailable"
    assert conversation["priority"] in ("high", "urgent")
    for text in (KB_QUESTIONS[0], "hello? anyone there?"):
        inbox_db.wait_message(conversation["id"], "customer", text)
    time.sleep(2)  # let the event-stream consumer catch up completely before counting
    assert len(inbox_db.handoffs(conversation["id"])) == 1
    ping = slack.wait_for(f"/conversations/{conversation['id']}")
    assert "bot unavailable" in ping["text"].lower(), ping
    assert tracker(healthy, customer.wa_id)["paused"] is True

    # An agent takes it from there, and once resolved the (recovered) bot answers again.
    login = inbox_db.query("select login from agents where id = ?", conversation["assignee_id"])[0][0] \
        if conversation["assignee_id"] else "admin"
    agent = agent_login(login)
    agent.reply(conversation["id"], "Sorry about that! Free returns within 14 days.")
    assert customer.replies(1, timeout=20) == ["Sorry about that! Free returns within 14 days."]
    hand_back(agent, customer, inbox_db, conversation["id"])
    assert_kb_answer(customer.say(KB_QUESTIONS[1]))
