"""Quick replies (typed as /shortcut in the reply box): seeded from YAML, edited by admins."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from sqlalchemy import delete, func, select

from inbox.models import QuickReply

if TYPE_CHECKING:  # a type only: inbox.context imports the services
    from inbox.context import Inbox

SHORTCUT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class QuickReplyError(ValueError):
    pass


class QuickReplyBook:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    def save(self, reply_id: int | None, shortcut: str, text: str) -> None:
        shortcut = shortcut.strip().lstrip("/").lower()
        text = text.strip()
        if not SHORTCUT_PATTERN.match(shortcut):
            raise QuickReplyError(
                "A shortcut uses lower-case letters, digits, '-' and '_' (up to 40), e.g. 'vip-thanks'."
            )
        if not text or len(text) > 4096:
            raise QuickReplyError("The reply text is required (at most 4096 characters).")
        with self.inbox.db.write() as session:
            clash = session.scalars(select(QuickReply).where(QuickReply.shortcut == shortcut)).one_or_none()
            if clash is not None and clash.id != reply_id:
                raise QuickReplyError(f"/{shortcut} exists already.")
            reply = session.get(QuickReply, reply_id) if reply_id else None
            if reply is None:
                reply = QuickReply(shortcut=shortcut, text=text)
                session.add(reply)
            reply.shortcut, reply.text, reply.updated_at = shortcut, text, self.inbox.clock()

    def delete(self, reply_id: int) -> None:
        with self.inbox.db.write() as session:
            session.execute(delete(QuickReply).where(QuickReply.id == reply_id))


def seed_quick_replies(session, path: Path) -> int:
    """Fills an empty quick-reply table from the YAML seed file; returns how many were added."""
    if session.scalar(select(func.count(QuickReply.id))) or not path.exists():
        return 0
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    for entry in entries:
        session.add(QuickReply(shortcut=str(entry["shortcut"]), text=str(entry["text"]).strip()))
    return len(entries)
