"""Customer data out of Rasa's event-broker log lines.

While RabbitMQ is down, Rasa's `pika` broker logs every event it could not publish at ERROR, with
the event itself: the customer's number (`sender_id`, `metadata.whatsapp.wa_id`) and what they wrote
(`text`). Those lines are Rasa's, not the connector's, so `connectors/privacy.py`'s masking does
not reach them. This filter rewrites them at INFO and above: the event is reduced to its kind,
timestamp and masked sender (`+91 98•••••210`), enough to count what was lost and for whom. DEBUG
lines keep the full event, as everywhere in the connector.

Installed when the WhatsApp channel is created (connectors/whatsapp.py), so it holds however Rasa is
started (deploy/rasa_run.py, connectors/rasa_start.py, plain `rasa run`) and with whatever
`--logging-config-file`: a filter on the broker's own logger, not on a handler.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict

from connectors.privacy import mask_user_id

# Rasa's broker modules that log whole events (structlog, rendered through these stdlib loggers).
BROKER_LOGGERS = ("rasa.core.brokers.pika", "rasa.core.brokers.kafka")
EVENT_KEYS = ("rasa_event", "rasa_events")


def event_summary(event: Any) -> Any:
    """What of an event may be logged: its kind, time and masked sender."""
    if isinstance(event, list):
        return [event_summary(item) for item in event]
    if not isinstance(event, dict):
        return "(hidden)"
    return {"event": event.get("event"), "timestamp": event.get("timestamp"),
            "sender_id": mask_user_id(event.get("sender_id"))}


class BrokerEventMask(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return True
        message = record.getMessage()
        if not any(key in message for key in EVENT_KEYS):
            return True
        try:
            fields: Dict[str, Any] = json.loads(message)  # Rasa's JSON renderer (no terminal)
        except ValueError:
            fields = {}
        if isinstance(fields, dict) and any(key in fields for key in EVENT_KEYS):
            for key in EVENT_KEYS:
                if key in fields:
                    fields[key] = event_summary(fields[key])
            record.msg = json.dumps(fields, ensure_ascii=False)
        else:  # Rasa's console renderer (a terminal): no safe way to cut the event out of the text
            record.msg = f"{record.levelname.lower()} about an event (details hidden: customer data; DEBUG shows them)"
        record.args = ()
        return True


_MASK = BrokerEventMask()


def install() -> None:
    """Idempotent: Rasa may create the channel more than once."""
    for name in BROKER_LOGGERS:
        logger = logging.getLogger(name)
        if _MASK not in logger.filters:
            logger.addFilter(_MASK)
