"""CSAT answers (connectors/satisfaction.py): a tap on the inbox's satisfaction buttons, and the
customer's comment right after it, are recorded for the inbox and never reach the bot."""

from __future__ import annotations

import pytest

from connectors.inbound import InboundAction, InboundMessage
from connectors.satisfaction import ANSWER, COMMENT, survey_role

from tests.connector.support import change, new_message_id, new_wa_id, text_message, texts, webhook

TOKEN = "0123456789abcdef"


def tap(wa_id: str, rating: str, title: str, timestamp: str = "1764065702", minutes: int = 10):
    return {"from": wa_id, "id": new_message_id(), "timestamp": timestamp, "type": "interactive",
            "interactive": {"type": "button_reply",
                            "button_reply": {"id": f"csat:{TOKEN}:{rating}:{minutes}", "title": title}}}


def user_events(host, wa_id):
    return [event for event in host.journal(wa_id) if event["event"] == "user"]


def test_a_not_good_tap_and_the_comment_after_it_are_recorded_for_the_inbox_and_the_bot_stays_silent(host, sandbox):
    wa_id = new_wa_id()
    answer = tap(wa_id, "not_good", "😞 Not good")
    comment = text_message(wa_id, "It took three tries to get a refund")
    comment["timestamp"] = "1764065762"  # a minute later
    host.post(webhook(change([answer])))
    host.store.wait_for_state(answer["id"], "done")
    host.post(webhook(change([comment])))
    host.store.wait_for_state(comment["id"], "done")
    events = user_events(host, wa_id)
    assert [event["text"] for event in events] == ["😞 Not good", "It took three tries to get a refund"]
    assert [event["metadata"]["whatsapp"]["csat"] for event in events] == ["answer", "comment"]
    assert events[0]["metadata"]["whatsapp"]["reply"]["id"] == f"csat:{TOKEN}:not_good:10"
    assert not [event for event in host.journal(wa_id) if event["event"] == "bot"]  # no reply, no complaint flow

    later = text_message(wa_id, "where is my order?")
    host.post(webhook(change([later])))
    assert texts(sandbox.wait_for_business(wa_id)) == ["echo: where is my order?"]  # the bot has it again


def message(kind: str = "text", timestamp: str = "1000", reply_id: str | None = None) -> InboundMessage:
    details = {"reply": {"id": reply_id, "title": "x"}} if reply_id else {}
    return InboundMessage(message_id=new_message_id(), wa_id="1", profile_name=None, phone_number_id="p",
                          timestamp=timestamp, type=kind, action=InboundAction.CONVERSE, text="x", details=details)


@pytest.mark.parametrize(
    ("current", "previous", "role"),
    [
        (message("interactive", reply_id=f"csat:{TOKEN}:great:10"), None, ANSWER),
        (message("text", "1600"), message("interactive", "1000", f"csat:{TOKEN}:okay:10"), COMMENT),
        (message("text", "1601"), message("interactive", "1000", f"csat:{TOKEN}:okay:10"), None),  # too late
        (message("text", "1010"), message("interactive", "1000", f"csat:{TOKEN}:okay:0"), None),  # no comment asked
        (message("text", "1010"), message("text", "1000"), None),
        (message("interactive", reply_id="csat:nothex:great:10"), None, None),  # not our id: the bot's
        (message("interactive", reply_id="/affirm"), None, None),
    ],
)
def test_which_messages_are_survey_answers(current, previous, role):
    assert survey_role(current, previous) == role
