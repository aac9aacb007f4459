"""Issue 17: the satisfaction question after a resolve, snooze and follow-ups, auto-resolve of idle
hand-offs, and the bot's headline numbers. Injected clock; WhatsApp and Rasa are the test's fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from inbox.models import Conversation, CsatSurvey, Message
from inbox.services.auto_resolve import AutoResolver
from inbox.services.csat import CsatConfigError, load_csat_config
from inbox.services.sla import SlaMonitor
from inbox.services.snooze import Snoozing
from inbox.tests.conftest import login, post_form
from inbox.tests.test_event_stream import consume
from inbox.tests.test_service_window import SENDER, graph_bodies, handed_off


def conversation(inbox, conversation_id: int) -> Conversation:
    with inbox.db.read() as session:
        row = session.get(Conversation, conversation_id)
        session.expunge(row)
        return row


def system_lines(inbox, conversation_id: int) -> list[str]:
    with inbox.db.read() as session:
        return list(
            session.scalars(
                select(Message.text)
                .where(Message.conversation_id == conversation_id, Message.role == "system")
                .order_by(Message.created_at, Message.id)
            )
        )


def interactive_bodies(external_services) -> list[dict]:
    return [body for body in graph_bodies(external_services) if body.get("type") == "interactive"]


def tap(broker, clock, button_id: str, title: str) -> None:
    """The customer taps a reply button: the connector records it with the reply in the metadata."""
    at = clock.now
    broker.publish(
        SENDER,
        {
            "event": "user",
            "timestamp": at.timestamp(),
            "text": title,
            "input_channel": "whatsapp",
            "message_id": f"m-tap-{int(at.timestamp())}",
            "metadata": {
                "whatsapp": {
                    "wa_id": SENDER,
                    "profile_name": "Priya Sharma",
                    "phone_number_id": "106540352242922",
                    "message_id": f"wamid.tap{int(at.timestamp())}",
                    "type": "interactive",
                    "timestamp": str(int(at.timestamp())),
                    "reply": {"id": button_id, "title": title},
                    "csat": True,
                }
            },
        },
    )


def answered_and_resolved(inbox, broker, clock, client, external_services) -> tuple[int, list[dict]]:
    """Priya handed off an hour ago, Anita answers, then resolves: the question goes out."""
    conversation_id = handed_off(inbox, broker, clock, hours_ago=1)
    login(client, "anita")
    assert post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Refund started"}).status_code == 303
    assert post_form(client, f"/conversations/{conversation_id}/resolve").status_code == 303
    return conversation_id, interactive_bodies(external_services)


def test_resolve_asks_with_three_reply_buttons_and_a_tap_is_recorded_against_agent_and_pattern(
    inbox, broker, clock, client, agents, external_services
):
    conversation_id, [body] = answered_and_resolved(inbox, broker, clock, client, external_services)
    assert body["to"] == SENDER and body["interactive"]["type"] == "button"
    assert body["interactive"]["body"]["text"] == "Thanks for talking to us! How did our team do?"
    buttons = body["interactive"]["action"]["buttons"]
    assert [button["reply"]["title"] for button in buttons] == ["😊 Great", "😐 Okay", "😞 Not good"]
    assert all(button["type"] == "reply" and button["reply"]["id"].startswith("csat:") for button in buttons)
    assert "Satisfaction question sent" in system_lines(inbox, conversation_id)[-1]
    # Resolving resumed the bot in Rasa (the CSAT question does not change the hand-back).
    assert external_services.rasa_requests[-1]["events"][0]["event"] == "resume"

    clock.advance(minutes=2)
    tap(broker, clock, buttons[2]["reply"]["id"], "😞 Not good")
    clock.advance(minutes=1)
    broker.user(SENDER, "The refund took three messages to start", clock.now)
    consume(inbox, broker)
    with inbox.db.read() as session:
        survey = session.scalars(select(CsatSurvey)).one()
        assert (survey.status, survey.rating, survey.score, survey.flagged) == ("answered", "not_good", 1, True)
        assert survey.agent_id == agents["anita"] and survey.reason == "topic"
        assert survey.comment == "The refund took three messages to start"
    assert "Customer rated the conversation: Not good — flagged for the team lead." in system_lines(
        inbox, conversation_id
    )
    assert conversation(inbox, conversation_id).status == "resolved"  # no new hand-off from the answer

    page = client.get("/dashboard").text
    assert 'id="csat-flagged"' in page and "The refund took three messages to start" in page
    assert "Anita Desai" in page.split('id="csat-by-agent"')[1].split("</table>")[0]
    assert "1 / 1" in page.split('id="csat-by-reason"')[1].split("</table>")[0]  # answered / asked
    with inbox.db.read() as session:
        survey_id = session.scalars(select(CsatSurvey.id)).one()
    # Only a team lead (admin) clears a flag: Anita sees no button, and the POST is refused with why.
    assert "Mark seen" not in page and "For the team lead" in page
    refused = post_form(client, f"/csat/{survey_id}/seen")
    assert refused.status_code == 403 and "Only a team lead" in refused.json()["detail"]
    assert "The refund took three messages to start" in client.get("/dashboard").text.split('id="csat-flagged"')[1]
    login(client, "admin")
    assert "Mark seen" in client.get("/dashboard").text
    assert post_form(client, f"/csat/{survey_id}/seen").status_code == 303
    assert "The refund took three messages to start" not in client.get("/dashboard").text.split('id="csat-flagged"')[1]


def test_a_message_after_the_comment_time_is_not_a_comment_and_a_second_tap_does_not_count(
    inbox, broker, clock, client, agents, external_services
):
    _conversation_id, [body] = answered_and_resolved(inbox, broker, clock, client, external_services)
    buttons = body["interactive"]["action"]["buttons"]
    tap(broker, clock, buttons[0]["reply"]["id"], "😊 Great")
    consume(inbox, broker)
    clock.advance(minutes=11)  # comment_minutes: 10
    tap(broker, clock, buttons[2]["reply"]["id"], "😞 Not good")
    broker.user(SENDER, "Where is my other order?", clock.now + timedelta(seconds=1))
    consume(inbox, broker)
    with inbox.db.read() as session:
        survey = session.scalars(select(CsatSurvey)).one()
    assert (survey.rating, survey.flagged, survey.comment) == ("great", False, None)


def test_outside_the_24_hour_window_the_question_is_skipped_and_recorded(
    inbox, broker, clock, client, agents, external_services
):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=30)
    login(client, "anita")
    assert post_form(client, f"/conversations/{conversation_id}/resolve").status_code == 303
    assert interactive_bodies(external_services) == []
    with inbox.db.read() as session:
        survey = session.scalars(select(CsatSurvey)).one()
    assert survey.status == "skipped" and "24-hour window has closed" in survey.skip_reason
    assert "Satisfaction question not sent" in system_lines(inbox, conversation_id)[-1]
    assert "1 skipped" in client.get("/dashboard").text


def test_ask_false_sends_nothing(inbox, broker, clock, client, agents, external_services, tmp_path):
    path = tmp_path / "csat.yml"
    path.write_text("ask: false\n", encoding="utf-8")
    inbox.csat_config = load_csat_config(path)
    answered_and_resolved(inbox, broker, clock, client, external_services)
    assert interactive_bodies(external_services) == []
    with inbox.db.read() as session:
        assert session.scalars(select(CsatSurvey)).all() == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("buttons:\n  great: 'A title far longer than twenty'\n  okay: x\n  not_good: y\n", "line 2: buttons.great"),
        ("ask: true\nquestion: ''\n", "line 2: question"),
        ("comment_minutes: -1\n", "line 1: comment_minutes"),
        ("ask: true\n\nasks: true\n", "line 3: asks"),
        ("ask: [yes\n", "not valid YAML"),
    ],
)
def test_a_mistake_in_csat_yml_names_the_file_line_and_field(tmp_path, text, where):
    path = tmp_path / "csat.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CsatConfigError) as error:
        load_csat_config(path)
    assert str(error.value).startswith(f"{path}: ") and where in str(error.value)


def test_the_shipped_csat_yml_is_valid_and_asks():
    config = load_csat_config()
    assert config.ask and config.auto_resolve_after_hours == 24 and config.comment_minutes == 10


def test_snooze_until_a_time_leaves_the_lists_pauses_the_sla_and_comes_back_to_the_same_agent(
    inbox, broker, clock, client, agents, external_services
):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=0)
    before = conversation(inbox, conversation_id)
    login(client, "anita")
    assert post_form(client, f"/conversations/{conversation_id}/snooze", {"until": "3h"}).status_code == 303
    snoozed = conversation(inbox, conversation_id)
    assert snoozed.status == "snoozed" and snoozed.assignee_id is not None
    owner = snoozed.assignee_id
    assert f"/conversations/{conversation_id}" not in client.get("/conversations?view=mine").text
    assert "Due today" in (page := client.get("/follow-ups").text) and f"/conversations/{conversation_id}" in page
    page = client.get(f"/conversations/{conversation_id}").text
    assert "Snoozed" in page and "Wake now" in page

    clock.advance(hours=2, minutes=59)
    assert SlaMonitor(inbox).check() == 0  # the first-response clock is paused while snoozed
    assert Snoozing(inbox).wake_due() == 0
    clock.advance(minutes=1)
    assert Snoozing(inbox).wake_due() == 1
    back = conversation(inbox, conversation_id)
    assert back.status == "open" and back.assignee_id == owner
    assert back.sla_due_at == before.sla_due_at + timedelta(hours=3)
    assert system_lines(inbox, conversation_id)[-1].startswith("Back from snooze (the snooze time has come), for ")


def test_snooze_until_the_customer_replies_wakes_on_their_message(inbox, broker, clock, client, agents):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=0)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Could you send a photo?"})
    assert post_form(client, f"/conversations/{conversation_id}/snooze", {"until": "reply"}).status_code == 303
    assert "until the customer replies" in system_lines(inbox, conversation_id)[-1]
    assert "Waiting for the customer" in client.get("/follow-ups").text
    clock.advance(days=2)
    assert Snoozing(inbox).wake_due() == 0  # no time: only the customer wakes it
    broker.user(SENDER, "Here it is", clock.now)
    consume(inbox, broker)
    back = conversation(inbox, conversation_id)
    assert back.status == "open" and back.waiting_since == clock.now
    assert "Back from snooze (the customer wrote)" in system_lines(inbox, conversation_id)[-1]


def test_a_reply_to_a_snoozed_conversation_is_sent_and_wakes_it(
    inbox, broker, clock, client, agents, external_services
):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=0)
    login(client, "anita")
    assert post_form(client, f"/conversations/{conversation_id}/snooze", {"until": "3h"}).status_code == 303
    page = client.get(f"/conversations/{conversation_id}").text
    assert "Snoozed: sending a reply wakes this conversation." in page and 'id="reply-text"' in page
    clock.advance(minutes=5)
    response = post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Found it: it ships today"})
    assert response.status_code == 303
    assert graph_bodies(external_services)[-1]["text"]["body"] == "Found it: it ships today"
    back = conversation(inbox, conversation_id)
    assert back.status == "open" and back.first_response_at == clock.now
    assert system_lines(inbox, conversation_id)[-1] == "Back from snooze (Anita Desai wrote to the customer), for Anita Desai."
    assert f"/conversations/{conversation_id}" not in client.get("/follow-ups").text
    assert Snoozing(inbox).wake_due() == 0  # the snooze is over: its time does not wake it twice
    clock.advance(hours=3)
    assert Snoozing(inbox).wake_due() == 0


def test_snooze_refuses_a_time_in_the_past(inbox, broker, clock, client, agents):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=0)
    login(client, "anita")
    past = (clock.now - timedelta(hours=1)).astimezone(inbox.assignment_engine().hours.tz).strftime("%Y-%m-%dT%H:%M")
    response = post_form(
        client,
        f"/conversations/{conversation_id}/snooze",
        {"until": "custom", "custom": past},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422 and "Pick a time in the future." in response.text
    assert conversation(inbox, conversation_id).status == "open"


def test_an_idle_hand_off_is_auto_resolved_after_24_hours_through_the_resolve_path(
    inbox, broker, clock, client, agents, external_services
):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=0)
    login(client, "anita")
    clock.advance(minutes=5)
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Refund started, anything else?"})
    clock.advance(hours=23, minutes=59)
    assert AutoResolver(inbox).check() == 0
    clock.advance(minutes=1)
    assert AutoResolver(inbox).check() == 1
    assert conversation(inbox, conversation_id).status == "resolved"
    assert external_services.rasa_requests[-1]["events"][0]["event"] == "resume"  # the bot has it again
    lines = system_lines(inbox, conversation_id)
    assert any(line.startswith("Auto-resolved: the customer has not written for 24 h") for line in lines)


def test_no_auto_resolve_when_the_customer_wrote_last(inbox, broker, clock, client, agents):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=0)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Which size?"})
    clock.advance(minutes=5)
    broker.user(SENDER, "Medium", clock.now)
    consume(inbox, broker)
    clock.advance(hours=30)
    assert AutoResolver(inbox).check() == 0
    assert conversation(inbox, conversation_id).status == "open"


def test_the_dashboard_shows_the_bots_headline_numbers_for_the_month(inbox, broker, clock, client, agents):
    start = clock.now - timedelta(hours=2)
    # Two customers asked, the bot answered in 2 s and 4 s; the second was handed off an hour later.
    for number, (sender, wait) in enumerate([("919800000001", 2), ("919800000002", 4)]):
        at = start + timedelta(minutes=number)
        broker.user(sender, "Where is my order?", at)
        broker.slot(sender, "kb_match", {"entry_id": "shipping", "score": 0.9, "answered": True, "threshold": 0.55}, at)
        broker.bot(sender, "Orders ship in 2 days", at + timedelta(seconds=wait))
    broker.user("919800000002", "That does not help", start + timedelta(hours=1))
    broker.handoff("919800000002", "hf_headline", start + timedelta(hours=1, seconds=1))
    consume(inbox, broker)
    login(client, "anita")
    page = client.get("/dashboard").text
    assert "The bot in November 2026" in page
    assert '<p class="big" id="bot-answers">2</p>' in page
    assert '<p class="big" id="bot-median">2 s</p>' in page  # nearest-rank median of 2 s and 4 s
    assert '<p class="big" id="month-containment">50.0%</p>' in page
    assert '<p class="big" id="answers-handed-off">50.0%</p>' in page


def test_a_new_hand_off_on_a_snoozed_conversation_takes_it_off_the_follow_ups(inbox, broker, clock, client, agents):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=0)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/snooze", {"until": "3h"})
    assert 'class="badge snoozed"' in client.get("/conversations?view=all").text
    clock.advance(minutes=10)
    broker.handoff(SENDER, "hf_second", clock.now)
    consume(inbox, broker)
    assert conversation(inbox, conversation_id).status == "open"
    assert f"/conversations/{conversation_id}" not in client.get("/follow-ups").text
    clock.advance(hours=3)
    assert Snoozing(inbox).wake_due() == 1  # closes the left-over snooze without a second "Back" line
    assert not any(line.startswith("Back from snooze") for line in system_lines(inbox, conversation_id))
