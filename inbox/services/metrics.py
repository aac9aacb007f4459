"""Dashboard numbers: first-response times in business hours, hand-offs by pattern and topic,
bot containment, SLA breaches, load per agent, hand-offs per day (the chart)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, distinct, func, or_, select
from sqlalchemy.orm import Session

from inbox.models import Agent, Conversation, Handoff
from inbox.services.business_hours import BusinessHours


def percentile(values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile (p50 = median of the sorted values, p90 = the value 90% are at or below)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


@dataclass
class DayBar:
    day: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class DashboardReport:
    days: int
    since: datetime
    first_response_median: int | None
    first_response_p90: int | None
    first_responses: int
    handoffs_total: int
    by_reason: list[tuple[str, int]]
    by_topic: list[tuple[str, int]]
    conversations_total: int
    contained: int
    sla_breaches: int
    open_unassigned: int
    agent_load: list[tuple[Agent, int]]
    daily: list[DayBar] = field(default_factory=list)

    @property
    def containment_percent(self) -> float | None:
        return round(100 * self.contained / self.conversations_total, 1) if self.conversations_total else None


class DashboardMetrics:
    def __init__(self, session: Session, hours: BusinessHours, now: datetime):
        self.session = session
        self.hours = hours
        self.now = now

    def report(self, days: int) -> DashboardReport:
        since = self.now - timedelta(days=days)
        in_period = Handoff.created_at >= since
        response_times = list(
            self.session.scalars(
                select(Handoff.first_response_business_seconds).where(
                    in_period, Handoff.first_response_business_seconds.is_not(None)
                )
            )
        )
        by_reason = self.session.execute(
            select(Handoff.reason, func.count()).where(in_period).group_by(Handoff.reason).order_by(func.count().desc())
        ).all()
        by_topic = self.session.execute(
            select(Handoff.topic, func.count())
            .where(in_period, Handoff.topic.is_not(None))
            .group_by(Handoff.topic)
            .order_by(func.count().desc())
        ).all()
        breaches = self.session.scalar(
            select(func.count()).where(
                in_period,
                or_(
                    Handoff.first_response_at > Handoff.sla_due_at,
                    and_(
                        Handoff.first_response_at.is_(None),
                        Handoff.sla_due_at < self.now,
                        or_(Handoff.resolved_at.is_(None), Handoff.resolved_at > Handoff.sla_due_at),
                    ),
                ),
            )
        )
        conversations_total = self.session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.last_message_at >= since)
        )
        handed_off = self.session.scalar(select(func.count(distinct(Handoff.conversation_id))).where(in_period))
        load = dict(
            self.session.execute(
                select(Conversation.assignee_id, func.count())
                .where(Conversation.status == "open", Conversation.assignee_id.is_not(None))
                .group_by(Conversation.assignee_id)
            ).all()
        )
        agents = list(self.session.scalars(select(Agent).where(Agent.is_active.is_(True)).order_by(Agent.name)))
        unassigned = self.session.scalar(
            select(func.count()).where(Conversation.status == "open", Conversation.assignee_id.is_(None))
        )
        return DashboardReport(
            days=days,
            since=since,
            first_response_median=percentile(response_times, 0.5),
            first_response_p90=percentile(response_times, 0.9),
            first_responses=len(response_times),
            handoffs_total=sum(count for _, count in by_reason),
            by_reason=[(reason, count) for reason, count in by_reason],
            by_topic=[(topic, count) for topic, count in by_topic],
            conversations_total=conversations_total or 0,
            contained=max((conversations_total or 0) - (handed_off or 0), 0),
            sla_breaches=breaches or 0,
            open_unassigned=unassigned or 0,
            agent_load=[(agent, load.get(agent.id, 0)) for agent in agents],
            daily=self._daily(since, days),
        )

    def _daily(self, since: datetime, days: int) -> list[DayBar]:
        rows = self.session.execute(select(Handoff.created_at, Handoff.reason).where(Handoff.created_at >= since))
        per_day: dict[date, Counter] = {}
        for created_at, reason in rows:
            per_day.setdefault(created_at.astimezone(self.hours.tz).date(), Counter())[reason] += 1
        today = self.now.astimezone(self.hours.tz).date()
        return [
            DayBar(day, dict(per_day.get(day, Counter())))
            for day in (today - timedelta(days=offset) for offset in range(days - 1, -1, -1))
        ]
