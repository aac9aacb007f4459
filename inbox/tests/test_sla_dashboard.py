"""SLA breaches (flag + Slack once), the dashboard's numbers and chart."""

import re
from datetime import timedelta

from inbox.services.metrics import percentile
from inbox.services.sla import SlaMonitor
from inbox.tests.conftest import handoff_payload, login, post_form, post_handoff
from inbox.tests.test_event_stream import consume


def open_handoff(client, number, **overrides):
    wa_id = f"91980000{number:04d}"
    payload = handoff_payload(
        handoff_id=f"hf_sla_{number}",
        conversation_id=wa_id,
        customer={"whatsapp_id": wa_id, "name": f"Customer {number}"},
        requested_at=None,
        **overrides,
    )
    return post_handoff(client, payload).json()["inbox_conversation_id"]


def test_a_missed_first_response_is_flagged_once_with_a_slack_ping(client, agents, inbox, clock, external_services):
    conversation_id = open_handoff(client, 1, reason="customer_request", topic=None, tags=[])
    monitor = SlaMonitor(inbox)
    clock.advance(minutes=4)
    assert monitor.check() == 0
    clock.advance(minutes=2)
    assert monitor.check() == 1
    assert monitor.check() == 0  # not again
    inbox.slack.wait_until_sent()
    assert len(external_services.slack_messages) == 1
    text = external_services.slack_messages[0]["text"]
    assert "SLA breached: Customer 1 has waited 6 min" in text and "Anita Desai" in text
    assert f"<http://inbox.test/conversations/{conversation_id}|Open conversation>" in text
    login(client, "anita")
    assert "First-response target missed" in client.get(f"/conversations/{conversation_id}").text


def test_an_answered_handoff_is_not_breached(client, agents, inbox, clock, external_services):
    conversation_id = open_handoff(client, 1, reason="customer_request", topic=None, tags=[])
    login(client, "anita")
    clock.advance(minutes=3)
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Hello!"})
    clock.advance(minutes=10)
    assert SlaMonitor(inbox).check() == 0
    assert re.search(
        r'data-view="breached">\s*<span>[^<]*</span><span class="count">0<', client.get("/conversations").text
    )


def test_slack_stays_silent_without_a_webhook(settings, clock, agents, external_services):
    from inbox.context import Inbox

    quiet = Inbox(settings.model_copy(update={"slack_webhook_url": None}), clock=clock)
    try:
        assert not quiet.slack.enabled
        quiet.slack.notify("hello")
        quiet.slack.wait_until_sent()
    finally:
        quiet.close()
    assert external_services.slack_messages == []


def test_percentiles_use_the_nearest_rank():
    values = [30, 60, 90, 120, 600, 45, 75, 100, 110, 3000]
    assert percentile(values, 0.5) == 90
    assert percentile(values, 0.9) == 600
    assert percentile([], 0.5) is None


def test_dashboard_numbers(client, agents, inbox, clock, broker):
    # Three hand-offs answered after 1, 2 and 10 minutes; one never answered (breached).
    answered_after = {1: 1, 2: 2, 3: 10}
    conversations = {
        number: open_handoff(client, number, reason=reason, topic=topic, tags=[topic] if topic else [])
        for number, reason, topic in [
            (1, "topic", "refund"),
            (2, "topic", "complaint"),
            (3, "low_confidence", None),
            (4, "customer_request", None),
        ]
    }
    login(client, "anita")
    start = clock.now
    for number, minutes in answered_after.items():
        clock.now = start + timedelta(minutes=minutes)
        post_form(client, f"/conversations/{conversations[number]}/reply", {"text": "Hello!"})
    clock.now = start + timedelta(minutes=30)
    # Two conversations the bot handled alone.
    broker.user("919811110001", "Do you ship to Pune?", clock.now)
    broker.user("919811110002", "COD available?", clock.now)
    consume(inbox, broker)

    page = client.get("/dashboard?days=7").text
    assert re.search(r'id="frt-median">2.0 min<', page)
    assert re.search(r'id="frt-p90">10.0 min<', page)
    assert re.search(r'id="sla-breaches">2<', page)  # the 10-minute answer and the unanswered one
    assert re.search(r'id="containment">33.3%<', page)  # 2 of 6 conversations without a hand-off
    by_reason = page.split('id="by-reason"')[1].split("</table>")[0]
    assert re.search(r"Topic</td><td class=\"num\">2<", by_reason)
    assert re.search(r"Bot unsure</td><td class=\"num\">1<", by_reason)
    by_topic = page.split('id="by-topic"')[1].split("</table>")[0]
    assert "refund" in by_topic and "complaint" in by_topic
    load = page.split('id="agent-load"')[1].split("</table>")[0]
    # refund -> Anita (Returns); low confidence -> Rahul (never assigned before); customer request -> Anita
    assert re.search(r"Anita Desai.*?(\d+) / 5", load, re.S).group(1) == "2"
    assert page.count("<rect ") >= 1 and "Hand-offs per day" in page
