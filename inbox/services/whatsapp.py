"""Sends agent replies through the WhatsApp Cloud API (or the local sandbox, which speaks the same API)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

# Plain-language explanations of the Cloud API errors agents meet most often.
KNOWN_ERRORS = {
    131047: "The 24-hour window has closed: the customer has to message us first (or we send an approved template).",
    132000: "The template's parameters do not match the approved template (check inbox/config/templates.yml).",
    132001: "WhatsApp does not know this template in this language (check inbox/config/templates.yml).",
    131026: "The message could not be delivered (the number may not be on WhatsApp, or the customer blocked us).",
    131051: "WhatsApp does not support this message type.",
    131056: "Too many messages to this customer in a short time; wait a moment and retry.",
    130429: "The business number hit its rate limit; retry in a minute.",
    131000: "WhatsApp had an internal error; retry.",
    131016: "WhatsApp is temporarily unavailable; retry.",
    131062: "WhatsApp cannot deliver this kind of message to a customer known only by their user id (no phone number).",
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


# What is retried is the retry policy both senders share (contracts/graph_api.yml): 429, 5xx, and Meta
# errors that say the message was not sent and a later attempt may succeed.
_POLICY_FILE = Path(__file__).resolve().parents[2] / "contracts" / "graph_api.yml"
_RETRY_POLICY = yaml.safe_load(_POLICY_FILE.read_text(encoding="utf-8"))["retry"]
RETRYABLE_HTTP_STATUSES = frozenset(_RETRY_POLICY["http_statuses"])
RETRYABLE_ERROR_CODES = frozenset(_RETRY_POLICY["meta_error_codes"])
# Transport errors raised before the request left this machine: resending cannot double-send.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class WhatsAppSendError(Exception):
    """Meta refused the message, or the request certainly did not reach it. `retryable`: a later
    attempt may succeed (rate limits, 5xx, no connection)."""

    def __init__(self, reason: str, code: int | None = None, *, retryable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retryable = retryable


class WhatsAppSendUnconfirmed(Exception):
    """The request may have reached Meta (e.g. a read timeout): sending it again could give the customer
    the message twice. Only a status webhook carrying our send key can tell."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class WhatsAppClient:
    base_url: str
    phone_number_id: str | None
    access_token: str | None
    http: httpx.Client
    sleep: Callable[[float], None] = time.sleep  # tests pass a no-op: no wall-clock waits
    attempts: int = 3  # quick attempts per send for errors that certainly did not send

    @property
    def configured(self) -> bool:
        return bool(self.phone_number_id and self.access_token)

    def send_text(
        self, body: str, *, to: str | None = None, recipient: str | None = None, send_key: str | None = None
    ) -> str:
        """Sends to a phone (`to`, digits) or, for customers WhatsApp knows only by their business-scoped
        user id, to that id (`recipient`). `send_key` (ours, one per reply) travels as
        `biz_opaque_callback_data` and comes back in the status webhooks.

        Returns Meta's message id (`wamid...`). Raises WhatsAppSendError (not sent; `retryable` says
        whether to try later) or WhatsAppSendUnconfirmed (maybe sent: never POST it again blindly)."""
        content = {"type": "text", "text": {"preview_url": False, "body": body}}
        return self._send(content, to=to, recipient=recipient, send_key=send_key)

    def send_template(
        self, template: dict, *, to: str | None = None, recipient: str | None = None, send_key: str | None = None
    ) -> str:
        """An approved template (`template`: the Cloud API object with name, language, components);
        the only message WhatsApp delivers once the customer's 24-hour window has closed."""
        return self._send({"type": "template", "template": template}, to=to, recipient=recipient, send_key=send_key)

    def send_interactive(
        self, interactive: dict, *, to: str | None = None, recipient: str | None = None, send_key: str | None = None
    ) -> str:
        """An `interactive` object (e.g. reply buttons: type `button`, body, action.buttons)."""
        content = {"type": "interactive", "interactive": interactive}
        return self._send(content, to=to, recipient=recipient, send_key=send_key)

    def mark_read(self, message_id: str, *, typing: bool = False) -> None:
        """Blue ticks for the customer's message `message_id` (and the earlier ones); `typing` also shows
        "typing…" (up to 25 s or until our reply). Tried once: a missed tick is not worth a retry."""
        if not self.configured:
            raise WhatsAppSendError("WhatsApp sending is not configured.")
        payload = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        if typing:
            payload["typing_indicator"] = {"type": "text"}
        try:
            response = self.http.post(self._messages_url, json=payload, headers=self._headers)
        except httpx.TransportError as error:
            raise WhatsAppSendError(f"Could not reach the WhatsApp API ({type(error).__name__}).") from error
        if not response.is_success:
            self._message_id(response)  # raises WhatsAppSendError with Meta's reason

    @property
    def _messages_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.phone_number_id}/messages"

    @property
    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.access_token}"}

    def _send(self, content: dict, *, to: str | None, recipient: str | None, send_key: str | None) -> str:
        if not self.configured:
            raise WhatsAppSendError(
                "WhatsApp sending is not configured (WHATSAPP_PHONE_NUMBER_ID / WHATSAPP_ACCESS_TOKEN)."
            )
        if not (to or recipient):
            raise WhatsAppSendError("The customer has neither a phone number nor a WhatsApp user id to reply to.")
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        # `to` wins when both are given (Meta's rule), so only one is sent.
        payload |= {"to": to} if to else {"recipient": recipient}
        payload |= content
        if send_key:
            payload["biz_opaque_callback_data"] = send_key
        return self.retrying()(self._post_once, payload)

    def retrying(self) -> Retrying:
        """The quick in-request retries of one Graph call: only failures that certainly did not send."""
        return Retrying(
            retry=retry_if_exception(lambda error: isinstance(error, WhatsAppSendError) and error.retryable),
            stop=stop_after_attempt(max(1, self.attempts)),
            wait=wait_exponential(multiplier=0.25, max=2),
            sleep=self.sleep,
            reraise=True,
        )

    def _post_once(self, payload: dict) -> str:
        try:
            response = self.http.post(self._messages_url, json=payload, headers=self._headers)
        except NOT_SENT_ERRORS as error:
            raise WhatsAppSendError(
                f"Could not reach the WhatsApp API at {self.base_url} ({type(error).__name__}).", retryable=True
            ) from error
        except httpx.TransportError as error:
            # Timed out or cut off after the request was written: Meta may have sent it.
            raise WhatsAppSendUnconfirmed(
                f"The WhatsApp API did not answer ({type(error).__name__}); the reply may or may not have been sent."
            ) from error
        return self._message_id(response)

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
        retryable = response.status_code >= 500 or response.status_code in RETRYABLE_HTTP_STATUSES
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), int) else None
            message = (error.get("error_data") or {}).get("details") or error.get("message")
            raise WhatsAppSendError(
                explain_error(code, message), code=code, retryable=retryable or code in RETRYABLE_ERROR_CODES
            )
        raise WhatsAppSendError(f"The WhatsApp API answered HTTP {response.status_code}.", retryable=retryable)
