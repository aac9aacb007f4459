"""The inbox's shared dependencies, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx

from inbox.db import Database
from inbox.models import utcnow
from inbox.services.assignment.config import AssignmentConfig, AssignmentConfigSource, EnvironmentOverrides
from inbox.services.assignment.engine import AssignmentEngine
from inbox.services.csat import load_csat_config
from inbox.services.privacy import masked
from inbox.services.rasa import RasaClient
from inbox.services.read_receipts import ReadReceipts, load_read_receipt_config
from inbox.services.slack import SlackNotifier
from inbox.services.templates import load_templates
from inbox.services.whatsapp import WhatsAppClient
from inbox.settings import Settings


def _secret(value) -> str | None:
    return value.get_secret_value() if value else None


class Inbox:
    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow):
        self.settings = settings
        self.clock = clock
        self.db = Database(settings.resolved_database_url)
        self.assignment_source = AssignmentConfigSource(
            settings.inbox_assignment_config,
            EnvironmentOverrides(settings.inbox_timezone, settings.inbox_sla_minutes, settings.inbox_business_hours),
        )
        self._engine: tuple[AssignmentConfig, AssignmentEngine] | None = None
        self.http = httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0))
        self.slack = SlackNotifier(_secret(settings.slack_webhook_url))
        self.whatsapp = WhatsAppClient(
            base_url=settings.whatsapp_api_base_url,
            phone_number_id=settings.whatsapp_phone_number_id,
            access_token=_secret(settings.whatsapp_access_token),
            http=self.http,
            attempts=3,  # quick attempts per send for failures that certainly did not send
            backoff_seconds=0.25,  # then 0.5, 1, at most 2 s: an agent is waiting
            max_backoff_seconds=2.0,
            mask=masked,
        )
        # Checked at start-up: a mistake stops the inbox with the file, line and field.
        self.templates = load_templates()
        self.read_receipts = ReadReceipts(self, load_read_receipt_config())
        self.csat_config = load_csat_config()
        self.rasa = RasaClient(base_url=settings.rasa_url, jwt_secret=_secret(settings.rasa_jwt_secret), http=self.http)

    def assignment_config(self) -> AssignmentConfig:
        return self.assignment_source.current()

    def assignment_engine(self) -> AssignmentEngine:
        config = self.assignment_config()
        if self._engine is None or self._engine[0] is not config:
            self._engine = (config, AssignmentEngine(config))
        return self._engine[1]

    def close(self) -> None:
        self.slack.close()
        self.http.close()
        self.db.dispose()
