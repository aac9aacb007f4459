"""The team lead's assignment YAML: schema, loading, and re-loading when the file changes."""

from __future__ import annotations

import logging
import threading
import time as monotonic_time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from inbox.services.business_hours import WEEKDAYS, BusinessHours, parse_hours

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvironmentOverrides:
    """Environment settings that win over the YAML: INBOX_TIMEZONE, INBOX_SLA_MINUTES and
    INBOX_BUSINESS_HOURS (e.g. "mon-sun 00:00-24:00" for a demo at any hour)."""

    timezone: str | None = None
    sla_minutes: int | None = None
    business_hours: str | None = None


def weekly_hours(spec: str) -> dict[str, str]:
    """'mon-sat 09:00-21:00' -> the same hours Monday to Saturday, Sunday closed."""
    try:
        days, hours = spec.split()
        first, _, last = days.lower().partition("-")
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        if start > end:
            raise ValueError("the day range runs backwards")
        parse_hours(hours)
    except ValueError as error:
        raise ValueError(f"business hours must look like 'mon-sat 09:00-21:00', got {spec!r} ({error})") from error
    return {day: hours if start <= index <= end else "closed" for index, day in enumerate(WEEKDAYS)}


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    rule: Literal["topic_team", "vip_customer", "outside_business_hours", "round_robin", "queue"]

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SlaSpec(BaseModel):
    first_response_minutes: int = Field(default=5, ge=1, le=24 * 60)


class AssignmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # No code defaults for the hours: inbox/config/assignment.yml is their one source.
    timezone: str
    business_hours: dict[str, str | None]
    holidays: list[date] = Field(default_factory=list)
    sla: SlaSpec = Field(default_factory=SlaSpec)
    teams: list[str] = Field(default_factory=list)
    vip_customers: list[str] = Field(default_factory=list)
    slack_topics: list[str] = Field(default_factory=lambda: ["refund", "complaint", "urgent", "bot_unavailable"])
    rules: list[RuleSpec] = Field(
        default_factory=lambda: [
            RuleSpec(rule="outside_business_hours"),
            RuleSpec(rule="round_robin"),
            RuleSpec(rule="queue"),
        ]
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @field_validator("business_hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        unknown = set(value) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        for spec in value.values():
            parse_hours(spec)
        return value

    @field_validator("vip_customers")
    @classmethod
    def _normalise_ids(cls, value: list[str]) -> list[str]:
        return [normalise_whatsapp_id(str(item)) for item in value]

    def with_overrides(self, overrides: EnvironmentOverrides | None) -> AssignmentConfig:
        changes: dict[str, Any] = {}
        if overrides and overrides.timezone:
            changes["timezone"] = overrides.timezone
        if overrides and overrides.sla_minutes:
            changes["sla"] = SlaSpec(first_response_minutes=overrides.sla_minutes)
        if overrides and overrides.business_hours:
            changes["business_hours"] = weekly_hours(overrides.business_hours)
        return self.model_validate(self.model_dump() | changes) if changes else self

    def overridden(self, overrides: EnvironmentOverrides | None) -> list[str]:
        """One line per environment setting that wins over this (YAML) config, for the start-up log."""
        if overrides is None:
            return []
        lines = []
        if overrides.timezone and overrides.timezone != self.timezone:
            lines.append(f"INBOX_TIMEZONE={overrides.timezone} wins over timezone {self.timezone}")
        if overrides.sla_minutes and overrides.sla_minutes != self.sla.first_response_minutes:
            lines.append(
                f"INBOX_SLA_MINUTES={overrides.sla_minutes} wins over sla.first_response_minutes "
                f"{self.sla.first_response_minutes}"
            )
        if overrides.business_hours and weekly_hours(overrides.business_hours) != self.business_hours:
            hours = overrides.business_hours
            lines.append(f"INBOX_BUSINESS_HOURS={hours!r} wins over business_hours {self.business_hours}")
        return lines

    def business_hours_calendar(self) -> BusinessHours:
        weekly = {index: parse_hours(self.business_hours.get(day)) for index, day in enumerate(WEEKDAYS)}
        return BusinessHours(ZoneInfo(self.timezone), weekly, set(self.holidays))

    @property
    def team_names(self) -> set[str]:
        names = set(self.teams)
        for spec in self.rules:
            if spec.rule == "topic_team":
                names.update(spec.options.get("topics", {}).values())
            if spec.rule == "vip_customer":
                names.add(spec.options.get("team", "VIP"))
        return names


def normalise_whatsapp_id(value: str) -> str:
    """A phone in any notation -> its digits; a business-scoped user id ("US.1349…") stays as it is."""
    value = value.strip()
    if value.strip("+ -()0123456789"):
        return value  # not a phone number (a BSUID or another channel's id)
    return "".join(ch for ch in value if ch.isdigit()) or value


def load_assignment_config(
    path: Path, overrides: EnvironmentOverrides | None = None, *, log_overrides: bool = False
) -> AssignmentConfig:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    config = AssignmentConfig.model_validate(data)
    if log_overrides:
        # The team lead edits the YAML; say when the environment silently wins over it.
        for line in config.overridden(overrides):
            logger.warning("%s: %s (environment setting; unset it to use the file)", path, line)
    return config.with_overrides(overrides)


class AssignmentConfigSource:
    """Hands out the current config; re-reads the file when it changed (checked every few seconds)."""

    CHECK_INTERVAL_SECONDS = 2.0

    def __init__(self, path: Path, overrides: EnvironmentOverrides | None = None):
        self.path = path
        self._overrides = overrides
        self._lock = threading.Lock()
        self._config = load_assignment_config(path, self._overrides, log_overrides=True)  # fail fast at start-up
        self._mtime = path.stat().st_mtime
        self._checked_at = monotonic_time.monotonic()

    def current(self) -> AssignmentConfig:
        now = monotonic_time.monotonic()
        if now - self._checked_at >= self.CHECK_INTERVAL_SECONDS:
            with self._lock:
                self._checked_at = now
                self._reload_if_changed()
        return self._config

    def _reload_if_changed(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                return
            self._mtime = mtime
            self._config = load_assignment_config(self.path, self._overrides)
            logger.info("assignment rules reloaded from %s", self.path)
        except (OSError, ValueError, yaml.YAMLError) as error:
            logger.error("keeping the previous assignment rules: %s is invalid: %s", self.path, error)
