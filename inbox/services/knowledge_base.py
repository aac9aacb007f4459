"""Knowledge-base page: the entries of data/knowledge_base.yml with how the bot used them
(from the `kb_match` slot events on the event stream)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from inbox.models import KbMatch


class KbEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    title: str
    answer: str = ""
    questions: list[str] = []
    link: str | None = None
    active: bool = True


class KbFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: int
    entries: list[KbEntry]


@dataclass
class KbEntryUsage:
    entry_id: str
    title: str
    active: bool
    in_file: bool
    queries: int
    answered: int
    last_used: datetime | None
    questions: int = 0

    @property
    def answered_percent(self) -> float | None:
        return round(100 * self.answered / self.queries, 1) if self.queries else None


def load_kb(path: Path) -> tuple[list[KbEntry], str | None]:
    """Entries, or an error an agent can understand (the page still shows the usage numbers)."""
    if not path.exists():
        return [], f"The knowledge-base file {path} does not exist (KB_PATH)."
    try:
        data = KbFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as error:
        return [], f"The knowledge-base file {path} could not be read: {str(error).splitlines()[0]}"
    if data.version != 1:
        return data.entries, f"{path} has version {data.version}; this page understands version 1."
    return data.entries, None


class KnowledgeBaseUsage:
    def __init__(self, session: Session, path: Path):
        self.session = session
        self.path = path

    def report(self) -> tuple[list[KbEntryUsage], int, str | None]:
        """(one row per entry, lookups without any match, file error)."""
        entries, error = load_kb(self.path)
        stats = {
            entry_id: (queries, answered or 0, last_used)
            for entry_id, queries, answered, last_used in self.session.execute(
                select(
                    KbMatch.entry_id,
                    func.count(),
                    func.sum(case((KbMatch.answered.is_(True), 1), else_=0)),
                    func.max(KbMatch.matched_at),
                ).group_by(KbMatch.entry_id)
            )
        }
        rows = []
        for entry in entries:
            queries, answered, last_used = stats.pop(entry.id, (0, 0, None))
            rows.append(
                KbEntryUsage(
                    entry.id,
                    entry.title,
                    entry.active,
                    True,
                    queries,
                    answered,
                    _aware(last_used),
                    len(entry.questions),
                )
            )
        unmatched = stats.pop(None, (0, 0, None))[0]
        for entry_id, (queries, answered, last_used) in sorted(stats.items()):
            rows.append(
                KbEntryUsage(
                    entry_id, "(not in the knowledge-base file)", False, False, queries, answered, _aware(last_used)
                )
            )
        return rows, unmatched, error


def _aware(value) -> datetime | None:
    if value is None or (isinstance(value, datetime) and value.tzinfo):
        return value
    if isinstance(value, str):  # SQLite returns max() of a datetime column as text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)
