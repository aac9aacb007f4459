"""The satisfaction question goes out like an agent reply: retried with the same send key only when
WhatsApp certainly did not get it, never POSTed again after a timeout (a status with its key confirms
it), and skipped when the customer's 24-hour window closed before it could go. A question WhatsApp took
and then reported `failed` is recorded not delivered, with Meta's reason, and kept out of the response
rate. Injected clock; the Graph API answers from a script."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from inbox.models import CsatSurvey
from inbox.services.csat import CsatSurveys
from inbox.services.replies import RETRY_DELAYS
from inbox.tests.conftest import login, post_form
from inbox.tests.test_csat_follow_ups import system_lines, tap
from inbox.tests.test_event_stream import consume
from inbox.tests.test_reply_recovery import GraphScript, post_status, read_timeout, use_graph
from inbox.tests.test_service_window import SENDER, handed_off

UNAVAILABLE = (503, {"code": 131016, "message": "Service unavailable"})


def the_survey(inbox) -> CsatSurvey:
    with inbox.db.read() as session:
        survey = session.scalars(select(CsatSurvey)).one()
        session.expunge(survey)
        return survey


def questions(script: GraphScript) -> list[dict]:
    return [body for body in script.bodies if body.get("type") == "interactive"]


def resolve_with(inbox, broker, clock, client, *question_outcomes, hours_ago: float = 1) -> tuple[int, GraphScript]:
    """Priya handed off `hours_ago` hours ago; Anita's reply goes out, then Resolve asks the question
    and WhatsApp answers it with `question_outcomes`."""
    script = use_graph(inbox, GraphScript("ok", *question_outcomes))
    conversation_id = handed_off(inbox, broker, clock, hours_ago=hours_ago)
    login(client, "anita")
    assert post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Refund started"}).status_code == 303
    assert post_form(client, f"/conversations/{conversation_id}/resolve").status_code == 303
    return conversation_id, script


def test_a_timed_out_question_is_not_sent_again_and_a_status_with_its_key_confirms_it(
    inbox, broker, clock, client, agents
):
    conversation_id, script = resolve_with(inbox, broker, clock, client, read_timeout())
    survey = the_survey(inbox)
    assert survey.status == "unconfirmed" and len(questions(script)) == 1
    assert questions(script)[0]["biz_opaque_callback_data"] == survey.send_key
    assert not any("Satisfaction question" in line for line in system_lines(inbox, conversation_id))

    CsatSurveys(inbox).recover()  # within the confirmation window: nothing is re-sent
    post_status(client, id="wamid.csat1", status="delivered", biz_opaque_callback_data=survey.send_key)
    survey = the_survey(inbox)
    assert (survey.status, survey.whatsapp_message_id) == ("asked", "wamid.csat1")
    assert system_lines(inbox, conversation_id)[-1].startswith("Satisfaction question sent")
    clock.advance(seconds=inbox.settings.inbox_reply_confirm_seconds + 1)
    CsatSurveys(inbox).recover()
    assert the_survey(inbox).status == "asked" and len(questions(script)) == 1


def test_an_unconfirmed_question_is_recorded_failed_after_the_window_never_re_posted(
    inbox, broker, clock, client, agents
):
    conversation_id, script = resolve_with(inbox, broker, clock, client, read_timeout())
    for _ in range(3):
        clock.advance(seconds=inbox.settings.inbox_reply_confirm_seconds)
        CsatSurveys(inbox).recover()
    survey = the_survey(inbox)
    assert survey.status == "failed" and "did not confirm" in survey.skip_reason
    assert len(questions(script)) == 1
    assert "never gets it twice" in system_lines(inbox, conversation_id)[-1]
    # Meta did send it after all: a late status with the key records it as asked.
    post_status(client, id="wamid.late", status="sent", biz_opaque_callback_data=survey.send_key)
    assert the_survey(inbox).status == "asked"


@pytest.mark.parametrize("refusal", [UNAVAILABLE, (429, {"code": 130429, "message": "Rate limit hit"})])
def test_a_refused_question_is_retried_with_backoff_and_the_same_key(inbox, broker, clock, client, agents, refusal):
    attempts = inbox.whatsapp.attempts
    conversation_id, script = resolve_with(inbox, broker, clock, client, *[refusal] * attempts)
    assert the_survey(inbox).status == "sending" and len(questions(script)) == attempts
    clock.advance(seconds=RETRY_DELAYS[0].total_seconds() - 1)
    CsatSurveys(inbox).recover()
    assert len(questions(script)) == attempts  # not due yet
    clock.advance(seconds=1)
    CsatSurveys(inbox).recover()
    survey = the_survey(inbox)
    assert survey.status == "asked" and len(questions(script)) == attempts + 1
    assert {body["biz_opaque_callback_data"] for body in questions(script)} == {survey.send_key}
    assert system_lines(inbox, conversation_id)[-1].startswith("Satisfaction question sent")


def test_a_question_whose_retry_comes_after_the_window_closed_is_skipped(inbox, broker, clock, client, agents):
    attempts = inbox.whatsapp.attempts
    conversation_id, script = resolve_with(inbox, broker, clock, client, *[UNAVAILABLE] * attempts, hours_ago=23.99)
    clock.advance(minutes=1)  # the window closes before the first retry is due
    CsatSurveys(inbox).recover()
    survey = the_survey(inbox)
    assert survey.status == "skipped" and "24-hour window has closed" in survey.skip_reason
    assert len(questions(script)) == attempts
    assert "Satisfaction question not sent: the customer's 24-hour window" in system_lines(inbox, conversation_id)[-1]
    assert "1 skipped" in client.get("/dashboard").text


def test_the_recovery_loop_gives_up_on_a_question_with_the_reason(inbox, broker, clock, client, agents):
    conversation_id, script = resolve_with(inbox, broker, clock, client, *[UNAVAILABLE] * 100)
    for delay in RETRY_DELAYS:
        clock.advance(seconds=delay.total_seconds())
        CsatSurveys(inbox).recover()
    survey = the_survey(inbox)
    assert survey.status == "failed" and survey.send_attempts == len(RETRY_DELAYS) + 1
    assert survey.skip_reason.startswith(f"gave up after {len(RETRY_DELAYS) + 1} attempts")
    assert len(questions(script)) == (len(RETRY_DELAYS) + 1) * inbox.whatsapp.attempts
    page = client.get("/dashboard").text  # shown apart from the response rate, with the reason
    assert "0 answered of 0 asked" in page and "1 not delivered" in page
    assert "gave up after" in page.split('id="csat-not-delivered"')[1].split("</section>")[0]


def test_a_question_left_by_a_request_that_died_is_sent_by_the_recovery_loop(
    inbox, broker, clock, client, agents, monkeypatch
):
    deliver = CsatSurveys._deliver
    monkeypatch.setattr(CsatSurveys, "_deliver", lambda self, survey_id, *, scheduled: None)  # the process dies
    _conversation_id, script = resolve_with(inbox, broker, clock, client)
    assert the_survey(inbox).status == "sending" and questions(script) == []
    monkeypatch.setattr(CsatSurveys, "_deliver", deliver)
    clock.advance(seconds=RETRY_DELAYS[0].total_seconds() - 1)
    CsatSurveys(inbox).recover()
    assert questions(script) == []  # not due yet
    clock.advance(seconds=1)
    CsatSurveys(inbox).recover()
    assert the_survey(inbox).status == "asked" and len(questions(script)) == 1


# --- Meta's `failed` status for a question it took: not delivered -----------------------------------------

UNDELIVERABLE = {
    "code": 131026,
    "title": "Message undeliverable",
    "message": "Message undeliverable",
    "error_data": {"details": "Message Undeliverable."},
}


def all_surveys(inbox) -> list[CsatSurvey]:
    with inbox.db.read() as session:
        surveys = list(session.scalars(select(CsatSurvey).order_by(CsatSurvey.id)))
        session.expunge_all()
        return surveys


def test_a_question_whatsapp_could_not_deliver_is_shown_with_its_reason_and_kept_out_of_the_response_rate(
    inbox, broker, clock, client, agents
):
    conversation_id, script = resolve_with(inbox, broker, clock, client)
    survey = the_survey(inbox)
    assert survey.status == "asked"
    failed = post_status(
        client,
        id=survey.whatsapp_message_id,
        status="failed",
        biz_opaque_callback_data=survey.send_key,
        errors=[UNDELIVERABLE],
    )
    assert failed.json() == {"accepted": 1}
    survey = the_survey(inbox)
    assert survey.status == "undelivered"
    assert survey.skip_reason.startswith("The message could not be delivered") and "131026" in survey.skip_reason
    assert system_lines(inbox, conversation_id)[-1].startswith(
        "Satisfaction question not delivered: The message could not be delivered"
    )
    # A late `sent` (webhooks come out of order) changes nothing, and the question is never sent again.
    post_status(client, id=survey.whatsapp_message_id, status="sent", biz_opaque_callback_data=survey.send_key)
    clock.advance(seconds=inbox.settings.inbox_reply_confirm_seconds + 1)
    CsatSurveys(inbox).recover()
    assert the_survey(inbox).status == "undelivered" and len(questions(script)) == 1

    # Priya comes back, Anita resolves again, and this time the question arrives and is answered.
    clock.advance(hours=1)
    broker.user(SENDER, "The replacement has not come either", clock.now)
    broker.handoff(SENDER, "hf_window_again", clock.now + timedelta(seconds=1))
    consume(inbox, broker)
    assert post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Sent today"}).status_code == 303
    assert post_form(client, f"/conversations/{conversation_id}/resolve").status_code == 303
    great = questions(script)[-1]["interactive"]["action"]["buttons"][0]["reply"]["id"]
    clock.advance(minutes=1)
    tap(broker, clock, great, "😊 Great")
    consume(inbox, broker)
    assert [s.status for s in all_surveys(inbox)] == ["undelivered", "answered"]

    # The team lead: 1 of 1 asked answered (100 %), the undelivered one apart, with WhatsApp's reason.
    page = client.get("/dashboard").text
    assert 'id="csat-response-rate">100.0%' in page
    assert "1 answered of 1 asked" in page and "1 not delivered" in page
    section = page.split('id="csat-not-delivered"')[1].split("</section>")[0]
    assert "Priya Sharma" in section and "Anita Desai" in section
    assert "The message could not be delivered" in section
    assert "1 / 1" in page.split('id="csat-by-agent"')[1].split("</table>")[0]  # answered / asked


def test_a_failed_status_for_a_question_whose_send_timed_out_records_it_not_delivered(
    inbox, broker, clock, client, agents
):
    conversation_id, script = resolve_with(inbox, broker, clock, client, read_timeout())
    survey = the_survey(inbox)
    assert survey.status == "unconfirmed" and survey.whatsapp_message_id is None
    engagement = {"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement."}
    post_status(client, id="wamid.csat-lost", status="failed", biz_opaque_callback_data=survey.send_key,
                errors=[engagement])  # fmt: skip
    survey = the_survey(inbox)
    assert (survey.status, survey.whatsapp_message_id) == ("undelivered", "wamid.csat-lost")
    assert survey.skip_reason == f"Meta error 131049: {engagement['title']}"
    # The confirmation window passes: it stays not delivered (not "failed", not sent again).
    clock.advance(seconds=inbox.settings.inbox_reply_confirm_seconds + 1)
    CsatSurveys(inbox).recover()
    assert the_survey(inbox).status == "undelivered" and len(questions(script)) == 1
    lines = [line for line in system_lines(inbox, conversation_id) if line.startswith("Satisfaction question")]
    assert lines == [f"Satisfaction question not delivered: Meta error 131049: {engagement['title']}"]
    assert "0 answered of 0 asked" in client.get("/dashboard").text


def test_a_failed_status_does_not_undo_an_answer(inbox, broker, clock, client, agents):
    _conversation_id, script = resolve_with(inbox, broker, clock, client)
    tap(broker, clock, questions(script)[-1]["interactive"]["action"]["buttons"][1]["reply"]["id"], "😐 Okay")
    consume(inbox, broker)
    survey = the_survey(inbox)
    post_status(client, id=survey.whatsapp_message_id, status="failed", biz_opaque_callback_data=survey.send_key,
                errors=[UNDELIVERABLE])  # fmt: skip
    assert (the_survey(inbox).status, the_survey(inbox).rating) == ("answered", "okay")
