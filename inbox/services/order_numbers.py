"""Order numbers come from Rasa's NLU; the inbox never looks for them in the text itself.

What an order number looks like is defined once, in nlp/entity_patterns.yml (label `order_number`).
Rasa matches those patterns in every customer message and publishes what it found on the event
stream, in the user event's `parse_data.entities`; the action server's order form writes the number
it settled on to the `order_number` slot (a bare "2840" counts there, because the form asked for it),
and a hand-off carries the numbers the action server saw (`order_numbers`). The inbox only writes an
entity's value in the canonical form "#2840": every pattern matches exactly one run of 3-10 digits
(inbox/tests/test_order_numbers.py reads the patterns to keep this true).

Reading is bounded whatever the event carries: at most MAX_ENTITIES entities, each value cut to
MAX_VALUE_LENGTH characters, one bounded search per value.
"""

from __future__ import annotations

import re
from typing import Any

ORDER_NUMBER_ENTITY = "order_number"
MAX_ENTITIES = 20
MAX_VALUE_LENGTH = 64  # "order number is 2840" and the like; the patterns never match more
_DIGITS = re.compile(r"\d{3,10}")


def canonical_order_number(value: Any) -> str | None:
    """'order no 2840', '#2840', '2840' -> '#2840'; None if the value holds no order number."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    match = _DIGITS.search(str(value)[:MAX_VALUE_LENGTH])
    return f"#{match.group(0)}" if match else None


def order_numbers_in_user_event(data: dict) -> list[str]:
    """The order numbers Rasa's NLU found in one user event, in the order they were written."""
    parse_data = data.get("parse_data")
    entities = parse_data.get("entities") if isinstance(parse_data, dict) else None
    if not isinstance(entities, list):
        return []
    found = []
    for entity in entities[:MAX_ENTITIES]:
        if isinstance(entity, dict) and entity.get("entity") == ORDER_NUMBER_ENTITY:
            number = canonical_order_number(entity.get("value"))
            if number and number not in found:
                found.append(number)
    return found
