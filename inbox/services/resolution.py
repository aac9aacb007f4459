"""Resolve and hand back to the bot: resume the Rasa conversation first, then close ours."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inbox.models import Agent, Conversation, Handoff
from inbox.services.conversation_store import ConversationStore
from inbox.services.rasa import RasaUnavailable

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox


class ResolveError(Exception):
    pass


class ResolveAndHandBack:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def resolve(self, conversation_id: int, agent: Agent) -> None:
        with self.inbox.db.read() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise ResolveError("There is no such conversation.")
            if conversation.status != "open":
                raise ResolveError("This conversation is not open; the bot already has it.")
            sender_id, handoff_at_start = conversation.sender_id, conversation.current_handoff_id
        try:
            self.inbox.rasa.resume_conversation(sender_id)
        except RasaUnavailable as error:
            raise ResolveError(
                f"Could not hand the conversation back to the bot. {error} It stays open; nothing was lost — try again."
            ) from error
        now = self.inbox.clock()
        with self.inbox.db.write() as session:
            store = ConversationStore(session)
            conversation = store.lock(conversation_id)
            if conversation.status != "open":
                return  # resolved by a colleague meanwhile
            if conversation.current_handoff_id != handoff_at_start:
                raise ResolveError("A new hand-off arrived while resolving; please look at it and resolve again.")
            conversation.status = "resolved"
            conversation.resolved_at = now
            conversation.waiting_since = None
            handoff = session.get(Handoff, conversation.current_handoff_id) if conversation.current_handoff_id else None
            if handoff is not None:
                handoff.resolved_at = now
            store.add_message(conversation, "system", f"Resolved by {agent.name} and handed back to the bot.", now)
