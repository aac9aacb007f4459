"""Hand-offs in: from the bot's HTTP call or recognised on the event stream, created exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inbox.models import Conversation, Handoff, Team
from inbox.schemas import AssigneeOut, HandoffRequest, HandoffResponse
from inbox.services.assignment.engine import Assignment, AssignmentEngine
from inbox.services.assignment.rules import AssignmentDecision
from inbox.services.conversation_store import ConversationStore, insert_ignoring_duplicates
from inbox.services.handoff_contract import REASON_LABELS
from inbox.services.message_merge import MessageMerger
from inbox.services.slack import slack_escape, slack_link

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox


class HandoffConflict(Exception):
    """The handoff_id was already used for a different conversation."""


@dataclass
class HandoffOutcome:
    handoff: Handoff
    conversation: Conversation
    created: bool
    response: dict | None = None
    slack_message: str | None = None  # sent after the transaction commits


def team_by_name(session: Session, name: str | None) -> Team | None:
    if not name:
        return None
    insert_ignoring_duplicates(session, Team, {"name": name}, ["name"])
    return session.scalars(select(Team).where(Team.name == name)).one()


class HandoffIntake:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    # -- entry points -----------------------------------------------------------------------

    def accept(self, request: HandoffRequest, *, source: str = "api") -> HandoffOutcome:
        """Own transaction; a concurrent duplicate that wins the race is replayed, not re-created."""
        for attempt in range(3):
            try:
                with self.inbox.db.write() as session:
                    outcome = self.accept_in_session(session, request, source=source)
                    outcome.response = self.response_for(outcome.handoff)
            except IntegrityError:
                if attempt == 2:
                    raise
                continue
            if outcome.slack_message:
                self.inbox.slack.notify(outcome.slack_message)
            return outcome
        raise AssertionError("unreachable")

    def accept_in_session(self, session: Session, request: HandoffRequest, *, source: str) -> HandoffOutcome:
        now = self.inbox.clock()
        config = self.inbox.assignment_config()
        store = ConversationStore(session, config.vip_customers)
        existing = self._find(session, request.handoff_id)
        if existing is not None:
            return self._replay(session, store, existing, request, source, now)

        conversation = store.get_or_create(
            request.conversation_id,
            channel=request.channel,
            customer_external_id=request.customer.whatsapp_id,
            customer_name=request.customer.name,
            phone_number_id=request.customer.phone_number_id,
            bsuid=request.customer.bsuid,
            username=request.customer.username or None,
        )
        # Re-check under the conversation's lock: a duplicate may have committed meanwhile.
        existing = self._find(session, request.handoff_id)
        if existing is not None:
            return self._replay(session, store, existing, request, source, now)

        MessageMerger(session, store).add_transcript(conversation, self._transcript_items(request, now))
        store.add_tags(conversation, [*request.tags, *([request.topic] if request.topic else [])])
        store.remember_order_numbers(conversation, request.order_numbers)

        engine = self.inbox.assignment_engine()
        if conversation.status == "open" and conversation.current_handoff_id is not None:
            assignment = self._keep_current_assignment(engine, conversation, now)
        else:
            assignment = engine.assign(
                session, topic=request.topic, tags=request.tags, is_vip=conversation.is_vip, now=now
            )
        team = team_by_name(session, assignment.decision.team)
        handed_off_at = min(request.requested_at or now, now)
        reopened = conversation.status != "open"
        # The customer has waited since the bot decided to hand off, even if the call came late.
        sla_due_at = (
            engine.hours.add_business_minutes(handed_off_at, engine.sla_minutes)
            if reopened
            else conversation.sla_due_at
        )
        handoff = Handoff(
            handoff_key=request.handoff_id,
            conversation_id=conversation.id,
            source=source,
            api_received_at=now if source == "api" else None,
            reason=request.reason,
            topic=request.topic,
            priority=request.priority,
            tags=list(request.tags),
            summary=request.summary,
            order_numbers=list(request.order_numbers),
            requested_at=request.requested_at,
            created_at=now,
            status=assignment.decision.status,
            assignee_id=assignment.decision.agent.id if assignment.decision.agent else None,
            team_id=team.id if team else None,
            assignment_rule=assignment.decision.rule,
            eta_minutes=assignment.eta_minutes,
            team_back_at=assignment.team_back_at,
            eta_text=assignment.eta_text,
            sla_due_at=sla_due_at,
        )
        session.add(handoff)
        session.flush()  # the unique handoff_key stops a concurrent duplicate here

        conversation.handoff_count += 1
        conversation.reason = request.reason
        conversation.topic = request.topic
        conversation.priority = request.priority
        conversation.summary = request.summary or conversation.summary
        if reopened:
            conversation.status = "open"
            conversation.assignee_id = handoff.assignee_id
            conversation.team_id = handoff.team_id
            conversation.current_handoff_id = handoff.id
            conversation.handed_off_at = handed_off_at
            conversation.sla_due_at = handoff.sla_due_at
            conversation.first_response_at = None
            conversation.waiting_since = handed_off_at
            conversation.resolved_at = None
        store.add_message(conversation, "system", self._system_line(handoff, assignment, reopened), now)
        outcome = HandoffOutcome(handoff=handoff, conversation=conversation, created=True)
        outcome.slack_message = self._slack_message(outcome)
        return outcome

    # -- details ----------------------------------------------------------------------------

    @staticmethod
    def _find(session: Session, handoff_key: str) -> Handoff | None:
        return session.scalars(select(Handoff).where(Handoff.handoff_key == handoff_key)).one_or_none()

    def _replay(
        self, session, store, existing: Handoff, request: HandoffRequest, source: str, now: datetime
    ) -> HandoffOutcome:
        conversation = store.lock(existing.conversation_id)
        if conversation.sender_id != request.conversation_id:
            raise HandoffConflict(f"handoff_id {request.handoff_id!r} was already used for a different conversation_id")
        if source == "api" and existing.api_received_at is None:
            # Created from the event stream first: the late call still fills in what it carries.
            existing.api_received_at = now
            MessageMerger(session, store).add_transcript(conversation, self._transcript_items(request, now))
            store.add_tags(conversation, request.tags)
            store.remember_order_numbers(conversation, request.order_numbers)
            if request.summary and not existing.summary:
                existing.summary = conversation.summary = request.summary
        return HandoffOutcome(handoff=existing, conversation=conversation, created=False)

    @staticmethod
    def _transcript_items(request: HandoffRequest, now: datetime) -> list[tuple[str, str, datetime]]:
        fallback = request.requested_at or now
        return [(item.role, item.text, item.timestamp or fallback) for item in request.transcript if item.text.strip()]

    @staticmethod
    def _keep_current_assignment(engine: AssignmentEngine, conversation: Conversation, now: datetime) -> Assignment:
        """Already with the humans (a second hand-off while open): same agent, same deadline."""
        decision = AssignmentDecision(
            "already_open", agent=conversation.assignee, team=conversation.team.name if conversation.team else None
        )
        return engine.describe(decision, now)

    @staticmethod
    def _system_line(handoff: Handoff, assignment: Assignment, reopened: bool) -> str:
        reason = REASON_LABELS.get(handoff.reason, handoff.reason)
        if handoff.topic:
            reason = f"{reason}: {handoff.topic}"
        decision = assignment.decision
        team = f" ({decision.team})" if decision.team else ""
        if decision.agent:
            where = f"assigned to {decision.agent.name}{team}"
        else:
            where = f"waiting in the unassigned queue{team}"
        prefix = "Handed over by the bot" if reopened else "The bot handed over again"
        return f"{prefix} — {reason}; {where}. Customer told: {assignment.eta_text}."

    def response_for(self, handoff: Handoff) -> dict:
        assignee = handoff.assignee
        return HandoffResponse(
            handoff_id=handoff.handoff_key,
            conversation_id=handoff.conversation.sender_id,
            inbox_conversation_id=handoff.conversation_id,
            status=handoff.status,
            assignee=AssigneeOut(id=assignee.id, first_name=assignee.first_name, pronoun=assignee.pronoun)
            if assignee
            else None,
            team=handoff.team.name if handoff.team else None,
            eta_minutes=handoff.eta_minutes,
            team_back_at=handoff.team_back_at,
            eta_text=handoff.eta_text,
            conversation_url=self.inbox.settings.conversation_url(handoff.conversation_id),
        ).model_dump(mode="json")

    def _slack_message(self, outcome: HandoffOutcome) -> str | None:
        """Slack ping for the topics the team lead listed (refund, complaint, urgent)."""
        handoff = outcome.handoff
        config = self.inbox.assignment_config()
        topics = {handoff.topic, *handoff.tags} & set(config.slack_topics)
        if not topics:
            return None
        customer = outcome.conversation.customer
        who = slack_escape(customer.display_name)
        owner = handoff.assignee.name if handoff.assignee else "nobody yet (queued)"
        summary = f" — {slack_escape(handoff.summary)}" if handoff.summary else ""
        link = slack_link(self.inbox.settings.conversation_url(handoff.conversation_id), "Open conversation")
        return (
            f":rotating_light: {', '.join(sorted(topics)).replace('_', ' ').title()} hand-off from {who}{summary}. "
            f"Assigned to {slack_escape(owner)}. {link}"
        )
