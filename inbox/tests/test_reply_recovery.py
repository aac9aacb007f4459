"""Agent replies interrupted mid-send: retried with backoff when Meta certainly did not get them,
never sent twice when it may have, and never left in "Sending…" for good. The clock is injected;
nothing waits on the wall clock."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from inbox.models import Agent, Message
from inbox.services.replies import RETRY_DELAYS, AgentReplies
from inbox.tests.conftest import BOT_TOKEN, login, post_form
from inbox.tests.test_agent_screens import open_handoff


class Killed(BaseException):
    """Stands in for the process dying: nothing in the inbox catches it."""


class GraphScript:
    """A Graph API transport that answers each POST from a script of outcomes."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.bodies: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome == "ok":
            return httpx.Response(200, json={"messages": [{"id": f"wamid.script{len(self.bodies)}"}]})
        status, error = outcome
        return httpx.Response(status, json={"error": error})


def use_graph(inbox, script: GraphScript) -> GraphScript:
    inbox.whatsapp.http = httpx.Client(transport=httpx.MockTransport(script))
    return script


def the_reply(inbox) -> Message:
    with inbox.db.read() as session:
        message = session.scalars(select(Message).where(Message.role == "agent")).one()
        session.expunge(message)
        return message


def send_reply(client, inbox, text="Your refund is on its way") -> int:
    conversation_id = open_handoff(client)
    login(client, "anita")
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": text})
    return conversation_id


def post_status(client, **status):
    return client.post(
        "/api/v1/whatsapp/statuses",
        json={"statuses": [{"timestamp": "1764065703", "recipient_id": "919800000001", **status}]},
        headers={"Authorization": f"Bearer {BOT_TOKEN}"},
    )


def read_timeout():
    return httpx.ReadTimeout("timed out")


def test_a_read_timeout_is_not_sent_again_and_a_status_with_our_key_confirms_it(client, agents, inbox, clock):
    script = use_graph(inbox, GraphScript(read_timeout()))
    conversation_id = send_reply(client, inbox)
    reply = the_reply(inbox)
    assert reply.delivery_status == "unconfirmed" and len(script.bodies) == 1
    assert script.bodies[0]["biz_opaque_callback_data"] == reply.send_key
    assert "Sending…" in client.get(f"/conversations/{conversation_id}/transcript").text

    AgentReplies(inbox).recover()  # within the confirmation window: nothing is re-sent
    assert len(script.bodies) == 1
    # Meta did send it: its status webhook carries our key and the wamid.
    assert post_status(client, id="wamid.late1", status="sent", biz_opaque_callback_data=reply.send_key).json() == {
        "accepted": 1
    }
    reply = the_reply(inbox)
    assert (reply.delivery_status, reply.whatsapp_message_id) == ("sent", "wamid.late1")
    clock.advance(seconds=inbox.settings.inbox_reply_confirm_seconds + 1)
    AgentReplies(inbox).recover()
    assert the_reply(inbox).delivery_status == "sent" and len(script.bodies) == 1


def test_an_unconfirmed_reply_fails_with_the_reason_after_the_window_and_can_be_retried(client, agents, inbox, clock):
    script = use_graph(inbox, GraphScript(read_timeout()))
    conversation_id = send_reply(client, inbox)
    clock.advance(seconds=inbox.settings.inbox_reply_confirm_seconds - 1)
    AgentReplies(inbox).recover()
    assert the_reply(inbox).delivery_status == "unconfirmed"
    clock.advance(seconds=2)
    AgentReplies(inbox).recover()
    reply = the_reply(inbox)
    assert reply.delivery_status == "failed" and len(script.bodies) == 1
    transcript = client.get(f"/conversations/{conversation_id}/transcript").text
    assert "Not delivered" in transcript and "did not confirm" in transcript and "Retry" in transcript

    post_form(client, f"/messages/{reply.id}/retry")
    assert the_reply(inbox).delivery_status == "accepted" and len(script.bodies) == 2
    assert script.bodies[1]["biz_opaque_callback_data"] == reply.send_key


def test_a_late_status_with_our_key_marks_a_given_up_reply_sent(client, agents, inbox, clock):
    use_graph(inbox, GraphScript(read_timeout()))
    send_reply(client, inbox)
    clock.advance(seconds=inbox.settings.inbox_reply_confirm_seconds + 1)
    AgentReplies(inbox).recover()
    reply = the_reply(inbox)
    assert reply.delivery_status == "failed"
    post_status(client, id="wamid.late2", status="delivered", biz_opaque_callback_data=reply.send_key)
    assert the_reply(inbox).delivery_status == "delivered"


def send_and_die(client, inbox, agents) -> None:
    """The agent's send, in a process that dies during it (called directly: a BaseException would also
    tear down the test client)."""
    conversation_id = open_handoff(client)
    with inbox.db.read() as session:
        anita = session.get(Agent, agents["anita"])
        session.expunge(anita)
    with pytest.raises(Killed):
        AgentReplies(inbox).send(conversation_id, anita, "Your refund is on its way")


def test_a_reply_killed_mid_send_is_not_sent_again_blindly(client, agents, inbox, clock):
    script = use_graph(inbox, GraphScript(Killed()))
    send_and_die(client, inbox, agents)
    assert the_reply(inbox).delivery_status == "unconfirmed"
    clock.advance(seconds=RETRY_DELAYS[0].total_seconds())  # when a reply not yet sent would be retried
    AgentReplies(inbox).recover()
    assert len(script.bodies) == 1 and the_reply(inbox).delivery_status == "unconfirmed"
    clock.advance(seconds=inbox.settings.inbox_reply_confirm_seconds - RETRY_DELAYS[0].total_seconds())
    AgentReplies(inbox).recover()
    assert the_reply(inbox).delivery_status == "failed" and len(script.bodies) == 1


def test_a_reply_whose_request_died_before_sending_is_sent_by_the_recovery_loop(
    client, agents, inbox, clock, monkeypatch
):
    script = use_graph(inbox, GraphScript())

    def killed(self, message_id, *, scheduled):
        raise Killed()

    with monkeypatch.context() as patch:
        patch.setattr(AgentReplies, "_deliver", killed)
        send_and_die(client, inbox, agents)
    assert the_reply(inbox).delivery_status == "sending" and script.bodies == []
    clock.advance(seconds=RETRY_DELAYS[0].total_seconds() - 1)
    AgentReplies(inbox).recover()
    assert script.bodies == []  # the request that wrote it might still be about to send it
    clock.advance(seconds=1)
    assert AgentReplies(inbox).recover() == 1
    assert the_reply(inbox).delivery_status == "accepted" and len(script.bodies) == 1


@pytest.mark.parametrize(
    "refusal",
    [
        (503, {"code": 1, "message": "try later"}),
        (429, {"code": 130429, "message": "Rate limit hit"}),
        (400, {"code": 131056, "message": "pair rate limit"}),
    ],
    ids=["5xx", "130429", "131056"],
)
def test_refusals_that_did_not_send_are_retried_with_backoff(client, agents, inbox, clock, refusal):
    attempts = inbox.whatsapp.attempts
    script = use_graph(inbox, GraphScript(*[refusal] * attempts))
    conversation_id = send_reply(client, inbox)
    reply = the_reply(inbox)
    assert reply.delivery_status == "sending" and len(script.bodies) == attempts
    assert "retrying automatically" in client.get(f"/conversations/{conversation_id}/transcript").text
    clock.advance(seconds=RETRY_DELAYS[0].total_seconds() - 1)
    AgentReplies(inbox).recover()
    assert len(script.bodies) == attempts  # not due yet
    clock.advance(seconds=1)
    AgentReplies(inbox).recover()
    assert the_reply(inbox).delivery_status == "accepted" and len(script.bodies) == attempts + 1
    assert len({body["biz_opaque_callback_data"] for body in script.bodies}) == 1


def test_the_recovery_loop_gives_up_with_the_reason(client, agents, inbox, clock):
    refusal = (503, {"code": 131016, "message": "Service unavailable"})
    script = use_graph(inbox, GraphScript(*[refusal] * 100))
    conversation_id = send_reply(client, inbox)
    for delay in RETRY_DELAYS:
        assert the_reply(inbox).delivery_status == "sending"
        clock.advance(seconds=delay.total_seconds())
        AgentReplies(inbox).recover()
    reply = the_reply(inbox)
    assert reply.delivery_status == "failed" and reply.send_attempts == len(RETRY_DELAYS) + 1
    assert len(script.bodies) == (len(RETRY_DELAYS) + 1) * inbox.whatsapp.attempts
    transcript = client.get(f"/conversations/{conversation_id}/transcript").text
    assert "Gave up after 6 attempts" in transcript and "temporarily unavailable" in transcript
    assert "Retry" in transcript


def test_a_connection_that_never_opened_is_retried_at_once_a_read_timeout_never(inbox):
    script = use_graph(inbox, GraphScript(httpx.ConnectError("refused"), "ok"))
    assert inbox.whatsapp.send_text("hi", to="919800000001", send_key="kl-reply-x").startswith("wamid.")
    assert len(script.bodies) == 2
    script = use_graph(inbox, GraphScript(read_timeout(), "ok"))
    with pytest.raises(Exception, match="may or may not have been sent"):
        inbox.whatsapp.send_text("hi", to="919800000001", send_key="kl-reply-y")
    assert len(script.bodies) == 1


def test_replies_an_older_inbox_left_sending_are_resolved_after_the_upgrade(client, agents, inbox, clock):
    from inbox import migrate

    use_graph(inbox, GraphScript(read_timeout()))
    send_reply(client, inbox)
    migrate.downgrade(inbox.db, "0003")  # the reply is "sending" as before issue 13, with no schedule
    migrate.upgrade(inbox.db)
    assert the_reply(inbox).delivery_status == "unconfirmed"
    clock.advance(days=3650)  # past the migration's time (it ran on the wall clock, the test's is in 2026)
    AgentReplies(inbox).recover()
    reply = the_reply(inbox)
    assert reply.delivery_status == "failed" and "did not confirm" in reply.delivery_error
