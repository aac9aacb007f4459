"""A CSAT tap against a real `rasa run` (the session's `rasa` fixture, tests/connector/rasa_server.py): "😞 Not good" and
the comment after it are in the tracker for the inbox, and the bot neither answers nor hands off."""

from __future__ import annotations

from tests.connector.support import new_wa_id, wait_until
from tests.connector.test_rasa_reactions import ask

TOKEN = "0123456789abcdef"


def test_a_not_good_tap_and_its_comment_reach_the_tracker_but_not_the_bot(rasa):
    wa_id = new_wa_id()
    answers = ask(rasa, wa_id, "is cod available?")
    sent = rasa.sandbox.customer_says(
        wa_id, reply={"id": f"csat:{TOKEN}:not_good:10", "title": "😞 Not good"}
    )
    comment = rasa.sandbox.customer_says(wa_id, text="I want to complain, the agent was rude")

    def recorded():
        users = [e for e in rasa.tracker_events(wa_id) if e["event"] == "user"]
        return users if users and users[-1].get("message_id") == comment["message_id"] else None

    users = wait_until(recorded, timeout=30)
    assert users, "the comment was not recorded"
    tap, text = users[-2], users[-1]
    assert tap["message_id"] == sent["message_id"] and tap["text"] == "😞 Not good"
    assert tap["metadata"]["whatsapp"]["csat"] == "answer" and text["metadata"]["whatsapp"]["csat"] == "comment"
    events = rasa.tracker_events(wa_id)
    after = events[events.index(tap):]
    assert not [e for e in after if e["event"] in ("bot", "action", "pause")]  # no answer, no complaint hand-off
    assert len(rasa.sandbox.business_messages(wa_id)) == len(answers)

    later = ask(rasa, wa_id, "is cod available?")  # the bot answers the next real question
    assert len(later) > len(answers)
