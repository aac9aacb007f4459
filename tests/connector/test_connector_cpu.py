"""Session 14's cuts of the connector's CPU per message keep what the connector does (issue 16).

- The Graph API client's httpx/httpcore no longer searches `sys.path` for the missing optional `sniffio` on every
  lock, event and shield it makes (connectors/graph_api.py): the import fails as before, at once.
- A status webhook is resolved and persisted in one trip to the store's thread, and its send key is not
  looked at there when this process already knows it `sent` (connectors/service.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any, List

import pytest

import connectors.graph_api as graph_api
from connectors.inbound import parse_webhook
from connectors.send_keys import CALLBACK_FIELD
from connectors.service import WhatsAppService
from connectors.settings import WhatsAppSettings
from connectors.store import SEND_SENDING, SEND_SENT
from tests.connector.support import change, encode, new_message_id, new_wa_id, text_message, webhook


def test_a_missing_sniffio_is_remembered_and_httpcore_still_says_asyncio():
    if importlib.util.find_spec("sniffio") is not None or sys.modules.get("sniffio") is not None:
        pytest.skip("sniffio is installed here: nothing to remember")
    assert sys.modules["sniffio"] is None  # set when connectors.graph_api was imported
    with pytest.raises(ModuleNotFoundError):
        import sniffio  # noqa: F401
    from httpcore._synchronization import current_async_library

    async def library() -> str:
        return current_async_library()

    assert asyncio.run(library()) == "asyncio"


def test_an_installed_sniffio_is_left_alone(monkeypatch):
    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object() if name == "sniffio" else None)
    assert graph_api.remember_that_sniffio_is_missing() is False
    assert "sniffio" not in sys.modules


class CountingService(WhatsAppService):
    """The service with its store's trips to the thread counted."""

    def __init__(self, store_path: Path) -> None:
        super().__init__(WhatsAppSettings.from_env({
            "WHATSAPP_VERIFY_TOKEN": "v", "WHATSAPP_APP_SECRET": "s", "WHATSAPP_ACCESS_TOKEN": "a",
            "WHATSAPP_PHONE_NUMBER_ID": "123", "WHATSAPP_STORE_URL": f"sqlite:///{store_path}",
        }))
        self.prepare()
        self.trips: List[str] = []
        run = self.store.run

        async def counted(method: Any, *args: Any, **kwargs: Any) -> Any:
            self.trips.append(getattr(method, "__name__", repr(method)))
            return await run(method, *args, **kwargs)

        self.store.run = counted  # type: ignore[method-assign]


def status_webhook(wamid: str, customer: str, status: str, key: str) -> bytes:
    return encode(webhook(change(statuses=[{
        "id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": customer,
        CALLBACK_FIELD: key,
    }])))


@pytest.mark.asyncio
async def test_a_status_webhook_takes_one_store_trip_when_its_key_is_known_sent(tmp_path):
    service = CountingService(tmp_path / "wa.db")
    customer = new_wa_id()
    try:
        # A message webhook: one trip (resolve + persist), the message stored.
        outcome = await service.accept(parse_webhook(encode(webhook(change([text_message(customer, "hi")])))))
        assert len(outcome.new_messages) == 1 and service.trips == ["_resolve_and_persist"]

        # The bot's reply went out and was settled `sent` by this process (what KeyedSender does).
        key, wamid = f"{new_message_id()}:0", "wamid.OUT" + new_message_id()[-10:]
        assert service.store.claim_send_key(key, customer, 60.0) is None
        service.store.settle_send_key(key, wamid, uncertain=False)
        service.trips.clear()
        for status in ("sent", "delivered", "read"):
            outcome = await service.accept(parse_webhook(status_webhook(wamid, customer, status, key)))
            assert outcome.new_statuses == 1
        assert service.trips == ["_resolve_and_persist"] * 3
        assert service.store.send_key_state(key) == SEND_SENT
    finally:
        await service.stop()


@pytest.mark.asyncio
async def test_a_status_echoing_a_key_not_known_sent_still_settles_it(tmp_path):
    """A send whose answer never came (timeout, crash) stays `sending`; Meta's status settles it."""
    service = CountingService(tmp_path / "wa.db")
    customer = new_wa_id()
    try:
        key, wamid = f"{new_message_id()}:0", "wamid.OUT" + new_message_id()[-10:]
        assert service.store.claim_send_key(key, customer, 60.0) is None
        assert service.store.send_key_state(key) == SEND_SENDING
        await service.accept(parse_webhook(status_webhook(wamid, customer, "sent", key)))
        assert service.trips == ["_resolve_and_persist", "settle_send_keys_from_statuses"]
        assert service.store.send_key_state(key) == SEND_SENT
        service.trips.clear()
        await service.accept(parse_webhook(status_webhook(wamid, customer, "delivered", key)))
        assert service.trips == ["_resolve_and_persist"]  # now known: no second look
    finally:
        await service.stop()
