"""Reading a Rasa tracker: the transcript, the customer, order numbers mentioned.

Pure functions over rasa-sdk's Tracker so the hand-off payload is easy to test.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from rasa_sdk import Tracker

MAX_TRANSCRIPT_MESSAGES = 60
# Parse-data key the NLU sets when it cut leading follow-up markers off a message (actions/CONTRACT.md;
# components/follow_ups.py FOLLOW_UP_KEY, not imported: the action server does not load NLU components).
FOLLOW_UP_KEY = "follow_up"
_ORDER_DIGITS = re.compile(r"(\d{3,10})")


def normalize_order_number(value: Any) -> Optional[str]:
    """'order #2840', '# 2840', 'order no 2840', '2840' -> '#2840'; None if there is no number.

    Writes a value in canonical form; it does not decide what an order number is. That is defined once,
    by the NLU's patterns (nlp/entity_patterns.yml): `order_numbers` below reads the entities Rasa
    extracted. Only the order form applies this to the customer's raw text, where a bare "2840" is
    an answer because the form asked for it (actions/orders.py).
    """
    if value is None:
        return None
    match = _ORDER_DIGITS.search(str(value))
    return f"#{match.group(1)}" if match else None


def _iso(timestamp: Any) -> Optional[str]:
    try:
        return datetime.fromtimestamp(float(timestamp), tz=timezone.utc).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError):
        return None


def transcript(events: Iterable[Dict[str, Any]], limit: int = MAX_TRANSCRIPT_MESSAGES) -> List[Dict[str, Any]]:
    """Customer and bot messages, oldest first, at most `limit` (the most recent ones)."""
    messages = []
    for event in events:
        kind = event.get("event")
        text = event.get("text")
        if kind not in ("user", "bot") or not text:
            continue
        messages.append(
            {
                "role": "customer" if kind == "user" else "bot",
                "text": text,
                "timestamp": _iso(event.get("timestamp")),
            }
        )
    return messages[-limit:]


def whatsapp_metadata(tracker: Tracker) -> Dict[str, Any]:
    """The connector's metadata of the newest user message that has it (see actions/CONTRACT.md)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            metadata = (event.get("metadata") or {}).get("whatsapp")
            if isinstance(metadata, dict):
                return metadata
    return {}


def customer(tracker: Tracker) -> Dict[str, Any]:
    metadata = whatsapp_metadata(tracker)
    return {
        "whatsapp_id": metadata.get("wa_id") or tracker.sender_id,
        "name": metadata.get("profile_name"),
        "phone_number_id": metadata.get("phone_number_id"),
    }


def order_numbers(tracker: Tracker) -> List[str]:
    """Every order number the customer mentioned, in order, without repeats."""
    found: List[str] = []
    candidates = []
    for event in tracker.events:
        if event.get("event") == "user":
            for entity in (event.get("parse_data") or {}).get("entities") or []:
                if entity.get("entity") == "order_number":
                    candidates.append(entity.get("value"))
        elif event.get("event") == "slot" and event.get("name") == "order_number":
            candidates.append(event.get("value"))
    for value in candidates:
        number = normalize_order_number(value)
        if number and number not in found:
            found.append(number)
    return found


def latest_order_number(tracker: Tracker) -> Optional[str]:
    """The order number the NLU found in the customer's latest message ('#2840'), or None."""
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == "order_number":
            return normalize_order_number(entity.get("value"))
    return None


def latest_user_text(tracker: Tracker) -> str:
    """What the customer wrote, as written."""
    return (tracker.latest_message or {}).get("text") or ""


def question_text(tracker: Tracker) -> str:
    """The part of the customer's latest message that carries the question: what the knowledge base
    should search. The NLU leaves out a leading "ok and" / "also" / "aur" (components/follow_ups.py)
    and a declined request such as "agent nahi chahiye," (components/keyword_escalation.py) in the
    parse data's `question`; any other message is searched as written."""
    message = tracker.latest_message or {}
    return message.get("question") or latest_user_text(tracker)


def is_reaction(event: Dict[str, Any]) -> bool:
    """A user event that is a WhatsApp reaction to a bot message (metadata `type: "reaction"`,
    actions/CONTRACT.md), not something the customer wrote."""
    metadata = (event.get("metadata") or {}).get("whatsapp")
    return isinstance(metadata, dict) and metadata.get("type") == "reaction"


def earlier_turns(tracker: Tracker) -> Iterator[Tuple[Dict[str, Any], Optional[Dict[str, Any]]]]:
    """(user event, that turn's last `kb_match` value, {} when it was reset, None when the turn made
    no lookup) for each customer message before the latest one, newest first. Reactions are left out
    with the bot's reply to them: a 👎 says something about the answer before it and asks nothing, so
    "so only unopened ones, yes?" after "👎" still follows up the question that answer was for."""
    latest_seen = False
    lookup: Optional[Dict[str, Any]] = None
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "slot" and event.get("name") == "kb_match" and latest_seen and lookup is None:
            lookup = event.get("value") or {}
        elif kind == "user":
            if not latest_seen:
                latest_seen = True
                continue
            if not is_reaction(event):
                yield event, lookup
            lookup = None


def searched_question(event: Dict[str, Any]) -> str:
    """What the knowledge base searched for a user event (`question_text` at the time)."""
    parse_data = event.get("parse_data") or {}
    return parse_data.get("question") or event.get("text") or ""


def previous_kb_answer(tracker: Tracker) -> Optional[Tuple[str, str]]:
    """(question, entry id) when the bot's reply to the customer's previous message (reactions left
    out, `earlier_turns`) was a knowledge-base answer, else None. The question is what the KB
    searched then (`question_text`)."""
    for event, lookup in earlier_turns(tracker):
        if not (lookup and lookup.get("answered") and lookup.get("entry_id")):
            return None  # no lookup, or that turn's last lookup handed off
        return searched_question(event), lookup["entry_id"]
    return None


def latest_intent(tracker: Tracker) -> Optional[str]:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def latest_user_timestamp(tracker: Tracker) -> Optional[float]:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("timestamp")
    return None
