"""What an agent does to a conversation besides replying: notes, tags, VIP star, (re)assignment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from inbox.models import Agent, Conversation, ConversationTag, Customer, Team
from inbox.services.conversation_store import ConversationStore, normalise_tag

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

MAX_NOTE_LENGTH = 10_000


class ActionError(ValueError):
    pass


class InternalNotes:
    """Notes are for the team only: stored as 'note' messages, never sent to the customer."""

    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def add(self, conversation_id: int, agent: Agent, text: str) -> None:
        text = text.strip()
        if not text:
            raise ActionError("The note is empty.")
        if len(text) > MAX_NOTE_LENGTH:
            raise ActionError(f"Notes can have at most {MAX_NOTE_LENGTH} characters.")
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            store.add_message(store.lock(conversation_id), "note", text, self.inbox.clock(), agent_id=agent.id)


class Tagging:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def add(self, conversation_id: int, raw_tags: str) -> list[str]:
        wanted = [part for part in raw_tags.replace(",", " ").split() if part]
        invalid = [part for part in wanted if normalise_tag(part) is None]
        if not wanted or invalid:
            raise ActionError(
                "Tags use letters, digits, '-' and '_' (up to 40 characters), separated by spaces or commas."
            )
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            return store.add_tags(store.lock(conversation_id), wanted)

    def remove(self, conversation_id: int, tag: str) -> None:
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            conversation = store.lock(conversation_id)
            session.execute(
                delete(ConversationTag).where(
                    ConversationTag.conversation_id == conversation_id, ConversationTag.tag == tag
                )
            )
            store.touch(conversation)


class VipFlag:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def set(self, conversation_id: int, is_vip: bool) -> None:
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            conversation = store.lock(conversation_id)
            customer = session.get(Customer, conversation.customer_id)
            customer.is_vip = is_vip
            # The list filters read the copy on each of the customer's conversations.
            session.execute(update(Conversation).where(Conversation.customer_id == customer.id).values(is_vip=is_vip))
            store.touch(conversation)


class Reassignment:
    """Assignment by hand: to an agent, to a team's queue, or back to the unassigned queue."""

    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def assign(self, conversation_id: int, actor: Agent, agent_id: int | None, team_id: int | None) -> None:
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            conversation = store.lock(conversation_id)
            if conversation.status != "open":
                raise ActionError("Only a conversation handed over to the team can be assigned.")
            target = session.get(Agent, agent_id) if agent_id else None
            if agent_id and (target is None or not target.is_active):
                raise ActionError("That agent does not exist or is deactivated.")
            team = session.get(Team, team_id) if team_id else None
            if team_id and team is None:
                raise ActionError("That team does not exist.")
            if conversation.assignee_id == agent_id and conversation.team_id == team_id:
                return
            conversation.assignee_id = agent_id
            conversation.team_id = team_id
            if target is not None:
                target.last_assigned_at = now
            where = target.name if target else "the unassigned queue"
            if team is not None:
                where += f" ({team.name})"
            store.add_message(conversation, "system", f"{actor.name} assigned this conversation to {where}.", now)


class AgentPresence:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def set_status(self, agent_id: int, status: str) -> None:
        if status not in ("online", "away"):
            raise ActionError("Status is 'online' or 'away'.")
        with self.inbox.db.write() as session:
            session.execute(update(Agent).where(Agent.id == agent_id).values(status=status))


def team_options(session) -> list[Team]:
    return list(session.scalars(select(Team).order_by(Team.name)))
