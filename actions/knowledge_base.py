"""The knowledge base: verbatim answers, found by sentence-embedding retrieval.

Public API (also used by the benchmarks, on any file of this schema):

    kb = KnowledgeBase.from_yaml("data/knowledge_base.yml")     # embeds every question once
    kb.search("can I send it back?", k=3)                        # [("returns", 0.82), ("exchanges", 0.61), ...]
    kb.entry("returns").answer                                   # the text sent to the customer, verbatim

Each entry is indexed by its title, its example questions and the sentences of its answer. An entry's
score blends its best cosine similarity with the message (70 %) and the mean of its next two best
(30 %): one lucky near-duplicate question counts less than several fitting texts. This raised top-1
accuracy on held-out paraphrases from 0.79 (best similarity only) to 0.88 (bench/kb_benchmark.py).
Scores are clipped to [0, 1] and are directly comparable with `knowledge_base.answer_threshold` in
escalation.yml.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import yaml

from components.sentence_encoder import DEFAULT_MODEL, load_encoder

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_MARKUP = re.compile(r"[*_~•]+")
BEST_WEIGHT = 0.7  # the rest goes to the mean of the next two best texts of the same entry


def answer_sentences(answer: str) -> List[str]:
    """Lines of an answer worth matching on (WhatsApp markup removed, very short lines skipped)."""
    lines = (_MARKUP.sub(" ", line).strip() for line in answer.splitlines())
    return [line for line in lines if len(line.split()) > 3]


class KnowledgeBaseError(ValueError):
    """The knowledge-base file is missing or does not follow the schema; the message says where."""


@dataclass(frozen=True)
class KnowledgeBaseEntry:
    id: str
    title: str
    answer: str
    questions: Tuple[str, ...]
    link: Optional[str] = None
    active: bool = True

    def reply_text(self, cite_link: bool = True) -> str:
        """The answer exactly as written, plus the link when citing is on."""
        answer = self.answer.rstrip("\n")
        if cite_link and self.link:
            return f"{answer}\nMore: {self.link}"
        return answer


def _parse_entry(raw: Any, position: int, source: str) -> KnowledgeBaseEntry:
    where = f"{source}: entry {position}"
    if not isinstance(raw, dict):
        raise KnowledgeBaseError(f"{where} must be a mapping with id, title, answer, questions")
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not _ID_PATTERN.match(entry_id):
        raise KnowledgeBaseError(f"{where}: `id` must be a snake_case string, got {entry_id!r}")
    where = f"{source}: entry '{entry_id}'"
    for key in ("title", "answer"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise KnowledgeBaseError(f"{where}: `{key}` must be a non-empty string")
    questions = raw.get("questions")
    if not isinstance(questions, list) or not questions:
        raise KnowledgeBaseError(f"{where}: `questions` must be a non-empty list of strings")
    if not all(isinstance(q, str) and q.strip() for q in questions):
        raise KnowledgeBaseError(f"{where}: every question must be a non-empty string")
    link = raw.get("link")
    if link is not None and not (isinstance(link, str) and link.startswith(("http://", "https://"))):
        raise KnowledgeBaseError(f"{where}: `link` must be an http(s) URL, got {link!r}")
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise KnowledgeBaseError(f"{where}: `active` must be true or false, got {active!r}")
    return KnowledgeBaseEntry(
        id=entry_id,
        title=raw["title"].strip(),
        answer=raw["answer"],
        questions=tuple(q.strip() for q in questions),
        link=link,
        active=active,
    )


def parse_entries(document: Any, source: str = "knowledge base") -> List[KnowledgeBaseEntry]:
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise KnowledgeBaseError(f"{source}: expected a mapping with an `entries:` list")
    entries = [_parse_entry(raw, i, source) for i, raw in enumerate(document["entries"], start=1)]
    seen = set()
    for entry in entries:
        if entry.id in seen:
            raise KnowledgeBaseError(f"{source}: duplicate entry id '{entry.id}'")
        seen.add(entry.id)
    return entries


@dataclass
class KnowledgeBase:
    entries: List[KnowledgeBaseEntry]
    model: str = DEFAULT_MODEL
    _encoder: Any = field(default=None, repr=False)
    _matrix: Any = field(default=None, repr=False)  # one row per example text (normalised)
    _row_entry: Any = field(default=None, repr=False)  # entry index of each row

    @classmethod
    def from_yaml(cls, path: str | Path, model: str = DEFAULT_MODEL, encoder: Any = None) -> "KnowledgeBase":
        """Load and validate a KB file and embed every active entry's questions once."""
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise KnowledgeBaseError(f"knowledge base file not found: {path}") from error
        except yaml.YAMLError as error:
            raise KnowledgeBaseError(f"{path}: not valid YAML: {error}") from error
        return cls.from_entries(parse_entries(document, str(path)), model=model, encoder=encoder)

    @classmethod
    def from_entries(
        cls, entries: Iterable[KnowledgeBaseEntry], model: str = DEFAULT_MODEL, encoder: Any = None
    ) -> "KnowledgeBase":
        kb = cls(entries=list(entries), model=model, _encoder=encoder or load_encoder(model))
        kb._index()
        return kb

    def _index(self) -> None:
        texts, owners = [], []
        for position, entry in enumerate(self.entries):
            if not entry.active:
                continue
            for text in (entry.title, *entry.questions, *answer_sentences(entry.answer)):
                texts.append(text)
                owners.append(position)
        self._row_entry = np.asarray(owners, dtype=np.int64)
        self._entry_rows = {i: np.flatnonzero(self._row_entry == i) for i in set(owners)}
        if texts:
            self._matrix = self._embed(texts)
        else:
            self._matrix = np.zeros((0, 1), dtype=np.float32)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._encoder.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def active_entries(self) -> List[KnowledgeBaseEntry]:
        return [e for e in self.entries if e.active]

    def entry(self, entry_id: str) -> KnowledgeBaseEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise KeyError(f"no knowledge-base entry '{entry_id}'")

    def search(self, text: str, k: int = 3) -> List[Tuple[str, float]]:
        """The k best-matching active entries as (entry_id, score) pairs, best first."""
        if not text or not text.strip() or len(self._row_entry) == 0 or k <= 0:
            return []
        similarities = self._matrix @ self._embed([text])[0]
        scored = []
        for position, rows in self._entry_rows.items():
            ranked = np.sort(similarities[rows])[::-1]
            runners_up = ranked[1:3]
            score = ranked[0] if runners_up.size == 0 else (
                BEST_WEIGHT * ranked[0] + (1.0 - BEST_WEIGHT) * float(runners_up.mean())
            )
            scored.append((float(min(max(score, 0.0), 1.0)), position))
        scored.sort(reverse=True)
        return [(self.entries[position].id, score) for score, position in scored[:k]]
