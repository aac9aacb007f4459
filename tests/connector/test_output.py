"""What the bot says, as it reaches WhatsApp (the sandbox validates like Meta)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List

import pytest
import pytest_asyncio

from connectors.graph_api import GraphApiClient
from connectors.output import MessageSender, WhatsAppOutput
from connectors.settings import WhatsAppSettings
from connectors.store import WhatsAppStore
from tests.connector.support import SECRETS, SandboxClient, new_wa_id

pytestmark = pytest.mark.asyncio


class Channel:
    def __init__(self, output: WhatsAppOutput, store: WhatsAppStore, store_path: Path, sandbox: SandboxClient) -> None:
        self.output = output
        self.store = store
        self.store_path = store_path
        self.sandbox = sandbox

    def sent(self, wa_id: str) -> List[Dict[str, Any]]:
        return [message["content"] for message in self.sandbox.business_messages(wa_id)]

    def outbound_log(self, wa_id: str) -> List[sqlite3.Row]:
        connection = sqlite3.connect(self.store_path)
        connection.row_factory = sqlite3.Row
        try:
            return connection.execute(
                "SELECT * FROM wa_outbound_messages WHERE recipient_id = ? ORDER BY id", (wa_id,)
            ).fetchall()
        finally:
            connection.close()


@pytest_asyncio.fixture
async def channel(stack, sandbox, tmp_path) -> AsyncIterator[Channel]:
    store_path = tmp_path / "output-store.db"
    settings = WhatsAppSettings(
        verify_token=SECRETS["WHATSAPP_VERIFY_TOKEN"],
        app_secret=SECRETS["WHATSAPP_APP_SECRET"],
        access_token=SECRETS["WHATSAPP_ACCESS_TOKEN"],
        phone_number_id=SECRETS["WHATSAPP_PHONE_NUMBER_ID"],
        api_base_url=f"{stack['sandbox_url']}/v21.0",
        store_url=f"sqlite:///{store_path}",
        send_attempts=4,
        send_backoff_seconds=0.05,
    )
    store = WhatsAppStore(settings.store_url)
    store.create_schema()
    client = GraphApiClient(settings)
    yield Channel(WhatsAppOutput(MessageSender(client, store)), store, store_path, sandbox)
    await client.close()
    store.close()


# --- long texts --------------------------------------------------------------------------


async def test_long_text_is_split_at_paragraphs_within_the_limit(channel):
    wa_id = new_wa_id()
    paragraphs = [(f"Paragraph {n}. " + "Our kurtas are hand block printed in Jaipur. " * 40).strip() for n in range(6)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 2 * 4096
    await channel.output.send_text_message(wa_id, text)
    bodies = [message["text"]["body"] for message in channel.sent(wa_id)]
    assert len(bodies) >= 3 and all(len(body) <= 4096 for body in bodies)
    assert "\n\n".join(bodies) == text  # nothing lost, cut only between paragraphs


async def test_long_text_without_paragraphs_is_split_between_sentences(channel):
    wa_id = new_wa_id()
    text = " ".join(f"Sentence number {n} is about returns and refunds." for n in range(200))
    assert len(text) > 4096
    await channel.output.send_text_message(wa_id, text)
    bodies = [message["text"]["body"] for message in channel.sent(wa_id)]
    assert len(bodies) == 3
    assert all(len(body) <= 4096 and body.endswith(".") for body in bodies)
    assert " ".join(bodies) == text


# --- buttons -----------------------------------------------------------------------------


def buttons(*titles: str) -> List[Dict[str, str]]:
    return [{"title": title, "payload": f'/choose{{"option": "{title}"}}'} for title in titles]


async def test_up_to_three_short_buttons_are_reply_buttons(channel):
    wa_id = new_wa_id()
    await channel.output.send_text_with_buttons(wa_id, "Did that answer your question?", buttons("Yes", "No", "Talk to a human"))
    [message] = channel.sent(wa_id)
    interactive = message["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"]["text"] == "Did that answer your question?"
    assert [(b["reply"]["title"], b["reply"]["id"]) for b in interactive["action"]["buttons"]] == [
        ("Yes", '/choose{"option": "Yes"}'), ("No", '/choose{"option": "No"}'),
        ("Talk to a human", '/choose{"option": "Talk to a human"}')]


async def test_more_than_three_buttons_become_a_list(channel):
    wa_id = new_wa_id()
    await channel.output.send_text_with_buttons(wa_id, "Which size?", buttons("XS", "S", "M", "L", "XL"))
    [message] = channel.sent(wa_id)
    interactive = message["interactive"]
    assert interactive["type"] == "list"
    rows = interactive["action"]["sections"][0]["rows"]
    assert [row["title"] for row in rows] == ["XS", "S", "M", "L", "XL"]
    assert rows[2]["id"] == '/choose{"option": "M"}'


async def test_a_button_title_over_20_characters_becomes_a_list_row(channel):
    wa_id = new_wa_id()
    long_title = "Exchange for another size please"
    await channel.output.send_text_with_buttons(wa_id, "What would you like?", buttons("Refund", long_title))
    [message] = channel.sent(wa_id)
    rows = message["interactive"]["action"]["sections"][0]["rows"]
    assert message["interactive"]["type"] == "list"
    assert rows[1]["title"] == "Exchange for another si…" and len(rows[1]["title"]) <= 24
    assert rows[1]["description"] == long_title


async def test_more_than_ten_options_are_sent_as_several_lists(channel):
    wa_id = new_wa_id()
    titles = [f"Store {n}" for n in range(1, 13)]
    await channel.output.send_text_with_buttons(wa_id, "Pick a store", buttons(*titles))
    lists = [message["interactive"] for message in channel.sent(wa_id)]
    assert [interactive["type"] for interactive in lists] == ["list", "list"]
    sent_titles = [row["title"] for interactive in lists for row in interactive["action"]["sections"][0]["rows"]]
    assert sent_titles == titles
    assert lists[0]["body"]["text"] == "Pick a store"


async def test_a_payload_too_long_for_a_reply_id_comes_back_intact(channel):
    wa_id = new_wa_id()
    long_payload = '/inform{"note": "' + "x" * 300 + '"}'
    await channel.output.send_text_with_buttons(wa_id, "Confirm?", [{"title": "Confirm", "payload": long_payload}])
    [message] = channel.sent(wa_id)
    reply_id = message["interactive"]["action"]["buttons"][0]["reply"]["id"]
    assert len(reply_id) <= 200
    assert await channel.store.run(channel.store.resolve_reply_option, reply_id) == long_payload


async def test_text_longer_than_an_interactive_body_goes_first_as_text(channel):
    wa_id = new_wa_id()
    text = "Here is everything about our return policy. " * 40 + "Was this helpful?"
    await channel.output.send_text_with_buttons(wa_id, text, buttons("Yes", "No"))
    sent = channel.sent(wa_id)
    assert [message["type"] for message in sent] == ["text", "interactive"]
    assert len(sent[1]["interactive"]["body"]["text"]) <= 1024
    assert sent[1]["interactive"]["body"]["text"].endswith("Was this helpful?")


# --- images and custom JSON --------------------------------------------------------------


async def test_image_by_url(channel):
    wa_id = new_wa_id()
    await channel.output.send_image_url(wa_id, "https://cdn.example.com/size-chart.png")
    [message] = channel.sent(wa_id)
    assert message["type"] == "image" and message["image"] == {"link": "https://cdn.example.com/size-chart.png"}


async def test_custom_json_is_sent_as_written(channel):
    wa_id = new_wa_id()
    # A template the business has (inbox/config/templates.yml): the sandbox refuses unknown ones like Meta.
    custom = {"type": "template", "template": {"name": "support_follow_up", "language": {"code": "en"},
              "components": [{"type": "body", "parameters": [{"type": "text", "text": "Priya"}]}]}}
    await channel.output.send_custom_json(wa_id, custom)
    [message] = channel.sent(wa_id)
    assert message["template"] == custom["template"] and message["to"] == wa_id


# --- failures and retries ----------------------------------------------------------------


@pytest.mark.parametrize("mode, code", [("http_429", None), ("http_500", None), ("meta_error", 130429), ("meta_error", 131056)])
async def test_throttling_and_server_errors_are_retried(channel, mode, code):
    wa_id = new_wa_id()
    channel.sandbox.fail_next(mode, count=2, code=code)
    attempts_before = channel.sandbox.send_attempts()
    await channel.output.send_text_message(wa_id, "Your order is on its way.")
    assert [m["text"]["body"] for m in channel.sent(wa_id)] == ["Your order is on its way."]
    assert channel.sandbox.send_attempts() - attempts_before == 3
    [logged] = channel.outbound_log(wa_id)
    assert logged["state"] == "sent" and logged["attempts"] == 3 and logged["wamid"].startswith("wamid.")


async def test_outside_the_24_hour_window_is_logged_and_not_retried(channel, caplog):
    wa_id = new_wa_id()
    channel.sandbox.fail_next("meta_error", count=5, code=131047)
    attempts_before = channel.sandbox.send_attempts()
    with caplog.at_level(logging.ERROR, logger="connectors.output"):
        await channel.output.send_text_message(wa_id, "Following up on your refund")
    assert channel.sandbox.send_attempts() - attempts_before == 1
    assert channel.sent(wa_id) == []
    assert any("131047" in r.getMessage() and "Re-engagement message" in r.getMessage()
               and "24 hours" in r.getMessage() for r in caplog.records)
    [logged] = channel.outbound_log(wa_id)
    assert (logged["state"], logged["error_code"], logged["http_status"]) == ("failed", 131047, 400)


async def test_gives_up_after_the_configured_attempts(channel, caplog):
    wa_id = new_wa_id()
    channel.sandbox.fail_next("http_500", count=10)
    attempts_before = channel.sandbox.send_attempts()
    with caplog.at_level(logging.ERROR, logger="connectors.output"):
        await channel.output.send_text_message(wa_id, "Hello?")
    assert channel.sandbox.send_attempts() - attempts_before == 4
    assert any("not sent after 4 attempt(s)" in r.getMessage() for r in caplog.records)
    [logged] = channel.outbound_log(wa_id)
    assert logged["state"] == "failed" and logged["http_status"] == 500


async def test_a_message_meta_rejects_as_invalid_is_not_retried(channel, caplog):
    wa_id = new_wa_id()
    attempts_before = channel.sandbox.send_attempts()
    with caplog.at_level(logging.ERROR, logger="connectors.output"):
        await channel.output.send_custom_json(wa_id, {"type": "text", "text": {"body": "x" * 5000}})
    assert channel.sandbox.send_attempts() - attempts_before == 1
    [logged] = channel.outbound_log(wa_id)
    assert logged["state"] == "failed" and logged["error_code"] == 100
    assert any("4096" in r.getMessage() for r in caplog.records)


async def test_a_failed_send_does_not_stop_the_next_one(channel):
    wa_id = new_wa_id()
    channel.sandbox.fail_next("meta_error", count=1, code=131026)
    await channel.output.send_text_message(wa_id, "first")
    await channel.output.send_text_message(wa_id, "second")
    assert [m["text"]["body"] for m in channel.sent(wa_id)] == ["second"]
    assert [row["state"] for row in channel.outbound_log(wa_id)] == ["failed", "sent"]
