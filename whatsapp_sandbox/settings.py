"""Sandbox settings from the environment (the same WHATSAPP_* values as the connector)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:5005/webhooks/whatsapp/webhook"
REQUIRED_VARIABLES = ("WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID")


class SandboxSettingError(RuntimeError):
    pass


@dataclass(frozen=True)
class SandboxSettings:
    app_secret: str
    access_token: str
    phone_number_id: str
    host: str = "127.0.0.1"
    port: int = 8090
    webhook_url: str = DEFAULT_WEBHOOK_URL
    display_phone_number: str = "15550001234"
    business_account_id: str = "102290129340398"
    # Seconds after an accepted send at which the sent / delivered / read webhooks go out;
    # None switches status webhooks off.
    status_delays: Optional[Tuple[float, float, float]] = (0.05, 0.3, 1.0)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "SandboxSettings":
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED_VARIABLES if not env.get(name, "").strip()]
        if missing:
            raise SandboxSettingError("The WhatsApp sandbox needs these environment variables: " + ", ".join(missing))
        port_text = env.get("SANDBOX_PORT", "8090").strip() or "8090"
        if not port_text.isdigit():
            raise SandboxSettingError(f"SANDBOX_PORT must be a port number, got {port_text!r}")
        return cls(
            app_secret=env["WHATSAPP_APP_SECRET"].strip(),
            access_token=env["WHATSAPP_ACCESS_TOKEN"].strip(),
            phone_number_id=env["WHATSAPP_PHONE_NUMBER_ID"].strip(),
            host=env.get("SANDBOX_HOST", "127.0.0.1").strip() or "127.0.0.1",
            port=int(port_text),
            webhook_url=env.get("SANDBOX_WEBHOOK_URL", "").strip() or DEFAULT_WEBHOOK_URL,
            display_phone_number=env.get("SANDBOX_DISPLAY_PHONE_NUMBER", "").strip() or "15550001234",
            status_delays=_status_delays(env.get("SANDBOX_STATUS_DELAYS", "").strip()),
        )


def _status_delays(raw: str) -> Optional[Tuple[float, float, float]]:
    if not raw:
        return (0.05, 0.3, 1.0)
    if raw.lower() in ("off", "none", "0"):
        return None
    try:
        sent, delivered, read = (float(part) for part in raw.split(","))
    except ValueError:
        raise SandboxSettingError(
            f"SANDBOX_STATUS_DELAYS must be 'off' or three comma-separated seconds (sent,delivered,read), got {raw!r}"
        ) from None
    return (sent, delivered, read)
