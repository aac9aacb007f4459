"""Order numbers in the inbox come from Rasa's NLU (nlp/entity_patterns.yml), not from the inbox
reading the text (issue 14 item 3): one definition of what an order number looks like."""

from __future__ import annotations

import re

import yaml

from inbox.services.order_numbers import canonical_order_number, order_numbers_in_user_event
from inbox.settings import REPO_ROOT
from inbox.tests.test_event_stream import T0, consume, transcript

PATTERNS = yaml.safe_load((REPO_ROOT / "nlp" / "entity_patterns.yml").read_text(encoding="utf-8"))["order_number"]
SENDER = "919876543210"


def _digits_in(token: dict) -> str:
    """How a token pattern admits digits: 'order number' (3-10 digits), 'none', or what else it does."""
    lower = token.get("LOWER")
    if token.get("IS_DIGIT"):
        length = token.get("LENGTH") or {}
        return "order number" if length == {">=": 3, "<=": 10} else f"digits of length {length}"
    if isinstance(lower, dict) and "REGEX" in lower:
        return "order number" if re.search(r"\[0-9\]\{3,10\}\$$", lower["REGEX"]) else f"regex {lower['REGEX']}"
    if "ORTH" in token:
        words = [token["ORTH"]]
    else:
        words = lower["IN"] if isinstance(lower, dict) else [lower]
    return "none" if not any(re.search(r"\d", str(word)) for word in words) else f"words with digits {words}"


def test_each_nlu_pattern_matches_exactly_one_run_of_3_to_10_digits():
    # What canonical_order_number relies on: the digits of a matched span are the order number.
    for pattern in PATTERNS:
        kinds = [_digits_in(token) for token in pattern]
        assert kinds.count("order number") == 1 and set(kinds) <= {"order number", "none"}, (pattern, kinds)


def test_entity_values_are_written_as_hash_and_digits():
    spans = {
        "#2840": "#2840",
        "order no. 48213": "#48213",
        "order id: 123456": "#123456",
        "order#2840": "#2840",
        "Order Number 77120": "#77120",
        "2840": "#2840",
    }
    assert {span: canonical_order_number(span) for span in spans} == spans
    assert [canonical_order_number(value) for value in ("order", "#12", None, True, {"x": 2840})] == [None] * 5


def test_only_order_number_entities_count_in_the_order_written_without_repeats():
    event = {
        "parse_data": {
            "entities": [
                {"entity": "order_number", "value": "#2840"},
                {"entity": "size", "value": "XL"},
                {"entity": "order_number", "value": "order no 1234"},
                {"entity": "order_number", "value": "# 2840"},
            ]
        }
    }
    assert order_numbers_in_user_event(event) == ["#2840", "#1234"]
    assert order_numbers_in_user_event({"parse_data": {"entities": "#2840"}}) == []
    assert order_numbers_in_user_event({}) == []


def test_the_conversation_keeps_the_numbers_the_nlu_found_and_the_order_forms_answer(inbox, broker):
    broker.user(
        SENDER, "Where is my order #2840 and order no. 1234?", T0, order_numbers=("order #2840", "order no. 1234")
    )
    broker.user(SENDER, "I paid 4999 for it", T0.replace(second=10))  # no entity: a price is not an order
    broker.user(SENDER, "5678", T0.replace(second=20))  # the form asked; the action server filled the slot
    broker.slot(SENDER, "order_number", "#5678", T0.replace(second=21))
    consume(inbox, broker)
    conversation, _ = transcript(inbox, SENDER)
    assert conversation.order_numbers == ["#2840", "#1234", "#5678"]
