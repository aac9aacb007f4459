"""What both clients share, with no I/O: the payloads, reading Meta's answers, and which failures are
tried again (contracts/graph_api.yml, linked here as graph_api.yml).

A send ends in one of four ways, each a `SendResult`:

- sent: Meta answered with a message id (`wamid`);
- refused: Meta answered with an error (`error.code`, e.g. 131047 outside the 24-hour window);
  `retryable` when the policy says a later attempt may succeed (429, 5xx, throttling codes);
- not sent: the connection was never made (connect error or timeout, no free connection): nothing
  reached Meta, so it is `retryable`;
- unconfirmed (`uncertain`): the request may have reached Meta but no answer came back (read
  timeout, connection dropped). Meta has no idempotency key, so it is never sent again blindly.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from tenacity import retry_if_exception, retry_if_result, stop_after_attempt, wait_exponential

logger = logging.getLogger("whatsapp_cloud")

# --- the retry policy ------------------------------------------------------------------------------

POLICY_FILE = Path(__file__).resolve().parent / "graph_api.yml"
RETRY_POLICY: dict[str, Any] = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))["retry"]
RETRYABLE_HTTP_STATUSES = frozenset(RETRY_POLICY["http_statuses"])
RETRY_ALL_5XX = bool(RETRY_POLICY["all_5xx"])
RETRYABLE_META_CODES = frozenset(RETRY_POLICY["meta_error_codes"])
if RETRY_POLICY["transport"] != "connection_not_made":
    raise ValueError(f"{POLICY_FILE}: retry.transport must be connection_not_made")
# Transport errors raised before the request left this machine: sending again cannot double-send.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

OUTSIDE_SERVICE_WINDOW = 131047  # the customer's last message is more than 24 hours old
BSUID_NOT_SUPPORTED = 131062  # this message type cannot go to a business-scoped user id
SEND_KEY_FIELD = "biz_opaque_callback_data"  # ours, at most 512 characters, echoed in status webhooks


def retryable_answer(http_status: int, code: int | None) -> bool:
    """Whether an error answer of Meta means "not sent, a later attempt may succeed"."""
    return (
        http_status in RETRYABLE_HTTP_STATUSES or (RETRY_ALL_5XX and http_status >= 500) or code in RETRYABLE_META_CODES
    )


# --- Meta's errors, in words an agent understands ------------------------------------------------

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


_CODE_PREFIX = re.compile(r"^\(#\d+\)\s*")


@dataclass(frozen=True)
class MetaError:
    code: int | None
    title: str
    details: str | None = None

    @classmethod
    def from_response(cls, http_status: int, body: Any) -> MetaError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(code=None, title=f"HTTP {http_status}", details=str(body)[:500] if body else None)
        code = error.get("code")
        message = str(error.get("message") or f"HTTP {http_status}")
        error_data = error.get("error_data")
        details = error_data.get("details") if isinstance(error_data, dict) else None
        return cls(code=code if isinstance(code, int) else None, title=_CODE_PREFIX.sub("", message), details=details)

    @property
    def retryable(self) -> bool:
        """Meta's code alone says a later attempt may succeed (the HTTP status may say so too)."""
        return self.code in RETRYABLE_META_CODES

    retriable = retryable


# --- the outcome of one send ---------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    wamid: str | None
    http_status: int | None
    error: MetaError | None
    attempts: int
    # The request may have reached Meta but no answer came back: the customer may have the message.
    uncertain: bool = False
    retryable: bool = False  # not sent, and a later attempt may succeed
    reason: str = ""  # what happened, for a person (an agent, a log)

    @property
    def ok(self) -> bool:
        return self.wamid is not None


def answer_result(http_status: int, body: Any, attempts: int) -> SendResult:
    """Meta's answer to one POST of a message (or a mark-read, whose success carries no id)."""
    if 200 <= http_status < 300:
        wamid = message_id(body)
        if wamid is not None:
            return SendResult(wamid=wamid, http_status=http_status, error=None, attempts=attempts)
        return SendResult(
            None,
            http_status,
            MetaError(None, "response without a message id", str(body)[:500]),
            attempts,
            reason=f"The WhatsApp API answered {http_status} without a message id.",
        )
    error = MetaError.from_response(http_status, body)
    has_meta_error = isinstance(body, dict) and isinstance(body.get("error"), dict)
    reason = (
        explain_error(error.code, error.details or error.title)
        if has_meta_error
        else f"The WhatsApp API answered HTTP {http_status}."
    )
    return SendResult(
        None, http_status, error, attempts, retryable=retryable_answer(http_status, error.code), reason=reason
    )


def transport_result(error: httpx.TransportError, attempts: int, base_url: str) -> SendResult:
    """No answer: `retryable` if the connection was never made, `uncertain` otherwise."""
    name = type(error).__name__
    if isinstance(error, NOT_SENT_ERRORS):
        return SendResult(
            None,
            None,
            MetaError(None, f"connection failed: {error!r}"),
            attempts,
            retryable=True,
            reason=f"Could not reach the WhatsApp API at {base_url} ({name}).",
        )
    return SendResult(
        None,
        None,
        MetaError(None, f"no answer, outcome unknown: {error!r}"),
        attempts,
        uncertain=True,
        reason=f"The WhatsApp API did not answer ({name}); the reply may or may not have been sent.",
    )


def message_id(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        return wamid if isinstance(wamid, str) and wamid else None
    return None


def read_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


# --- raising, for callers that want an exception ----------------------------------------------------


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


def raise_for_result(result: SendResult) -> str:
    """Meta's message id, or the exception saying what happened."""
    if result.ok:
        return str(result.wamid)
    if result.uncertain:
        raise WhatsAppSendUnconfirmed(result.reason)
    raise WhatsAppSendError(result.reason, code=result.error.code if result.error else None, retryable=result.retryable)


# --- where to send -------------------------------------------------------------------------------


@dataclass
class Endpoint:
    base_url: str  # e.g. https://graph.facebook.com/v21.0 (or the sandbox, which speaks the same API)
    phone_number_id: str | None
    access_token: str | None

    @property
    def configured(self) -> bool:
        return bool(self.phone_number_id and self.access_token)

    @property
    def messages_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.phone_number_id}/messages"

    @property
    def media_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.phone_number_id}/media"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class MessageMethods:
    """send_text / send_template / send_interactive for both clients: each builds the payload and hands
    it to the client's `deliver` (awaitable in the asynchronous client). They return Meta's message id
    (`wamid...`) or raise WhatsAppSendError (not sent; `retryable` says whether to try later) or
    WhatsAppSendUnconfirmed (maybe sent: never POST it again blindly)."""

    configured: bool
    deliver: Callable[[dict[str, Any]], Any]

    def send_text(
        self, body: str, *, to: str | None = None, recipient: str | None = None, send_key: str | None = None
    ) -> Any:
        return self._deliver(text_content(body), to, recipient, send_key)

    def send_template(
        self,
        template: dict[str, Any],
        *,
        to: str | None = None,
        recipient: str | None = None,
        send_key: str | None = None,
    ) -> Any:
        """An approved template: the only message WhatsApp delivers once the 24-hour window has closed."""
        return self._deliver(template_content(template), to, recipient, send_key)

    def send_interactive(
        self,
        interactive: dict[str, Any],
        *,
        to: str | None = None,
        recipient: str | None = None,
        send_key: str | None = None,
    ) -> Any:
        return self._deliver(interactive_content(interactive), to, recipient, send_key)

    def _deliver(self, content: dict[str, Any], to: str | None, recipient: str | None, send_key: str | None) -> Any:
        if not self.configured:
            raise WhatsAppSendError(NOT_CONFIGURED)
        return self.deliver(message_payload(content, to=to, recipient=recipient, send_key=send_key))


# --- payloads ---------------------------------------------------------------------------------------

NOT_CONFIGURED = "WhatsApp sending is not configured (WHATSAPP_PHONE_NUMBER_ID / WHATSAPP_ACCESS_TOKEN)."


def message_payload(
    content: dict[str, Any],
    *,
    to: str | None = None,
    recipient: str | None = None,
    send_key: str | None = None,
) -> dict[str, Any]:
    """A message to a phone (`to`, digits) or, for a customer WhatsApp knows only by their
    business-scoped user id, to that id (`recipient`); `to` wins when both are given (Meta's rule), so
    only one is sent. `send_key` travels as `biz_opaque_callback_data` and comes back in statuses."""
    if not (to or recipient):
        raise WhatsAppSendError("The customer has neither a phone number nor a WhatsApp user id to reply to.")
    payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    payload.update({"to": to} if to else {"recipient": recipient})
    payload.update(content)
    if send_key:
        payload[SEND_KEY_FIELD] = send_key
    return payload


def text_content(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"preview_url": False, "body": body}}


def template_content(template: dict[str, Any]) -> dict[str, Any]:
    """An approved template (name, language, components): the only message WhatsApp delivers once the
    customer's 24-hour window has closed."""
    return {"type": "template", "template": template}


def interactive_content(interactive: dict[str, Any]) -> dict[str, Any]:
    """An `interactive` object (e.g. reply buttons: type `button`, body, action.buttons)."""
    return {"type": "interactive", "interactive": interactive}


def media_content(
    kind: str, media_id: str, *, caption: str | None = None, filename: str | None = None
) -> dict[str, Any]:
    """An `image` or `document` sent by the id of an uploaded file."""
    content: dict[str, Any] = {"id": media_id}
    if caption:
        content["caption"] = caption
    if kind == "document" and filename:
        content["filename"] = filename
    return {"type": kind, kind: content}


def read_payload(message_id: str, typing: bool = False) -> dict[str, Any]:
    """Blue ticks for the customer's message (and the earlier ones); `typing` also shows "typing…"
    (up to 25 s or until our reply)."""
    payload: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
    if typing:
        payload["typing_indicator"] = {"type": "text"}
    return payload


# Uploads are larger than messages: a minute to send the file, the usual 2 s to connect.
UPLOAD_TIMEOUT = httpx.Timeout(60.0, connect=2.0)


def upload_request(endpoint: Endpoint, data: bytes, mime: str, filename: str) -> dict[str, Any]:
    """The arguments of `POST <base>/<phone-number-id>/media` (multipart) besides its URL."""
    return dict(
        data={"messaging_product": "whatsapp", "type": mime},
        files={"file": (filename, data, mime)},
        headers=endpoint.headers,
        timeout=UPLOAD_TIMEOUT,
    )


def upload_result(http_status: int, body: Any) -> str:
    """The media id of an upload's answer, or WhatsAppSendError. An upload never reaches the customer,
    so every failure the policy calls retryable may be tried again."""
    if 200 <= http_status < 300 and isinstance(body, dict) and body.get("id"):
        return str(body["id"])
    error = MetaError.from_response(http_status, body)
    has_meta_error = isinstance(body, dict) and isinstance(body.get("error"), dict)
    message = (error.details or error.title) if has_meta_error else f"HTTP {http_status}"
    raise WhatsAppSendError(
        "Upload refused: " + explain_error(error.code, message),
        code=error.code,
        retryable=retryable_answer(http_status, error.code),
    )


def upload_transport_error(error: httpx.TransportError) -> WhatsAppSendError:
    return WhatsAppSendError(f"Could not upload the file to WhatsApp ({type(error).__name__}).", retryable=True)


def default_mask(value: str | None) -> str:
    """For log lines: the last three characters of a customer id, nothing more."""
    text = str(value or "")
    return "\u2022" * max(0, min(len(text), 12) - 3) + text[-3:] if text else "-"


Mask = Callable[[str | None], str]


def log_attempt(result: SendResult, payload: dict[str, Any], mask: Mask) -> None:
    who = mask(payload.get("to") or payload.get("recipient"))
    if result.retryable and result.http_status is not None:
        error = result.error
        logger.warning(
            "WhatsApp send attempt %d to %s failed (HTTP %s, code %s: %s); retryable",
            result.attempts,
            who,
            result.http_status,
            error.code if error else None,
            error.title if error else "",
        )
    elif result.retryable:
        logger.warning("WhatsApp send attempt %d to %s: %s; retryable", result.attempts, who, result.reason)
    elif result.uncertain:
        logger.error(
            "WhatsApp send to %s: no answer from Meta (%s); it may have been sent, so it is not repeated",
            who,
            result.error.title if result.error else "",
        )


def retry_settings(
    *, attempts: int, backoff_seconds: float, max_backoff_seconds: float, sleep: Any, on_result: bool
) -> dict[str, Any]:
    """tenacity's arguments for one Graph call (Retrying or AsyncRetrying): `attempts` in all, pauses
    of `backoff_seconds`, doubling, at most `max_backoff_seconds`, slept by the caller's `sleep`.
    Retried: a retryable SendResult (`on_result`) or a retryable WhatsAppSendError; nothing else."""
    return dict(
        retry=(
            retry_if_result(lambda outcome: outcome.retryable)
            if on_result
            else retry_if_exception(lambda error: isinstance(error, WhatsAppSendError) and error.retryable)
        ),
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=backoff_seconds, max=max_backoff_seconds),
        sleep=sleep,
        reraise=True,
        # Out of attempts with an answer: that answer (not tenacity's RetryError).
        retry_error_callback=(lambda state: state.outcome.result()) if on_result else None,
    )
