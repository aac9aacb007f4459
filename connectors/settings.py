"""Connector settings, read from the environment only (secrets never live in the repo)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

from rasa.shared.exceptions import RasaException

DEFAULT_API_BASE_URL = "https://graph.facebook.com/v21.0"
DEFAULT_STORE_URL = "sqlite:///var/whatsapp.db"
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_RETRY_PAUSE_SECONDS = 30.0

REQUIRED_VARIABLES = (
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
)


# RasaException: `rasa run` prints these as one clear line and exits instead of a traceback.
class MissingSettingError(RasaException):
    """A required environment variable is unset or empty."""


class InvalidSettingError(RasaException):
    """An environment variable is set to a value the connector cannot use."""


@dataclass(frozen=True)
class WhatsAppSettings:
    verify_token: str
    app_secret: str
    access_token: str
    phone_number_id: str
    api_base_url: str = DEFAULT_API_BASE_URL
    store_url: str = DEFAULT_STORE_URL
    inbox_url: Optional[str] = None
    inbox_bot_token: Optional[str] = None
    # Outbound sends: attempts in total and the first back-off (doubles each retry).
    send_attempts: int = 5
    send_backoff_seconds: float = 0.5
    send_timeout_seconds: float = 15.0
    # A message claimed by a process that stopped renewing its claim this long ago
    # is taken over by another process (or by the same service after a restart).
    claim_ttl_seconds: float = 15.0
    # How often each process with room for more customers looks for persisted messages nobody is
    # working on (after a crash, or received by a busier process).
    sweep_interval_seconds: float = 0.25
    # Customers one process serves at a time. A process that is full leaves new messages in the
    # store for a process with room, so Sanic workers share the load whichever receives the webhook.
    max_concurrent_customers: int = 8
    # Largest webhook body read (Meta's payloads are at most 3 MB); larger ones get 413 unread.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # A message whose handling fails (tracker store, lock store, Rasa error) is retried with pauses
    # doubling from the first one up to MAX_RETRY_PAUSE_SECONDS, for this long in all; then the
    # customer is told the bot is unavailable and the conversation is handed off.
    retry_budget_seconds: float = 300.0
    retry_first_pause_seconds: float = 1.0
    # A reply whose send had no answer (timeout, crash) is not sent again before this long has passed
    # without a status from Meta for it (connectors/send_keys.py).
    send_settle_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "WhatsAppSettings":
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED_VARIABLES if not env.get(name, "").strip()]
        if missing:
            raise MissingSettingError(
                "The WhatsApp connector needs these environment variables: "
                + ", ".join(missing)
            )
        api_base_url = (env.get("WHATSAPP_API_BASE_URL", "").strip() or DEFAULT_API_BASE_URL).rstrip("/")
        if not api_base_url.startswith(("https://", "http://")):
            raise InvalidSettingError(f"WHATSAPP_API_BASE_URL must be an http(s) URL, got {api_base_url!r}")
        inbox_url = env.get("INBOX_URL", "").strip() or None
        inbox_bot_token = env.get("INBOX_BOT_TOKEN", "").strip() or None
        if inbox_url and not inbox_bot_token:
            raise MissingSettingError(
                "INBOX_BOT_TOKEN must be set when INBOX_URL is set "
                "(the connector forwards WhatsApp statuses to the inbox)"
            )
        return cls(
            verify_token=env["WHATSAPP_VERIFY_TOKEN"].strip(),
            app_secret=env["WHATSAPP_APP_SECRET"].strip(),
            access_token=env["WHATSAPP_ACCESS_TOKEN"].strip(),
            phone_number_id=env["WHATSAPP_PHONE_NUMBER_ID"].strip(),
            api_base_url=api_base_url,
            store_url=env.get("WHATSAPP_STORE_URL", "").strip() or DEFAULT_STORE_URL,
            inbox_url=inbox_url.rstrip("/") if inbox_url else None,
            inbox_bot_token=inbox_bot_token,
            send_attempts=_positive_int(env, "WHATSAPP_SEND_ATTEMPTS", 5),
            send_backoff_seconds=_positive_float(env, "WHATSAPP_SEND_BACKOFF_SECONDS", 0.5),
            send_timeout_seconds=_positive_float(env, "WHATSAPP_SEND_TIMEOUT_SECONDS", 15.0),
            claim_ttl_seconds=_positive_float(env, "WHATSAPP_CLAIM_TTL_SECONDS", 15.0),
            sweep_interval_seconds=_positive_float(env, "WHATSAPP_SWEEP_INTERVAL_SECONDS", 0.25),
            max_concurrent_customers=_positive_int(env, "WHATSAPP_MAX_CONCURRENT_CUSTOMERS", 8),
            max_body_bytes=_positive_int(env, "WHATSAPP_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            retry_budget_seconds=_positive_float(env, "WHATSAPP_RETRY_BUDGET_SECONDS", 300.0),
            retry_first_pause_seconds=_positive_float(env, "WHATSAPP_RETRY_FIRST_PAUSE_SECONDS", 1.0),
            send_settle_seconds=_positive_float(env, "WHATSAPP_SEND_SETTLE_SECONDS", 60.0),
        )

    @property
    def messages_url(self) -> str:
        return f"{self.api_base_url}/{self.phone_number_id}/messages"


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidSettingError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise InvalidSettingError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidSettingError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return int(raw)
