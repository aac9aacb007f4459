"""The 24-hour window, approved templates, read receipts and "typing…" on the agent's side. The clock
is injected; WhatsApp is the test's fake Graph API (the sandbox's own checks: tests/connector)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from inbox.models import Conversation, Message, Team
from inbox.services.read_receipts import ReadReceiptConfigError, load_read_receipt_config
from inbox.services.replies import AgentReplies
from inbox.services.templates import TemplateConfigError, load_templates
from inbox.tests.conftest import login, post_form
from inbox.tests.test_event_stream import consume

SENDER = "919876543210"


def handed_off(inbox, broker, clock, *, hours_ago: float = 1) -> int:
    """Priya wrote `hours_ago` hours before the clock's now and the bot handed her over."""
    at = clock.now - timedelta(hours=hours_ago)
    broker.user(SENDER, "My kurta from order #2812 came torn", at, order_numbers=("order #2812",))
    broker.handoff(SENDER, "hf_window", at + timedelta(seconds=1))
    consume(inbox, broker)
    with inbox.db.read() as session:
        return session.scalars(select(Conversation.id).where(Conversation.sender_id == SENDER)).one()


def graph_bodies(external_services) -> list[dict]:
    return [request["body"] for request in external_services.graph_requests]


def test_an_open_window_shows_the_time_left_and_closes_on_the_clock(inbox, broker, clock, client, agents):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=1)
    login(client, "anita")
    page = client.get(f"/conversations/{conversation_id}").text
    assert "24-hour window open" in page and "23 h 0 min left" in page
    closes_at = (clock.now + timedelta(hours=23)).isoformat()
    assert f'data-closes-at="{closes_at}"' in page and 'id="reply-form"' in page
    assert 'id="template-form"' not in page

    clock.advance(hours=23, seconds=1)
    login(client, "anita")  # the sign-in has expired meanwhile
    page = client.get(f"/conversations/{conversation_id}").text
    assert "24-hour window closed" in page
    assert 'id="reply-form"' not in page and 'id="attach-form"' not in page  # only templates now
    assert 'id="template-form"' in page
    # Filled from the conversation: first name, the order number mentioned, the agent's first name.
    assert "Hi Priya, we have an update on your order #2812. Please reply to this message so that Anita" in page
    assert 'value="order_update:en"' in page and 'value="support_follow_up:hi"' in page


def test_free_text_after_the_window_is_refused_with_the_reason_and_not_sent(
    inbox, broker, clock, client, agents, external_services
):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=25)
    login(client, "anita")
    response = post_form(
        client, f"/conversations/{conversation_id}/reply", {"text": "Are you there?"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "24-hour window has closed" in response.text and "Are you there?" in response.text  # text kept
    assert not [body for body in graph_bodies(external_services) if body.get("type") == "text"]


def test_a_template_goes_out_as_the_cloud_api_template_message(inbox, broker, clock, client, agents, external_services):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=30)
    login(client, "anita")
    response = post_form(
        client,
        f"/conversations/{conversation_id}/template",
        {"template": "order_update:en", "value": ["Priya", "#2812", "Anita"]},
    )
    assert response.status_code == 303
    [body] = [body for body in graph_bodies(external_services) if body.get("type") == "template"]
    assert body["to"] == SENDER and body["biz_opaque_callback_data"].startswith("kl-reply-")
    assert body["template"] == {
        "name": "order_update",
        "language": {"code": "en"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Priya"},
                    {"type": "text", "text": "#2812"},
                    {"type": "text", "text": "Anita"},
                ],
            }
        ],
    }
    page = client.get(f"/conversations/{conversation_id}").text
    assert "Hi Priya, we have an update on your order #2812." in page  # the transcript shows what was sent


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (["Priya", "", "Anita"], "fill in {{2}}"),
        (["Priya", "#2812"], "needs 3 values"),
        (["Priya", "two\nlines", "Anita"], "must be one line"),
    ],
)
def test_template_values_are_checked_before_anything_is_sent(
    inbox, broker, clock, client, agents, external_services, values, reason
):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=30)
    login(client, "anita")
    response = post_form(
        client,
        f"/conversations/{conversation_id}/template",
        {"template": "order_update:en", "value": values},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422 and reason in response.text
    assert not [body for body in graph_bodies(external_services) if body.get("type") == "template"]


def test_a_template_reply_whatsapp_could_not_take_is_retried_as_the_template(
    inbox, broker, clock, client, agents, external_services
):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=30)
    busy = {"error": {"code": 131016, "message": "Service unavailable"}}
    external_services.graph_answers.extend([(503, busy)] * 3)  # every quick attempt of the first send
    login(client, "anita")
    post_form(
        client, f"/conversations/{conversation_id}/template", {"template": "support_follow_up:en", "value": ["Priya"]}
    )
    clock.advance(minutes=1)
    AgentReplies(inbox).recover()
    sends = [body for body in graph_bodies(external_services) if "status" not in body]
    assert len(sends) == 4 and all(body["type"] == "template" for body in sends)
    with inbox.db.read() as session:
        reply = session.scalars(select(Message).where(Message.role == "agent")).one()
        assert reply.delivery_status == "accepted"
        assert reply.template == {"name": "support_follow_up", "language": "en", "values": ["Priya"]}


def read_calls(external_services) -> list[dict]:
    return [body for body in graph_bodies(external_services) if body.get("status") == "read"]


def test_opening_a_conversation_marks_the_customers_messages_read_once(
    inbox, broker, clock, client, agents, external_services
):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=1)
    login(client, "anita")
    client.get(f"/conversations/{conversation_id}")
    client.get(f"/conversations/{conversation_id}")
    wamid = f"wamid.in{int((clock.now - timedelta(hours=1)).timestamp())}"
    assert read_calls(external_services) == [{"messaging_product": "whatsapp", "status": "read", "message_id": wamid}]


def test_a_team_that_wants_no_read_receipts_gets_none(inbox, broker, clock, client, agents, external_services):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=1)
    with inbox.db.write() as session:
        escalations = session.scalars(select(Team).where(Team.name == "Escalations")).one()
        session.get(Conversation, conversation_id).team_id = escalations.id
    login(client, "rahul")
    client.get(f"/conversations/{conversation_id}")
    assert read_calls(external_services) == []  # inbox/config/read_receipts.yml: Escalations off


def test_typing_is_passed_on_throttled_and_again_after_the_reply(
    inbox, broker, clock, client, agents, external_services
):
    conversation_id = handed_off(inbox, broker, clock, hours_ago=1)
    login(client, "anita")

    def typing() -> str:
        response = post_form(client, f"/conversations/{conversation_id}/typing")
        assert response.status_code == 204
        return response.headers["X-Typing"]

    assert typing() == "typing"
    assert typing() == "throttled"
    clock.advance(seconds=19)
    assert typing() == "throttled"
    clock.advance(seconds=1)  # typing_refresh_seconds: 20
    assert typing() == "typing"
    post_form(client, f"/conversations/{conversation_id}/reply", {"text": "Checking that for you"})
    assert typing() == "typing"  # the reply ended "typing…" on the phone: the next keystroke shows it again
    typing_calls = [body for body in read_calls(external_services) if body.get("typing_indicator")]
    assert len(typing_calls) == 3 and all(body["typing_indicator"] == {"type": "text"} for body in typing_calls)


def write(tmp_path, text: str):
    path = tmp_path / "templates.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "templates:\n  - name: Hello World\n    language: en\n    category: UTILITY\n    body: hi\n",
            "line 2: template 1 (Hello World), name: must be Meta's template name",
        ),
        (
            "templates:\n  - name: hello\n    language: en\n    category: UTILITY\n    body: 'Hi {{1}}'\n",
            "line 2: template 1 (hello), parameters: the body has 1 parameter(s) but 0 are described",
        ),
        (
            "templates:\n  - name: hello\n    language: en\n    category: UTILITY\n    body: 'Hi {{2}}'\n"
            "    parameters: [{source: none}]\n",
            "line 5: template 1 (hello), body: parameters must be numbered",
        ),
        (
            "templates:\n  - name: hello\n    language: en\n    category: promo\n    body: hi\n",
            "line 4: template 1 (hello), category: must be one of UTILITY, MARKETING, AUTHENTICATION",
        ),
        (
            "templates:\n  - name: hello\n    language: en\n    category: UTILITY\n    body: 'Hi {{1}}'\n"
            "    parameters:\n      - source: birthday\n",
            "line 6: template 1 (hello), parameters: {{1}}: source must be one of",
        ),
        (
            "templates:\n  - {name: a, language: en, category: UTILITY, body: x}\n"
            "  - {name: a, language: en, category: UTILITY, body: y}\n",
            "line 3: template 2: 'a' in language 'en' is defined twice",
        ),
    ],
)
def test_a_mistake_in_templates_yml_names_its_line_and_field(tmp_path, text, expected):
    with pytest.raises(TemplateConfigError) as raised:
        load_templates(write(tmp_path, text))
    assert expected in str(raised.value)


def test_the_shipped_configuration_is_valid():
    assert {"support_follow_up:en", "order_update:en", "support_follow_up:hi"} <= set(load_templates())
    config = load_read_receipt_config()
    assert config.policy("Escalations").mark_read_on_open is False and config.policy("Returns").mark_read_on_open


def test_a_mistake_in_read_receipts_yml_is_refused(tmp_path):
    path = tmp_path / "read_receipts.yml"
    path.write_text("default:\n  mark_read_on_open: maybe\n", encoding="utf-8")
    with pytest.raises(ReadReceiptConfigError, match="line 2: default.mark_read_on_open"):
        load_read_receipt_config(path)


def test_the_inbox_refuses_to_start_with_a_broken_templates_file(settings, monkeypatch, tmp_path):
    from inbox import __main__ as cli
    from inbox import context

    broken = write(tmp_path, "templates:\n  - name: hello\n    language: english\n    category: UTILITY\n    body: hi\n")
    monkeypatch.setattr(context, "load_templates", lambda: load_templates(broken))
    with pytest.raises(SystemExit) as stopped:
        cli._build(settings)
    assert str(stopped.value) == (
        f"The inbox cannot start: {broken} line 3: template 1 (hello), language: "
        "must be a language code such as en, en_US or hi, got 'english'"
    )
