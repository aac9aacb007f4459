"""The connector's Graph API client: the project's one WhatsApp Cloud API client (`whatsapp_cloud`,
asynchronous shell), with the connector's attempts, first pause and timeout (`WHATSAPP_SEND_*`).

What is retried is contracts/graph_api.yml: HTTP 429, 5xx, Meta's throttling codes, and a connection
never made. A timeout or a connection dropped after the request went out is not: the message may have
been sent (`SendResult.uncertain`, see connectors/send_keys.py). Everything else (131047 outside the
24-hour window, invalid parameters, ...) is returned at once as a `MetaError`."""

from __future__ import annotations

import logging

from whatsapp_cloud import OUTSIDE_SERVICE_WINDOW, AsyncWhatsAppClient, MetaError, SendResult
from whatsapp_cloud import RETRYABLE_HTTP_STATUSES as RETRIABLE_HTTP_STATUSES

from connectors.privacy import mask_user_id
from connectors.settings import WhatsAppSettings

# httpx logs every request at INFO (with the phone number id in the URL); the client logs what matters.
# Same as the inbox (inbox/__main__.py).
logging.getLogger("httpx").setLevel(logging.WARNING)

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
