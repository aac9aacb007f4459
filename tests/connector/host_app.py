"""Runs the WhatsApp connector in a plain Sanic server with a scripted bot instead of Rasa.

Used by the connector tests that need a real HTTP server and a process they can kill. The
connector code is the production code; only the bot behind `on_new_message` is scripted:
it answers "echo: <text>", "slow <seconds>" makes it think first, "menu" gets three reply
buttons and "sizes" five options (a list message), reactions are recorded without a reply, and conversations
marked paused (POST /test/pause/<wa_id>) get no reply, like a handed-off Rasa conversation.
The journal of what the bot saw is readable at GET /test/journal/<wa_id>.

    python tests/connector/host_app.py <port>     (settings from WHATSAPP_* variables)
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Set

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rasa.core.channels.channel import OutputChannel, UserMessage  # noqa: E402
from sanic import Sanic, response  # noqa: E402

from connectors.conversations import UNREADABLE_MESSAGE_REPLY  # noqa: E402
from connectors.inbound import InboundMessage  # noqa: E402
from connectors.settings import WhatsAppSettings  # noqa: E402
from connectors.whatsapp import WhatsAppInput  # noqa: E402

BOT_UNAVAILABLE_REPLY = "Sorry, something went wrong; a teammate will reply."
MENUS = {
    "menu": ("Did that answer your question?", [("Yes", "/affirm"), ("No", "/deny"), ("Talk to a human", "/request_human")]),
    "sizes": ("Which size?", [(size, f'/inform{{"size": "{size}"}}') for size in ("XS", "S", "M", "L", "XL")]),
}


class ScriptedConversations:
    def __init__(self) -> None:
        self.journal: Dict[str, List[Dict[str, Any]]] = {}
        self.paused: Set[str] = set()

    def is_ready(self) -> bool:
        return True

    def _log(self, wa_id: str, **event: Any) -> None:
        self.journal.setdefault(wa_id, []).append(event)

    async def deliver(self, message: UserMessage) -> None:
        wa_id = message.sender_id
        self._log(wa_id, event="user", text=message.text, message_id=message.message_id, metadata=message.metadata)
        if wa_id in self.paused:
            return
        text = message.text or ""
        if text in MENUS:
            question, options = MENUS[text]
            buttons = [{"title": title, "payload": payload} for title, payload in options]
            await message.output_channel.send_text_with_buttons(wa_id, question, buttons)
            self._log(wa_id, event="bot", text=question)
            return
        if text.startswith("slow "):
            await asyncio.sleep(float(text.split()[1]))
        reply = f"echo: {text}"
        await message.output_channel.send_text_message(wa_id, reply)
        self._log(wa_id, event="bot", text=reply)

    async def deliver_again(self, message: UserMessage) -> None:
        await self.deliver(message)

    async def react(self, message: UserMessage) -> bool:
        # Like the real bot: a reaction in a handed-off conversation is not the bot's business, and
        # the bot never replies to a reaction itself (the scripted bot records it and says nothing).
        if message.sender_id in self.paused:
            return False
        self._log(message.sender_id, event="user", text=message.text, message_id=message.message_id,
                  metadata=message.metadata)
        return True

    async def hand_off_unprocessed(self, message: UserMessage, error: str) -> None:
        # Like RasaConversations: the message could not be handled for minutes; tell, hand off.
        self._log(message.sender_id, event="handoff", text=message.text, message_id=message.message_id, error=error)
        if message.sender_id not in self.paused:
            self.paused.add(message.sender_id)
            await message.output_channel.send_text_message(message.sender_id, BOT_UNAVAILABLE_REPLY)

    async def record_survey_answer(self, message: InboundMessage, role: str, output_channel: OutputChannel) -> None:
        metadata = message.rasa_metadata()
        metadata["whatsapp"]["csat"] = role
        self._log(message.wa_id, event="user", text=message.text, message_id=message.message_id, metadata=metadata)

    async def record_unreadable(self, message: InboundMessage, output_channel: OutputChannel) -> bool:
        self._log(message.wa_id, event="user", text=message.text, message_id=message.message_id,
                  metadata=message.rasa_metadata())
        if message.wa_id in self.paused:
            return False
        await output_channel.send_text_message(message.wa_id, UNREADABLE_MESSAGE_REPLY)
        self._log(message.wa_id, event="bot", text=UNREADABLE_MESSAGE_REPLY)
        return True


def build_app() -> Sanic:
    conversations = ScriptedConversations()
    channel = WhatsAppInput(
        WhatsAppSettings.from_env(),
        conversations_factory=lambda _app, _on_new_message: conversations,
    )

    app = Sanic("connector_test_host")
    app.blueprint(channel.blueprint(conversations.deliver), url_prefix="/webhooks/whatsapp")

    @app.get("/test/journal/<wa_id>")
    async def journal(_request: Any, wa_id: str) -> Any:
        return response.json(conversations.journal.get(wa_id, []))

    @app.post("/test/pause/<wa_id>")
    async def pause(_request: Any, wa_id: str) -> Any:
        conversations.paused.add(wa_id)
        return response.json({"paused": wa_id})

    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    build_app().run(host="127.0.0.1", port=int(sys.argv[1]), access_log=False, workers=1)
