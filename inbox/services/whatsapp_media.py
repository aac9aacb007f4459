"""Graph API calls for agents' attachments: upload to `POST /<phone-number-id>/media` (multipart), then
send the message by the returned media id. Errors are the text replies' (services/whatsapp.py)."""

from __future__ import annotations

import httpx

from inbox.services.whatsapp import NOT_SENT_ERRORS, WhatsAppClient, WhatsAppSendError, explain_error


def upload(client: WhatsAppClient, data: bytes, mime: str, filename: str) -> str:
    """Meta's media id of the uploaded file. Every failure is a WhatsAppSendError: nothing reached the
    customer yet, so an upload may always be tried again (an extra upload is only an unused file)."""
    try:
        response = client.http.post(
            f"{client.base_url.rstrip('/')}/{client.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime},
            files={"file": (filename, data, mime)},
            headers={"Authorization": f"Bearer {client.access_token}"},
            timeout=httpx.Timeout(60.0, connect=2.0),
        )
    except (httpx.TransportError, *NOT_SENT_ERRORS) as error:
        raise WhatsAppSendError(
            f"Could not upload the file to WhatsApp ({type(error).__name__}).", retryable=True
        ) from error
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.is_success and isinstance(body, dict) and body.get("id"):
        return str(body["id"])
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    message = (error.get("error_data") or {}).get("details") or error.get("message") or f"HTTP {response.status_code}"
    raise WhatsAppSendError(
        "Upload refused: " + explain_error(code, message),
        code=code,
        retryable=response.status_code >= 500 or response.status_code == 429,
    )


def send_media(
    client: WhatsAppClient,
    *,
    kind: str,
    data: bytes,
    mime: str,
    filename: str | None,
    caption: str | None,
    send_key: str | None,
    to: str | None = None,
    recipient: str | None = None,
) -> str:
    """Uploads, then sends an `image` or `document` message; returns Meta's message id. Raises like
    WhatsAppClient.send_text (WhatsAppSendError / WhatsAppSendUnconfirmed)."""
    if not client.configured:
        raise WhatsAppSendError(
            "WhatsApp sending is not configured (WHATSAPP_PHONE_NUMBER_ID / WHATSAPP_ACCESS_TOKEN)."
        )
    if not (to or recipient):
        raise WhatsAppSendError("The customer has neither a phone number nor a WhatsApp user id to reply to.")
    media_id = client.retrying()(upload, client, data, mime, filename or "attachment")
    content: dict = {"id": media_id}
    if caption:
        content["caption"] = caption
    if kind == "document" and filename:
        content["filename"] = filename
    payload = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    payload |= {"to": to} if to else {"recipient": recipient}
    payload |= {"type": kind, kind: content}
    if send_key:
        payload["biz_opaque_callback_data"] = send_key
    return client.retrying()(client._post_once, payload)
