"""Runs the configured rules for a hand-off and works out the ETA and the SLA deadline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from inbox.models import Agent, Conversation
from inbox.services.assignment.config import AssignmentConfig, RuleSpec
from inbox.services.assignment.rules import (
    AssignmentContext,
    AssignmentDecision,
    OutsideBusinessHoursRule,
    QueueRule,
    Roster,
    RoundRobinRule,
    TopicTeamRule,
    VipCustomerRule,
)
from inbox.services.business_hours import BusinessHours

# Any constant works: it only has to be the same for every transaction that assigns.
_ASSIGNMENT_LOCK_KEY = 720_401


@dataclass
class Assignment:
    decision: AssignmentDecision
    eta_minutes: int | None
    team_back_at: datetime | None
    eta_text: str
    sla_due_at: datetime


def build_rules(config: AssignmentConfig, hours: BusinessHours) -> list:
    def build(spec: RuleSpec):
        options = spec.options
        if spec.rule == "topic_team":
            return TopicTeamRule(topics={str(k): str(v) for k, v in (options.get("topics") or {}).items()})
        if spec.rule == "vip_customer":
            return VipCustomerRule(team=str(options.get("team", "VIP")))
        if spec.rule == "outside_business_hours":
            return OutsideBusinessHoursRule(hours)
        if spec.rule == "round_robin":
            return RoundRobinRule()
        return QueueRule(hours)

    rules = [build(spec) for spec in config.rules]
    if not any(isinstance(rule, QueueRule) for rule in rules):
        rules.append(QueueRule(hours))  # every hand-off must land somewhere
    return rules


def load_roster(session: Session) -> Roster:
    agents = list(session.scalars(select(Agent).where(Agent.is_active.is_(True)).order_by(Agent.id)))
    load_rows = session.execute(
        select(Conversation.assignee_id, func.count())
        .where(Conversation.status == "open", Conversation.assignee_id.is_not(None))
        .group_by(Conversation.assignee_id)
    )
    return Roster(agents=agents, open_load={agent_id: count for agent_id, count in load_rows})


class AssignmentEngine:
    def __init__(self, config: AssignmentConfig):
        self.config = config
        self.hours = config.business_hours_calendar()
        self.rules = build_rules(config, self.hours)
        self.sla_minutes = config.sla.first_response_minutes

    def assign(
        self, session: Session, *, topic: str | None, tags: list[str], is_vip: bool, now: datetime
    ) -> Assignment:
        if session.get_bind().dialect.name == "postgresql":
            # Serialise assignments so two hand-offs cannot both take an agent's last free slot.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ASSIGNMENT_LOCK_KEY})
        context = AssignmentContext(topic=topic, tags=tags, is_vip=is_vip, now=now, roster=load_roster(session))
        decision = None
        for rule in self.rules:
            decision = rule.apply(context)
            if decision is not None:
                break
        assert decision is not None  # the queue rule always decides
        if decision.agent is not None:
            decision.agent.last_assigned_at = now
        return self.describe(decision, now)

    def describe(self, decision: AssignmentDecision, now: datetime) -> Assignment:
        sla_due_at = self.hours.add_business_minutes(now, self.sla_minutes)
        if decision.team_back_at is not None:
            return Assignment(
                decision=decision,
                eta_minutes=None,
                team_back_at=decision.team_back_at,
                eta_text=self.hours.describe_deadline(decision.team_back_at, now),
                sla_due_at=sla_due_at,
            )
        return Assignment(
            decision=decision,
            eta_minutes=self.sla_minutes,
            team_back_at=None,
            eta_text=f"within {self.sla_minutes} minute{'s' if self.sla_minutes != 1 else ''}",
            sla_due_at=sla_due_at,
        )
