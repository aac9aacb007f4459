"""The connector's Graph API client: the project's one WhatsApp Cloud API client (`whatsapp_cloud`,
asynchronous shell), with the connector's attempts, first pause and timeout (`WHATSAPP_SEND_*`).

What is retried is contracts/graph_api.yml: HTTP 429, 5xx, Meta's throttling codes, and a connection
never made. A timeout or a connection dropped after the request went out is not: the message may have
been sent (`SendResult.uncertain`, see connectors/send_keys.py). Everything else (131047 outside the
24-hour window, invalid parameters, ...) is returned at once as a `MetaError`."""

from __future__ import annotations

import importlib.util
import logging
import sys

from whatsapp_cloud import OUTSIDE_SERVICE_WINDOW, AsyncWhatsAppClient, MetaError, SendResult
from whatsapp_cloud import RETRYABLE_HTTP_STATUSES as RETRIABLE_HTTP_STATUSES

from connectors.privacy import mask_user_id
from connectors.settings import WhatsAppSettings

# httpx logs every request at INFO (with the phone number id in the URL); the client logs what matters.
# Same as the inbox (inbox/__main__.py).
logging.getLogger("httpx").setLevel(logging.WARNING)


def remember_that_sniffio_is_missing() -> bool:
    """httpcore (under httpx) runs `import sniffio` for every lock, event and cancellation shield it makes,
    several per request, to tell asyncio from trio. sniffio is optional and not installed in this venv, and a
    failed import searches every `sys.path` entry again each time: ~0.3 ms of CPU per Graph API request, about
    3 % of a Rasa instance's time under WhatsApp load (bench/README_cluster.md, session 14). `None` in
    `sys.modules` makes the same import fail at once with the same `ModuleNotFoundError`, so httpcore's answer
    (asyncio) does not change. Nothing is done when sniffio is installed. Returns whether it was missing."""
    if "sniffio" in sys.modules:
        return sys.modules["sniffio"] is None
    if importlib.util.find_spec("sniffio") is not None:
        return False
    sys.modules["sniffio"] = None  # type: ignore[assignment]
    return True


remember_that_sniffio_is_missing()

__all__ = ["GraphApiClient", "MetaError", "OUTSIDE_SERVICE_WINDOW", "RETRIABLE_HTTP_STATUSES", "SendResult"]


class GraphApiClient(AsyncWhatsAppClient):
    def __init__(self, settings: WhatsAppSettings) -> None:
        super().__init__(
            base_url=settings.api_base_url,
            phone_number_id=settings.phone_number_id,
            access_token=settings.access_token,
            attempts=settings.send_attempts,
            backoff_seconds=settings.send_backoff_seconds,  # then doubling, at most 30 s
            max_backoff_seconds=30.0,
            timeout_seconds=settings.send_timeout_seconds,
            mask=mask_user_id,
        )
