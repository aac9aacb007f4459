"""Agents' attachments: upload to `POST /<phone-number-id>/media`, then send the message by the returned
media id (WhatsAppClient.send_media, the one client's; errors are the text replies')."""

from __future__ import annotations

from inbox.services.whatsapp import WhatsAppClient


def send_media(client: WhatsAppClient, **message) -> str:
    """kind, data, mime, filename, caption, send_key, to/recipient; returns Meta's message id."""
    return client.send_media(**message)
