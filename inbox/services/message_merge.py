"""One transcript out of two overlapping sources.

Customer and bot messages reach the inbox twice: in the hand-off call's transcript and on Rasa's
event stream, in either order. A message from one source is matched to an unmatched copy from the
other source (same conversation, role and text, timestamps within a few seconds; the closest wins)
instead of being stored again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from inbox.models import Conversation, Message
from inbox.services.conversation_store import ConversationStore

MATCH_WINDOW = timedelta(seconds=10)


class BatchMessages:
    """What the event stream learned in one query per batch, under its conversations' row locks, so that
    `add_from_event` needs no query for them: none of the batch's event ids is stored yet (those it stores
    are added to `event_ids`), and `copies` holds, by conversation, every message stored from a hand-off
    call's transcript that no event has claimed and that the batch's events could match."""

    def __init__(self, conversation_ids: set[int], copies: dict[int, list[Message]]):
        self.conversation_ids = conversation_ids
        self.copies = copies
        self.event_ids: set[int] = set()


class MessageMerger:
    def __init__(self, session: Session, store: ConversationStore):
        self.session = session
        self.store = store

    def _candidates(self, conversation: Conversation, role: str, text: str, at: datetime, *extra_filters):
        return list(
            self.session.scalars(
                select(Message).where(
                    Message.conversation_id == conversation.id,
                    Message.created_at >= at - MATCH_WINDOW,
                    Message.created_at <= at + MATCH_WINDOW,
                    Message.role == role,
                    Message.text == text,
                    *extra_filters,
                )
            )
        )

    @staticmethod
    def _closest(candidates: list[Message], at: datetime) -> Message | None:
        return min(candidates, key=lambda message: abs(message.created_at - at), default=None)

    def add_from_event(
        self,
        conversation: Conversation,
        role: str,
        text: str,
        at: datetime,
        rasa_event_id: int,
        batch: BatchMessages | None = None,
    ) -> Message | None:
        """Returns the stored message, or None if this event was applied before."""
        if batch is not None and conversation.id in batch.conversation_ids:
            if rasa_event_id in batch.event_ids:
                return None
            batch.event_ids.add(rasa_event_id)
            copy = self._closest(
                [
                    message
                    for message in batch.copies.get(conversation.id, ())
                    if message.rasa_event_id is None
                    and message.role == role
                    and message.text == text
                    and abs(message.created_at - at) <= MATCH_WINDOW
                ],
                at,
            )
        else:
            if self.session.scalar(select(Message.id).where(Message.rasa_event_id == rasa_event_id)) is not None:
                return None
            copy = self._closest(
                self._candidates(
                    conversation, role, text, at, Message.rasa_event_id.is_(None), Message.from_transcript.is_(True)
                ),
                at,
            )
        if copy is not None:
            copy.rasa_event_id = rasa_event_id
            return copy
        return self.store.add_message(conversation, role, text, at, rasa_event_id=rasa_event_id)

    def add_transcript(self, conversation: Conversation, items: list[tuple[str, str, datetime]]) -> int:
        """Adds (role, text, timestamp) items not stored yet; returns how many were new.
        One query finds every stored message the transcript could overlap with."""
        if not items:
            return 0
        stored = list(
            self.session.scalars(
                select(Message).where(
                    Message.conversation_id == conversation.id,
                    Message.created_at >= min(at for _, _, at in items) - MATCH_WINDOW,
                    Message.created_at <= max(at for _, _, at in items) + MATCH_WINDOW,
                )
            )
        )
        matched: set[int] = set()
        added = 0
        for role, text, at in items:
            candidates = [
                message
                for message in stored
                if id(message) not in matched
                and message.role == role
                and message.text == text
                and abs(message.created_at - at) <= MATCH_WINDOW
            ]
            copy = self._closest(candidates, at)
            if copy is None:
                # A transcript item may repeat within one call (the customer said "hi" twice): the new
                # row joins `stored` so that the second copy gets its own row, not a match.
                copy = self.store.add_message(conversation, role, text, at, from_transcript=True)
                stored.append(copy)
                added += 1
            copy.from_transcript = True
            matched.add(id(copy))
        return added
