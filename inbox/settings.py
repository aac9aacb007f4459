"""All settings come from the environment (names shared with the rest of the project)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

INBOX_DIR = Path(__file__).resolve().parent
REPO_ROOT = INBOX_DIR.parent


def with_psycopg_driver(url: str) -> str:
    """`postgres://` and `postgresql://` URLs (as hosting platforms hand them out) use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    # hide_input_in_errors: a refused configuration must not print the database URL (password) back.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, hide_input_in_errors=True)

    # "production" turns off the demo seed, refuses demo credentials and starts only with real secrets.
    # Unset means "development", except with a PostgreSQL database, where it refuses to guess.
    inbox_env: Literal["development", "production", "test"] | None = None
    inbox_var_dir: Path = REPO_ROOT / "var"
    database_url: str = ""

    inbox_host: str = "127.0.0.1"
    inbox_port: int = 8080
    # Base of the links the inbox hands out (hand-off answers, Slack messages).
    inbox_public_url: str = ""

    inbox_bot_token: SecretStr | None = None
    inbox_session_secret: SecretStr | None = None
    # Unset: Secure cookies in production only. Production refuses `false`.
    inbox_secure_cookies: bool | None = None
    inbox_demo_password: SecretStr | None = None

    rasa_url: str = "http://127.0.0.1:5005"
    # Signs the short-lived JWT of the resume call; the same value as Rasa's `--jwt-secret`.
    rasa_jwt_secret: SecretStr | None = None
    rasa_events_db_url: str = ""
    # "inline": the event-stream consumer runs as a background thread of `serve`;
    # "off": run it separately with `python -m inbox consume`.
    inbox_consumer: Literal["inline", "off"] = "inline"
    inbox_consumer_poll_seconds: float = 0.5
    # Which event broker Rasa publishes to (its endpoints' `event_broker`): "sql" reads RASA_EVENTS_DB_URL;
    # "rabbitmq" consumes RABBITMQ_QUEUE at RABBITMQ_URL (services/event_stream_rabbitmq.py).
    inbox_event_broker: Literal["sql", "rabbitmq"] = "sql"
    rabbitmq_url: SecretStr | None = None
    rabbitmq_queue: str = "kesar_inbox_events"

    whatsapp_access_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_base_url: str = "https://graph.facebook.com/v21.0"

    slack_webhook_url: SecretStr | None = None

    kb_path: Path = REPO_ROOT / "data" / "knowledge_base.yml"
    # The action server's /kb endpoints (Test answer, knowledge-base status; actions/CONTRACT.md):
    # ACTION_SERVER_URL (Rasa's action endpoint, a trailing /webhook is dropped), else 127.0.0.1 on
    # ACTION_SERVER_PORT; ACTION_SERVER_TOKEN is its X-Action-Token.
    action_server_url: str = ""
    action_server_port: int = 5055
    action_server_token: SecretStr | None = None
    # Test-answer questions per agent per minute (each one runs the NLU and the KB search).
    inbox_kb_test_per_minute: int = 20
    inbox_assignment_config: Path = INBOX_DIR / "config" / "assignment.yml"
    inbox_quick_replies_seed: Path = INBOX_DIR / "config" / "quick_replies.yml"
    # Override the YAML's time zone / SLA target / business hours ("mon-sun 00:00-24:00") without editing it.
    inbox_timezone: str | None = None
    inbox_sla_minutes: int | None = None
    inbox_business_hours: str | None = None
    inbox_sla_check_seconds: float = 15.0
    # Agent replies left in "Sending…" (process killed, Graph API down): how often the recovery loop
    # looks, and how long a reply whose request timed out waits for Meta's status webhook to confirm it.
    inbox_reply_check_seconds: float = 5.0
    inbox_reply_confirm_seconds: float = 300.0
    # Media (services/media.py): where files live (`local`: content-addressed under INBOX_MEDIA_DIR,
    # default <var>/media), how often the fetcher looks for downloads due, the largest file accepted.
    inbox_media_storage: Literal["local", "s3"] = "local"
    inbox_media_dir: Path | None = None
    inbox_media_check_seconds: float = 0.25
    inbox_media_max_bytes: int = 100 * 1024 * 1024
    # `s3` (services/media_storage.py): bucket, endpoint URL for MinIO/R2/Ceph (empty: AWS), region,
    # key prefix, server-side encryption to ask for (e.g. AES256; empty: the bucket's default).
    # Credentials only from the standard AWS_* variables, never here.
    inbox_media_s3_bucket: str | None = None
    inbox_media_s3_endpoint: str | None = None
    inbox_media_s3_region: str | None = None
    inbox_media_s3_prefix: str = "media/"
    inbox_media_s3_sse: str | None = None

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.inbox_env is None:
            if make_url(self.resolved_database_url).get_backend_name() == "postgresql":
                raise ValueError(
                    "INBOX_ENV is not set but DATABASE_URL is a PostgreSQL database. Set INBOX_ENV=production "
                    "for a real deployment (INBOX_ENV=development for a local demo on PostgreSQL); the inbox "
                    "will not guess, because development creates demo agents with a shared password."
                )
            self.inbox_env = "development"
        if self.inbox_env == "production":
            if self.inbox_demo_password is not None:
                raise ValueError("INBOX_DEMO_PASSWORD is set: demo credentials are refused in production. Unset it.")
            if self.inbox_secure_cookies is False:
                raise ValueError(
                    "INBOX_SECURE_COOKIES=false is refused in production: the inbox is served over HTTPS there "
                    "and its cookies are always Secure."
                )
        return self

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS: always in production, elsewhere when INBOX_SECURE_COOKIES=true."""
        return self.inbox_env == "production" or bool(self.inbox_secure_cookies)

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

    @cached_property
    def action_server_base_url(self) -> str:
        url = (self.action_server_url or f"http://127.0.0.1:{self.action_server_port}").rstrip("/")
        return url.removesuffix("/webhook")

    def conversation_url(self, conversation_id: int) -> str:
        return f"{self.public_url}/conversations/{conversation_id}"
