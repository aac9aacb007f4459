"""Sends agent replies through the WhatsApp Cloud API (or the local sandbox, which speaks the same API)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

# Plain-language explanations of the Cloud API errors agents meet most often.
KNOWN_ERRORS = {
    131047: "The 24-hour window has closed: the customer has to message us first (or we send an approved template).",
    131026: "The message could not be delivered (the number may not be on WhatsApp, or the customer blocked us).",
    131051: "WhatsApp does not support this message type.",
    131056: "Too many messages to this customer in a short time; wait a moment and retry.",
    130429: "The business number hit its rate limit; retry in a minute.",
    131000: "WhatsApp had an internal error; retry.",
    131030: "This number is not on the allowed test-recipient list of the business account.",
    190: "The WhatsApp access token has expired or is invalid (WHATSAPP_ACCESS_TOKEN).",
    100: "WhatsApp rejected the request as invalid.",
}


def explain_error(code: int | None, message: str | None) -> str:
    explanation = KNOWN_ERRORS.get(code or -1)
    detail = message or "unknown error"
    if explanation:
        return f"{explanation} (Meta error {code}: {detail})"
    return f"Meta error {code}: {detail}" if code else detail


class WhatsAppSendError(Exception):
    def __init__(self, reason: str, code: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class _RetryableResponse(Exception):
    def __init__(self, response: httpx.Response):
        self.response = response


@dataclass
class WhatsAppClient:
    base_url: str
    phone_number_id: str | None
    access_token: str | None
    http: httpx.Client

    @property
    def configured(self) -> bool:
        return bool(self.phone_number_id and self.access_token)

    def send_text(self, to: str, body: str) -> str:
        """Returns Meta's message id (`wamid...`); raises WhatsAppSendError with a reason an agent can act on."""
        if not self.configured:
            raise WhatsAppSendError(
                "WhatsApp sending is not configured (WHATSAPP_PHONE_NUMBER_ID / WHATSAPP_ACCESS_TOKEN)."
            )
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": False, "body": body},
        }
        try:
            response = self._post(payload)
        except _RetryableResponse as exhausted:
            response = exhausted.response
        except httpx.TransportError as error:
            raise WhatsAppSendError(f"Could not reach the WhatsApp API at {self.base_url}: {error}") from error
        return self._message_id(response)

    @retry(
        retry=retry_if_exception(lambda error: isinstance(error, (httpx.TransportError, _RetryableResponse))),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.25, max=2),
        reraise=True,
    )
    def _post(self, payload: dict) -> httpx.Response:
        response = self.http.post(
            f"{self.base_url.rstrip('/')}/{self.phone_number_id}/messages",
            json=payload,
            headers={"Authorization": f"Bearer {self.access_token}"},
        )
        if response.status_code >= 500:
            raise _RetryableResponse(response)
        return response

    @staticmethod
    def _message_id(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.is_success:
            try:
                return body["messages"][0]["id"]
            except (KeyError, IndexError, TypeError):
                raise WhatsAppSendError(
                    f"The WhatsApp API answered {response.status_code} without a message id."
                ) from None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code")
            message = (error.get("error_data") or {}).get("details") or error.get("message")
            raise WhatsAppSendError(explain_error(code, message), code=code)
        raise WhatsAppSendError(f"The WhatsApp API answered HTTP {response.status_code}.")
