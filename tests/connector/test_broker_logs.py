"""While RabbitMQ is down, Rasa's pika event broker logs each event it could not publish at ERROR. With the
WhatsApp channel loaded, that line carries neither the customer's number nor what they wrote
(connectors/broker_logs.py); Rasa's DEBUG lines still have the whole event."""

from __future__ import annotations

import json
import logging

import pytest
import rasa.shared.core.events  # noqa: F401  (pika.py reaches it as an attribute of rasa.shared)
from rasa.core.brokers.pika import PikaEventBroker
from rasa.utils.log_utils import configure_structlog

from connectors.whatsapp import WhatsAppInput

pytestmark = pytest.mark.asyncio

PHONE = "919812345210"
TEXT = "my card ends 4111 and I live at 12 MG Road"


class RabbitMQDown:
    async def publish(self, *_args, **_kwargs):
        raise ConnectionError("Connection refused")


def event() -> dict:
    return {"sender_id": PHONE, "event": "user", "text": TEXT, "timestamp": 1764600000.5,
            "metadata": {"whatsapp": {"wa_id": PHONE, "profile_name": "Asha"}},
            "parse_data": {"text": TEXT}}


async def publish(caplog, level: int, exchange) -> list[str]:
    configure_structlog(level)  # what `rasa run` does: structlog rendered as JSON through stdlib logging
    broker = PikaEventBroker(host="127.0.0.1", username="kesar", password="secret", queues=["kesar_inbox_events"])
    broker._exchange = exchange
    caplog.clear()
    with caplog.at_level(level, logger="rasa.core.brokers.pika"):
        await broker._publish(event())
    return [record.getMessage() for record in caplog.records if record.name == "rasa.core.brokers.pika"]


@pytest.fixture
def whatsapp_channel(monkeypatch, tmp_path):
    for name, value in {"WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_APP_SECRET": "s", "WHATSAPP_ACCESS_TOKEN": "t",
                        "WHATSAPP_PHONE_NUMBER_ID": "1", "WHATSAPP_STORE_URL": f"sqlite:///{tmp_path}/wa.db"}.items():
        monkeypatch.setenv(name, value)
    return WhatsAppInput.from_credentials(None)


async def test_a_failed_event_is_logged_without_the_customers_number_or_text(whatsapp_channel, caplog):
    [line] = await publish(caplog, logging.INFO, RabbitMQDown())  # connected once, then RabbitMQ went away

    assert PHONE not in line and "9812345210" not in line
    assert "4111" not in line and "MG Road" not in line and "Asha" not in line
    logged = json.loads(line)
    assert logged["event"] == "pika.events.publish.failed" and logged["level"] == "error"
    # Still says what was lost and for whom, as the connector's own lines do.
    assert logged["rasa_event"] == {"event": "user", "timestamp": 1764600000.5, "sender_id": "+91 98•••••210"}


async def test_debug_lines_keep_the_whole_event_for_an_operator_chasing_one_conversation(whatsapp_channel, caplog):
    [failed] = await publish(caplog, logging.DEBUG, RabbitMQDown())
    with caplog.at_level(logging.DEBUG, logger="rasa.core.brokers.pika"):
        logging.getLogger("rasa.core.brokers.pika").debug(json.dumps({"rasa_event": event()}))

    assert TEXT not in failed and PHONE not in failed  # the ERROR line, even with DEBUG on
    assert TEXT in caplog.records[-1].getMessage() and PHONE in caplog.records[-1].getMessage()
