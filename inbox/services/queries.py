"""Read side of the agent screens: the filtered list with counts, search, the transcript."""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, or_, select, text, tuple_
from sqlalchemy.orm import Session

from inbox.models import Conversation, ConversationTag, Customer, Message

VIEWS = {
    "all": "All",
    "mine": "Mine",
    "vip": "VIP",
    "unassigned": "Unassigned",
    "breached": "SLA breached",
    "resolved": "Resolved",
}
PAGE_SIZE = 50
SEARCH_MAX_LENGTH = 100
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class ConversationRow:
    conversation: Conversation
    tags: list[str] = field(default_factory=list)
    snippet: str | None = None


def encode_cursor(conversation: Conversation) -> str:
    raw = f"{conversation.last_message_at.isoformat()}|{conversation.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        moment, conversation_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(moment), int(conversation_id)
    except (ValueError, UnicodeDecodeError):
        return None  # a mangled cursor just starts from the top


def breached_clause(now: datetime):
    return and_(
        Conversation.status == "open",
        Conversation.sla_due_at.is_not(None),
        or_(
            and_(Conversation.first_response_at.is_(None), Conversation.sla_due_at < now),
            Conversation.first_response_at > Conversation.sla_due_at,
        ),
    )


def view_clauses(view: str, agent_id: int, now: datetime) -> list:
    if view == "mine":
        return [Conversation.assignee_id == agent_id, Conversation.status == "open"]
    if view == "vip":
        return [Conversation.is_vip.is_(True), Conversation.status == "open"]
    if view == "unassigned":
        return [Conversation.assignee_id.is_(None), Conversation.status == "open"]
    if view == "breached":
        return [breached_clause(now)]
    if view == "resolved":
        return [Conversation.status == "resolved"]
    return []


class ConversationQueries:
    def __init__(self, session: Session):
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def counts(self, agent_id: int, now: datetime) -> dict[str, int]:
        return {
            # count(*) lets SQLite count from the smallest covering index instead of the table
            view: self.session.scalar(
                select(func.count()).select_from(Conversation).where(*view_clauses(view, agent_id, now))
            )
            or 0
            for view in VIEWS
        }

    def page(self, view: str, agent_id: int, now: datetime, cursor: str | None = None, limit: int = PAGE_SIZE):
        """One page of the list, newest activity first (keyset pagination); returns (rows, next cursor)."""
        query = select(Conversation).where(*view_clauses(view, agent_id, now))
        after = decode_cursor(cursor)
        if after is not None:
            query = query.where(tuple_(Conversation.last_message_at, Conversation.id) < tuple_(*after))
        query = query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit + 1)
        conversations = list(self.session.scalars(query))
        next_cursor = encode_cursor(conversations[limit - 1]) if len(conversations) > limit else None
        return self._rows(conversations[:limit]), next_cursor

    def _rows(self, conversations: list[Conversation], snippets: dict[int, str] | None = None) -> list[ConversationRow]:
        tags = self.tags_for([conversation.id for conversation in conversations])
        return [
            ConversationRow(conversation, tags.get(conversation.id, []), (snippets or {}).get(conversation.id))
            for conversation in conversations
        ]

    def tags_for(self, conversation_ids: list[int]) -> dict[int, list[str]]:
        found: dict[int, list[str]] = defaultdict(list)
        if conversation_ids:
            rows = self.session.execute(
                select(ConversationTag.conversation_id, ConversationTag.tag)
                .where(ConversationTag.conversation_id.in_(conversation_ids))
                .order_by(ConversationTag.tag)
            )
            for conversation_id, tag in rows:
                found[conversation_id].append(tag)
        return found

    # -- search -------------------------------------------------------------------------------

    def search(self, raw_query: str, limit: int = PAGE_SIZE) -> list[ConversationRow]:
        """Customers by name or phone, and message text; most recent activity first."""
        query = raw_query.strip()[:SEARCH_MAX_LENGTH]
        if not query:
            return []
        words = _WORD.findall(query)[:8]
        snippets = self._message_hits(words, limit) if words else {}
        conversation_ids = set(snippets) | self._customer_hits(query, limit)
        if not conversation_ids:
            return []
        conversations = list(
            self.session.scalars(
                select(Conversation)
                .where(Conversation.id.in_(conversation_ids))
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .limit(limit)
            )
        )
        return self._rows(conversations, snippets)

    def _customer_hits(self, query: str, limit: int) -> set[int]:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = [
            Customer.name.ilike(f"%{escaped}%", escape="\\"),
            Customer.username.ilike(f"%{escaped.lstrip('@')}%", escape="\\"),
        ]
        digits = re.sub(r"\D", "", query)
        if len(digits) >= 3:
            matches.append(Customer.external_id.like(f"%{digits}%"))
            # A customer keyed by their BSUID whose phone became known later.
            matches.append(func.replace(func.replace(Customer.phone, " ", ""), "+", "").like(f"%{digits}%"))
        customers = select(Customer.id).where(or_(*matches)).limit(limit * 4)
        rows = self.session.scalars(
            select(Conversation.id)
            .where(Conversation.customer_id.in_(customers))
            .order_by(Conversation.last_message_at.desc())
            .limit(limit)
        )
        return set(rows)

    def _message_hits(self, words: list[str], limit: int) -> dict[int, str]:
        """conversation id -> the most recent matching message (all words; the last one as a prefix)."""
        if self.dialect == "postgresql":
            ts_query = (
                " & ".join(f"{word}" for word in words[:-1]) + (" & " if len(words) > 1 else "") + f"{words[-1]}:*"
            )
            rows = self.session.execute(
                text(
                    "SELECT conversation_id, text FROM messages "
                    "WHERE search_vector @@ to_tsquery('simple', :query) ORDER BY id DESC LIMIT :scan"
                ),
                {"query": ts_query.lower(), "scan": limit * 6},
            )
        else:
            # Each word is quoted, so nothing the agent types is read as FTS5 query syntax.
            fts_query = " ".join(f'"{word}"' for word in words[:-1]) + f' "{words[-1]}"*'
            rows = self.session.execute(
                text(
                    "SELECT m.conversation_id, snippet(messages_fts, 0, '', '', '…', 16) "
                    "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                    "WHERE messages_fts MATCH :query ORDER BY messages_fts.rowid DESC LIMIT :scan"
                ),
                {"query": fts_query.strip(), "scan": limit * 6},
            )
        hits: dict[int, str] = {}
        for conversation_id, snippet in rows:
            if conversation_id not in hits:
                hits[conversation_id] = snippet[:200]
            if len(hits) >= limit:
                break
        return hits

    # -- one conversation ------------------------------------------------------------------------

    def transcript(self, conversation_id: int, limit: int = 500) -> list[Message]:
        newest = list(
            self.session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(limit)
            )
        )
        return list(reversed(newest))
