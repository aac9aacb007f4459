"""Writes events the way Rasa 3.6's SQLEventBroker does: table `events` (id integer primary key,
sender_id varchar(255), data text) where `data` is `{"sender_id": ..., **event.as_dict()}` as JSON.
(`test_event_stream.py` also checks this against Rasa's own broker class when the Rasa env exists.)"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path


class RasaBrokerTable:
    def __init__(self, path: Path):
        self.path = path
        with sqlite3.connect(path) as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS events "
                "(id INTEGER NOT NULL, sender_id VARCHAR(255), data TEXT, PRIMARY KEY (id))"
            )

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def publish(self, sender_id: str, event: dict) -> int:
        with sqlite3.connect(self.path) as connection:
            cursor = connection.execute(
                "INSERT INTO events (sender_id, data) VALUES (?, ?)",
                (sender_id, json.dumps({"sender_id": sender_id, **event})),
            )
            return cursor.lastrowid

    def user(
        self,
        sender_id: str,
        text: str | None,
        at: datetime,
        name: str | None = "Priya Sharma",
        *,
        order_numbers: tuple[str, ...] = (),
        **extra,
    ) -> int:
        """`order_numbers`: spans of `text` that Rasa's NLU tagged `order_number` (as the real
        pipeline would for nlp/entity_patterns.yml), published in parse_data.entities."""
        metadata = {
            "whatsapp": {
                "wa_id": sender_id,
                "profile_name": name,
                "phone_number_id": "106540352242922",
                "message_id": f"wamid.in{int(at.timestamp())}",
                "type": extra.pop("kind", "text"),
                "timestamp": str(int(at.timestamp())),
            }
        }
        return self.publish(
            sender_id,
            {
                "event": "user",
                "timestamp": at.timestamp(),
                "metadata": metadata,
                "text": text,
                "parse_data": {
                    "intent": {"name": "greet", "confidence": 0.9},
                    "entities": order_entities(text, order_numbers),
                    "text": text,
                },
                "input_channel": "whatsapp",
                "message_id": f"m{int(at.timestamp() * 1000)}",
                **extra,
            },
        )

    def bot(self, sender_id: str, text: str, at: datetime) -> int:
        return self.publish(sender_id, bot_event(text, {"utter_action": "utter_x"}, at))

    def slot(self, sender_id: str, name: str, value, at: datetime) -> int:
        return self.publish(sender_id, {"event": "slot", "timestamp": at.timestamp(), "name": name, "value": value})

    def pause(self, sender_id: str, at: datetime) -> int:
        return self.publish(sender_id, {"event": "pause", "timestamp": at.timestamp()})

    def action(self, sender_id: str, name: str, at: datetime) -> int:
        return self.publish(
            sender_id,
            {
                "event": "action",
                "timestamp": at.timestamp(),
                "name": name,
                "policy": None,
                "confidence": 1.0,
                "action_text": None,
                "hide_rule_turn": False,
            },
        )

    def handoff(
        self,
        sender_id: str,
        handoff_id: str,
        at: datetime,
        *,
        reason="topic",
        topic="refund",
        text="I'm bringing in Anita",
    ) -> None:
        """What action_handoff leaves on the stream (actions/CONTRACT.md): bot message, slots, pause."""
        self.action(sender_id, "action_handoff", at)
        self.bot(sender_id, text, at)
        self.slot(sender_id, "escalation_reason", reason, at)
        self.slot(sender_id, "escalation_topic", topic, at)
        self.slot(sender_id, "handoff_id", handoff_id, at)
        self.slot(
            sender_id,
            "handoff_details",
            {
                "tags": [topic] if topic else [],
                "priority": "high",
                "summary": "Refund hand-off",
                "order_numbers": ["#2812"],
                "delivered_to_inbox": False,
                "assignee": None,
            },
            at,
        )
        self.pause(sender_id, at)


def order_entities(text: str | None, spans: tuple[str, ...]) -> list[dict]:
    """Entities the way Rasa's SpacyEntityExtractor reports them: the matched span is the value."""
    entities = []
    for span in spans:
        start = (text or "").index(span)
        entities.append(
            {
                "entity": "order_number",
                "start": start,
                "end": start + len(span),
                "value": span,
                "extractor": "SpacyEntityExtractor",
            }
        )
    return entities


def bot_event(text: str, metadata: dict, at: datetime | None = None) -> dict:
    """A bot message as Rasa 3.6 streams it (`timestamp` left out when `at` is None)."""
    stamp = {} if at is None else {"timestamp": at.timestamp()}
    return {
        "event": "bot",
        **stamp,
        "metadata": metadata,
        "text": text,
        "data": {"elements": None, "quick_replies": None, "buttons": None, "attachment": None, "image": None,
                 "custom": None},
    }
