"""Agent replies go through the project's one WhatsApp Cloud API client (`whatsapp_cloud`, synchronous
shell; the bot's replies use its asynchronous one). The inbox brings its own attempts, pauses and
sleep (inbox/context.py); what is retried is contracts/graph_api.yml."""

from whatsapp_cloud import (
    KNOWN_ERRORS,
    NOT_SENT_ERRORS,
    WhatsAppClient,
    WhatsAppSendError,
    WhatsAppSendUnconfirmed,
    explain_error,
)

__all__ = [
    "KNOWN_ERRORS",
    "NOT_SENT_ERRORS",
    "WhatsAppClient",
    "WhatsAppSendError",
    "WhatsAppSendUnconfirmed",
    "explain_error",
]
