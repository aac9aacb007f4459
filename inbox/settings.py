"""All settings come from the environment (names shared with the rest of the project)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

INBOX_DIR = Path(__file__).resolve().parent
REPO_ROOT = INBOX_DIR.parent


def with_psycopg_driver(url: str) -> str:
    """`postgres://` and `postgresql://` URLs (as hosting platforms hand them out) use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    # "production" turns off the demo seed and refuses to start without real secrets.
    inbox_env: Literal["development", "production", "test"] = "development"
    inbox_var_dir: Path = REPO_ROOT / "var"
    database_url: str = ""

    inbox_host: str = "127.0.0.1"
    inbox_port: int = 8080
    # Base of the links the inbox hands out (hand-off answers, Slack messages).
    inbox_public_url: str = ""

    inbox_bot_token: SecretStr | None = None
    inbox_session_secret: SecretStr | None = None
    inbox_secure_cookies: bool = False
    inbox_demo_password: SecretStr | None = None

    rasa_url: str = "http://127.0.0.1:5005"
    # Signs the short-lived JWT of the resume call; the same value as Rasa's `--jwt-secret`.
    rasa_jwt_secret: SecretStr | None = None
    rasa_events_db_url: str = ""
    # "inline": the event-stream consumer runs as a background thread of `serve`;
    # "off": run it separately with `python -m inbox consume`.
    inbox_consumer: Literal["inline", "off"] = "inline"
    inbox_consumer_poll_seconds: float = 0.5

    whatsapp_access_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_base_url: str = "https://graph.facebook.com/v21.0"

    slack_webhook_url: SecretStr | None = None

    kb_path: Path = REPO_ROOT / "data" / "knowledge_base.yml"
    inbox_assignment_config: Path = INBOX_DIR / "config" / "assignment.yml"
    inbox_quick_replies_seed: Path = INBOX_DIR / "config" / "quick_replies.yml"
    # Override the YAML's time zone / SLA target / business hours ("mon-sun 00:00-24:00") without editing it.
    inbox_timezone: str | None = None
    inbox_sla_minutes: int | None = None
    inbox_business_hours: str | None = None
    inbox_sla_check_seconds: float = 15.0

    @cached_property
    def resolved_database_url(self) -> str:
        return with_psycopg_driver(self.database_url or f"sqlite:///{self.inbox_var_dir / 'inbox.db'}")

    @cached_property
    def resolved_rasa_events_db_url(self) -> str:
        return with_psycopg_driver(self.rasa_events_db_url or f"sqlite:///{self.inbox_var_dir / 'rasa_events.db'}")

    @cached_property
    def public_url(self) -> str:
        return (self.inbox_public_url or f"http://{self.inbox_host}:{self.inbox_port}").rstrip("/")

    @cached_property
    def session_secret(self) -> str:
        """The configured secret, or (outside production) one generated once and kept under var/."""
        if self.inbox_session_secret:
            return self.inbox_session_secret.get_secret_value()
        if self.inbox_env == "production":
            raise RuntimeError("INBOX_SESSION_SECRET must be set in production")
        secret_file = self.inbox_var_dir / "inbox_session_secret"
        if secret_file.exists():
            return secret_file.read_text().strip()
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        secret_file.write_text(secret)
        secret_file.chmod(0o600)
        return secret

    def conversation_url(self, conversation_id: int) -> str:
        return f"{self.public_url}/conversations/{conversation_id}"
