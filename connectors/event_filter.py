"""Which tracker events the cluster's RabbitMQ event broker publishes: its `publish_only` option.

    event_broker:
      type: connectors.pika_broker.RetryingPikaEventBroker
      publish_only:                           # absent: every event is published (Rasa's behaviour)
        event_kinds: [user, bot, pause, slot]
        slot_names: [order_number, kb_match]  # slot events: only these slots ...
        handoff_slots_from: contracts/handoff.yml   # ... and the hand-off's slots as that contract lists them

Why. Rasa publishes every event of a turn (actions, featurisations, session starts, every slot): a
knowledge-base answer is 7 events, of which the inbox applies 3 (`RasaEventApplier.changes_anything` in
inbox/services/event_stream.py). Each one costs Rasa a serialisation and a publish, RabbitMQ a routing, a write
to disk (persistent) and a delivery, and the inbox's consumer a delivery, a parse and an acknowledgement. With
`publish_only` the others are never published.

What goes through: an event whose kind (`event` field) is in `event_kinds`; a `slot` event only if its `name` is
in `slot_names` or among the `slot:` steps of the contract's `handoff_events` (read from that file at start-up, so
a slot added to the hand-off contract is published without a second edit here). `slot` in `event_kinds` without
either key: every slot. Nothing looks at an event's value or text.

A mistake in the option (not a mapping, an unknown key or event kind, a list that is not a list of names, slot
names without `slot`, a contract that is missing or lists no slot) is a ValueError at start-up naming it.

Lean events. Whatever the filter, a user event's parse data loses the keys only its own turn needs
(`TURN_ONLY_PARSE_DATA_KEYS`: the NLU's `text_embedding`, components/text_embedding.py, about 2.2 kB) before it is
published (connectors/pika_broker.py) or written by the project's tracker store (connectors/postgres_tracker_store.py):
`lean_event`.

Standard library and PyYAML only, no Rasa: the inbox's tests load this file to prove that every event the inbox
applies passes the shipped configuration (inbox/tests/test_broker_filter.py); tests/connector/test_pika_broker.py
checks `RASA_EVENT_KINDS` against Rasa's own event classes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, FrozenSet, Mapping, Optional

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OPTION = "publish_only"
KEYS = ("event_kinds", "slot_names", "handoff_slots_from")
# The `type_name` of every event class of Rasa 3.6 (rasa.shared.core.events), the kinds a broker is given.
RASA_EVENT_KINDS: FrozenSet[str] = frozenset({
    "action", "action_execution_rejected", "active_loop", "agent", "bot", "cancel_reminder", "entities", "export",
    "followup", "form", "form_validation", "loop_interrupted", "pause", "reminder", "reset_slots", "restart",
    "resume", "rewind", "session_started", "slot", "undo", "user", "user_featurization",
})


# Parse-data keys needed within their turn only (the action server reads them from the tracker Rasa sends it), never
# stored or published: components/text_embedding.KEY (tests/components/test_carried_embedding.py checks they agree).
TURN_ONLY_PARSE_DATA_KEYS: FrozenSet[str] = frozenset({"text_embedding"})


def lean_event(event: Dict[str, Any]) -> Dict[str, Any]:
    """`event` without the turn-only keys of its parse data: a copy when it has one (the tracker's own event is
    left alone), else `event` itself."""
    parse_data = event.get("parse_data")
    if not isinstance(parse_data, dict) or TURN_ONLY_PARSE_DATA_KEYS.isdisjoint(parse_data):
        return event
    lean = dict(event)
    lean["parse_data"] = {key: value for key, value in parse_data.items() if key not in TURN_ONLY_PARSE_DATA_KEYS}
    return lean


class EventFilter:
    """The events a broker publishes; `lets_through` is all a broker calls, once per event."""

    __slots__ = ("kinds", "slot_names")

    def __init__(self, kinds: FrozenSet[str], slot_names: Optional[FrozenSet[str]]) -> None:
        self.kinds = kinds
        self.slot_names = slot_names  # None: every slot (when `slot` is a kind)

    def lets_through(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event")
        if kind not in self.kinds:
            return False
        return kind != "slot" or self.slot_names is None or event.get("name") in self.slot_names

    def describe(self) -> str:
        """For the start-up log line: kinds and slot names, no customer data."""
        kinds = ", ".join(sorted(self.kinds))
        if "slot" not in self.kinds or self.slot_names is None:
            return kinds
        return f"{kinds} (slots: {', '.join(sorted(self.slot_names))})"


def _names(value: Any, key: str) -> FrozenSet[str]:
    if not isinstance(value, list) or not value or not all(isinstance(name, str) and name for name in value):
        raise ValueError(f"event broker `{OPTION}.{key}` must be a non-empty list of names, not {value!r}")
    return frozenset(value)


def contract_slots(path: Path) -> FrozenSet[str]:
    """The `slot:` steps of a hand-off contract's `handoff_events` (contracts/handoff.yml)."""
    try:
        contract = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"event broker `{OPTION}.handoff_slots_from`: cannot read {path}: {error}") from error
    steps = contract.get("handoff_events") if isinstance(contract, dict) else None
    slots = frozenset(step["slot"] for step in steps or ()
                      if isinstance(step, dict) and isinstance(step.get("slot"), str))
    if not slots:
        raise ValueError(f"event broker `{OPTION}.handoff_slots_from`: {path} lists no `slot:` in `handoff_events`")
    return slots


def event_filter(config: Any, root: Path = PROJECT_ROOT) -> Optional[EventFilter]:
    """The filter of a `publish_only` option; None when the option is absent (every event is published).
    `handoff_slots_from` is relative to `root` (the project) unless absolute."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise ValueError(f"event broker `{OPTION}` must be a mapping with {', '.join(KEYS)}, not {config!r}")
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise ValueError(f"event broker `{OPTION}`: unknown key(s) {', '.join(map(str, unknown))} "
                         f"(known: {', '.join(KEYS)})")
    if "event_kinds" not in config:
        raise ValueError(f"event broker `{OPTION}` needs `event_kinds` (e.g. [user, bot, pause, slot])")
    kinds = _names(config["event_kinds"], "event_kinds")
    strange = sorted(kinds - RASA_EVENT_KINDS)
    if strange:
        raise ValueError(f"event broker `{OPTION}.event_kinds`: unknown event kind(s) {', '.join(strange)} "
                         f"(Rasa's: {', '.join(sorted(RASA_EVENT_KINDS))})")
    slot_names: Optional[FrozenSet[str]] = None
    if "slot_names" in config or "handoff_slots_from" in config:
        if "slot" not in kinds:
            raise ValueError(f"event broker `{OPTION}`: slot names are given but `slot` is not in `event_kinds`")
        slot_names = _names(config["slot_names"], "slot_names") if "slot_names" in config else frozenset()
        source = config.get("handoff_slots_from")
        if source is not None:
            if not isinstance(source, str) or not source:
                raise ValueError(f"event broker `{OPTION}.handoff_slots_from` must be a file path, not {source!r}")
            slot_names |= contract_slots(root / source)
    return EventFilter(kinds, slot_names)
