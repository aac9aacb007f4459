"""Assignment rules: each one small class, evaluated in the order the YAML lists them.

A rule looks at the hand-off (`AssignmentContext`) and either narrows the team that may take it
(returns None and sets `context.team`), or decides (returns an `AssignmentDecision`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from inbox.models import Agent
from inbox.services.business_hours import BusinessHours


@dataclass
class Roster:
    """Active agents and how many open conversations each one has right now."""

    agents: list[Agent]
    open_load: dict[int, int]

    def _in_team(self, team: str | None) -> list[Agent]:
        return [agent for agent in self.agents if team is None or team in agent.team_names]

    def online(self, team: str | None) -> list[Agent]:
        return [agent for agent in self._in_team(team) if agent.status == "online"]

    def available(self, team: str | None) -> list[Agent]:
        return [agent for agent in self.online(team) if self.open_load.get(agent.id, 0) < agent.capacity]


@dataclass
class AssignmentContext:
    topic: str | None
    tags: list[str]
    is_vip: bool
    now: datetime
    roster: Roster
    team: str | None = None


@dataclass
class AssignmentDecision:
    rule: str
    agent: Agent | None = None
    team: str | None = None
    # Set when the customer should be told the next opening time instead of the SLA target.
    team_back_at: datetime | None = None

    @property
    def status(self) -> str:
        return "assigned" if self.agent else "queued"


@dataclass
class TopicTeamRule:
    """refund -> Returns, complaint -> Care, ...: the hand-off's topic (or one of its tags) picks a team."""

    topics: dict[str, str] = field(default_factory=dict)
    name: str = "topic_team"

    def apply(self, context: AssignmentContext) -> AssignmentDecision | None:
        if context.team is None:
            for key in [context.topic, *context.tags]:
                if key and key in self.topics:
                    context.team = self.topics[key]
                    break
        return None


@dataclass
class VipCustomerRule:
    """VIP customers are handled by the VIP agents."""

    team: str = "VIP"
    name: str = "vip_customer"

    def apply(self, context: AssignmentContext) -> AssignmentDecision | None:
        if context.team is None and context.is_vip:
            context.team = self.team
        return None


@dataclass
class OutsideBusinessHoursRule:
    """When the team is closed, queue the conversation and promise the next opening time."""

    hours: BusinessHours
    name: str = "outside_business_hours"

    def apply(self, context: AssignmentContext) -> AssignmentDecision | None:
        if self.hours.is_open(context.now):
            return None
        return AssignmentDecision(self.name, team=context.team, team_back_at=self.hours.next_opening(context.now))


@dataclass
class RoundRobinRule:
    """The online agent under capacity who has waited longest since their last assignment."""

    name: str = "round_robin"

    def apply(self, context: AssignmentContext) -> AssignmentDecision | None:
        candidates = context.roster.available(context.team)
        if not candidates:
            return None
        never = datetime.min.replace(tzinfo=UTC)
        load = context.roster.open_load
        chosen = min(candidates, key=lambda agent: (agent.last_assigned_at or never, load.get(agent.id, 0), agent.id))
        return AssignmentDecision(self.name, agent=chosen, team=context.team)


@dataclass
class QueueRule:
    """Unassigned queue. Nobody of the team online at all -> the ETA is the next opening time."""

    hours: BusinessHours
    name: str = "queue"

    def apply(self, context: AssignmentContext) -> AssignmentDecision | None:
        if context.roster.online(context.team):
            return AssignmentDecision(self.name, team=context.team)
        return AssignmentDecision(self.name, team=context.team, team_back_at=self.hours.next_opening(context.now))
