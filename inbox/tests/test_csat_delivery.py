"""The satisfaction question goes out like an agent reply: retried with the same send key only when
WhatsApp certainly did not get it, never POSTed again after a timeout (a status with its key confirms
it), and skipped when the customer's 24-hour window closed before it could go. Injected clock; the
Graph API answers from a script."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from inbox.models import CsatSurvey
from inbox.services.csat import CsatSurveys
from inbox.services.replies import RETRY_DELAYS
from inbox.tests.conftest import login, post_form
from inbox.tests.test_csat_follow_ups import system_lines
from inbox.tests.test_reply_recovery import GraphScript, post_status, read_timeout, use_graph
from inbox.tests.test_service_window import handed_off

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
