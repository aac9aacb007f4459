"""The project's one WhatsApp Cloud API (Graph API) client.

`core` builds the payloads, reads Meta's answers and decides what is tried again (the policy is
contracts/graph_api.yml); `WhatsAppClient` (httpx.Client + tenacity) and `AsyncWhatsAppClient`
(httpx.AsyncClient + tenacity) are thin shells over it. Each caller brings its attempts, pauses,
timeouts and sleep: the connector (bot replies, inside Rasa) and the inbox (agent replies)."""

from whatsapp_cloud.async_client import AsyncWhatsAppClient
from whatsapp_cloud.core import (
    BSUID_NOT_SUPPORTED,
    KNOWN_ERRORS,
    NOT_SENT_ERRORS,
    OUTSIDE_SERVICE_WINDOW,
    RETRY_POLICY,
    RETRYABLE_HTTP_STATUSES,
    RETRYABLE_META_CODES,
    SEND_KEY_FIELD,
    MetaError,
    SendResult,
    WhatsAppSendError,
    WhatsAppSendUnconfirmed,
    explain_error,
    message_payload,
    read_payload,
)
from whatsapp_cloud.sync_client import WhatsAppClient

__all__ = [
    "AsyncWhatsAppClient",
    "BSUID_NOT_SUPPORTED",
    "KNOWN_ERRORS",
    "NOT_SENT_ERRORS",
    "OUTSIDE_SERVICE_WINDOW",
    "RETRY_POLICY",
    "RETRYABLE_HTTP_STATUSES",
    "RETRYABLE_META_CODES",
    "SEND_KEY_FIELD",
    "MetaError",
    "SendResult",
    "WhatsAppClient",
    "WhatsAppSendError",
    "WhatsAppSendUnconfirmed",
    "explain_error",
    "message_payload",
    "read_payload",
]
