"""The knowledge base: verbatim answers, found by sentence-embedding retrieval, with a calibrated
probability that the entry found really answers the question.

Public API (also used by the benchmarks, on any file of this schema):

    kb = KnowledgeBase.from_yaml("data/knowledge_base.yml")     # embeds once, fits the answer probability
    kb.search("do you have cash on delivery?", k=3)              # [("cash_on_delivery", 0.99), ("shipping", 0.01), ...]
    kb.best_match("can I send it back?")                         # Match("returns", probability=0.41, similarity=0.60)
    kb.entry("returns").answer                                   # the text sent to the customer, verbatim

Each entry is indexed by its title, its example questions and the sentences of its answer. An entry's
similarity blends its best cosine similarity with the message (70 %) and the mean of its next two best
(30 %): one lucky near-duplicate question counts less than several fitting texts. This raised top-1
accuracy on held-out paraphrases from 0.79 (best similarity only) to 0.88 (bench/kb_benchmark.py).

The score `search` returns is not that similarity but the probability that the entry answers the
question, fitted at load time from the entry questions (answerable) against the `not_covered`
questions and the near-miss file (not answerable): actions/kb_answerability.py. It is what
`knowledge_base.answer_threshold` in escalation.yml is compared with.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import yaml

from actions.kb_answerability import AnswerCalibration, CalibrationError, feature_matrix
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
    not_covered: Tuple[str, ...] = ()  # near questions this answer does NOT answer

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
    not_covered = _question_list(raw.get("not_covered", []), f"{where}: `not_covered`")
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
        not_covered=tuple(not_covered),
    )


def _question_list(value: Any, where: str) -> List[str]:
    if not isinstance(value, list) or not all(isinstance(q, str) and q.strip() for q in value):
        raise KnowledgeBaseError(f"{where} must be a list of non-empty strings (questions), got {value!r}")
    return [q.strip() for q in value]


def _normalised(question: str) -> str:
    return " ".join(question.lower().split())


def parse_entries(document: Any, source: str = "knowledge base") -> List[KnowledgeBaseEntry]:
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise KnowledgeBaseError(f"{source}: expected a mapping with an `entries:` list")
    entries = [_parse_entry(raw, i, source) for i, raw in enumerate(document["entries"], start=1)]
    seen = set()
    for entry in entries:
        if entry.id in seen:
            raise KnowledgeBaseError(f"{source}: duplicate entry id '{entry.id}'")
        seen.add(entry.id)
    answered_by = {_normalised(q): entry.id for entry in entries for q in entry.questions}
    for entry in entries:
        for question in entry.not_covered:
            if _normalised(question) in answered_by:
                raise KnowledgeBaseError(
                    f"{source}: entry '{entry.id}': not_covered question {question!r} is also a question "
                    f"of entry '{answered_by[_normalised(question)]}' - it cannot be both answered and not"
                )
    return entries


def parse_near_misses(document: Any, source: str, entries: Sequence[KnowledgeBaseEntry]) -> List[str]:
    """The `questions:` of a near-miss file (questions no entry answers), checked like the KB."""
    if not isinstance(document, dict) or "questions" not in document:
        raise KnowledgeBaseError(f"{source}: expected a mapping with a `questions:` list")
    questions = _question_list(document["questions"], f"{source}: `questions`")
    answered_by = {_normalised(q): entry.id for entry in entries for q in entry.questions}
    for question in questions:
        if _normalised(question) in answered_by:
            raise KnowledgeBaseError(
                f"{source}: near miss {question!r} is a question of entry '{answered_by[_normalised(question)]}'"
            )
    return questions


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise KnowledgeBaseError(f"{what} not found: {path}") from error
    except yaml.YAMLError as error:
        raise KnowledgeBaseError(f"{path}: not valid YAML: {error}") from error


@dataclass(frozen=True)
class Match:
    """A knowledge-base entry found for a question."""

    entry_id: str
    probability: float  # calibrated P(this entry answers the question), compared with the threshold
    similarity: float  # the blended cosine similarity it was computed from (0-1)


@dataclass
class KnowledgeBase:
    entries: List[KnowledgeBaseEntry]
    model: str = DEFAULT_MODEL
    near_misses: Tuple[str, ...] = ()  # questions no entry answers (besides the entries' not_covered)
    _encoder: Any = field(default=None, repr=False)
    _matrix: Any = field(default=None, repr=False)  # one row per indexed text (normalised)
    _row_entry: Any = field(default=None, repr=False)  # entry index of each row
    _near_miss_matrix: Any = field(default=None, repr=False)  # one row per near-miss question
    calibration: Optional[AnswerCalibration] = field(default=None, repr=False)

    @classmethod
    def from_yaml(cls, path: str | Path, model: str = DEFAULT_MODEL, encoder: Any = None) -> "KnowledgeBase":
        """Load and validate a KB file (and its near-miss file), embed every text once, fit the
        answer probability."""
        path = Path(path)
        document = _read_yaml(path, "knowledge base file")
        entries = parse_entries(document, str(path))
        near_misses: List[str] = []
        if document.get("near_misses") is not None:
            if not isinstance(document["near_misses"], str):
                raise KnowledgeBaseError(f"{path}: `near_misses` must be a file name, got {document['near_misses']!r}")
            near_path = path.parent / document["near_misses"]
            near_misses = parse_near_misses(_read_yaml(near_path, "near-miss file"), str(near_path), entries)
        return cls.from_entries(entries, model=model, encoder=encoder, near_misses=near_misses)

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[KnowledgeBaseEntry],
        model: str = DEFAULT_MODEL,
        encoder: Any = None,
        near_misses: Iterable[str] = (),
    ) -> "KnowledgeBase":
        kb = cls(
            entries=list(entries), model=model, near_misses=tuple(near_misses),
            _encoder=encoder or load_encoder(model),
        )
        kb._index()
        return kb

    def _index(self) -> None:
        texts, owners, is_question = [], [], []
        for position, entry in enumerate(self.entries):
            if not entry.active:
                continue
            sentences = answer_sentences(entry.answer)
            texts += [entry.title, *entry.questions, *sentences]
            owners += [position] * (1 + len(entry.questions) + len(sentences))
            is_question += [False] + [True] * len(entry.questions) + [False] * len(sentences)
        near_misses = list(dict.fromkeys(
            [q for entry in self.active_entries for q in entry.not_covered] + list(self.near_misses)
        ))
        self._row_entry = np.asarray(owners, dtype=np.int64)
        self._entry_positions = sorted(set(owners))
        self._entry_rows = [np.flatnonzero(self._row_entry == i) for i in self._entry_positions]
        if not texts:
            self._matrix = np.zeros((0, 1), dtype=np.float32)
            return
        vectors = self._embed(texts + near_misses)  # one encoder call for everything
        self._matrix, self._near_miss_matrix = vectors[: len(texts)], vectors[len(texts):]
        try:
            self._calibrate(np.flatnonzero(is_question))
        except CalibrationError as error:
            raise KnowledgeBaseError(str(error)) from error

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._encoder.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    # --- scoring ------------------------------------------------------------------------------
    def _entry_scores(self, similarities: np.ndarray) -> np.ndarray:
        """Blended score of each active entry (columns) for each row of `similarities` (questions x
        indexed texts; -inf marks a text left out)."""
        scores = np.empty((len(similarities), len(self._entry_rows)))
        for column, rows in enumerate(self._entry_rows):
            ranked = -np.sort(-similarities[:, rows], axis=1)[:, :3]
            runners_up = ranked[:, 1:]
            finite = np.isfinite(runners_up)
            count = finite.sum(axis=1)
            mean = np.where(finite, runners_up, 0.0).sum(axis=1) / np.maximum(count, 1)
            blended = np.where(count > 0, BEST_WEIGHT * ranked[:, 0] + (1.0 - BEST_WEIGHT) * mean, ranked[:, 0])
            scores[:, column] = np.clip(blended, 0.0, 1.0)
        return scores

    def _near_miss_similarity(self, vectors: np.ndarray, leave_out_self: bool = False) -> np.ndarray:
        if self._near_miss_matrix is None or len(self._near_miss_matrix) == 0:
            return np.zeros(len(vectors))
        similarities = vectors @ self._near_miss_matrix.T
        if leave_out_self:  # `vectors` are the near misses themselves
            np.fill_diagonal(similarities, -np.inf)
        best = similarities.max(axis=1)
        return np.where(np.isfinite(best), best, 0.0)

    def _calibrate(self, question_rows: np.ndarray) -> None:
        """Fit the answer probability: entry questions left out of the index one at a time
        (answerable when their own entry still comes first) against the near misses."""
        questions = self._matrix[question_rows]
        similarities = questions @ self._matrix.T
        similarities[np.arange(len(question_rows)), question_rows] = -np.inf
        scores = self._entry_scores(similarities)
        candidate = scores.argmax(axis=1)
        own = np.searchsorted(self._entry_positions, self._row_entry[question_rows])
        features = [feature_matrix(scores, self._near_miss_similarity(questions), candidate)]
        answerable = [candidate == own]
        if len(self._near_miss_matrix):
            scores = self._entry_scores(self._near_miss_matrix @ self._matrix.T)
            near = self._near_miss_similarity(self._near_miss_matrix, leave_out_self=True)
            features.append(feature_matrix(scores, near, scores.argmax(axis=1)))
            answerable.append(np.zeros(len(scores), dtype=bool))
        self.calibration = AnswerCalibration.fit(np.vstack(features), np.concatenate(answerable))

    # --- lookup -------------------------------------------------------------------------------
    @property
    def active_entries(self) -> List[KnowledgeBaseEntry]:
        return [e for e in self.entries if e.active]

    def entry(self, entry_id: str) -> KnowledgeBaseEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise KeyError(f"no knowledge-base entry '{entry_id}'")

    def matches(self, text: str, k: int = 3) -> List[Match]:
        """The k most similar entries, best first, each with its answer probability."""
        if not text or not text.strip() or len(self._row_entry) == 0 or k <= 0:
            return []
        vector = self._embed([text])
        scores = self._entry_scores(vector @ self._matrix.T)
        columns = np.arange(scores.shape[1])
        features = feature_matrix(
            np.repeat(scores, len(columns), axis=0), np.repeat(self._near_miss_similarity(vector), len(columns)), columns
        )
        probabilities = self.calibration.probability(features)
        order = np.argsort(-scores[0], kind="stable")[:k]  # retrieval ranks; the probability decides
        return [
            Match(self.entries[self._entry_positions[c]].id, float(probabilities[c]), float(scores[0, c]))
            for c in order
        ]

    def best_match(self, text: str) -> Optional[Match]:
        found = self.matches(text, k=1)
        return found[0] if found else None

    def search(self, text: str, k: int = 3) -> List[Tuple[str, float]]:
        """The k best entries as (entry_id, answer probability) pairs, best first."""
        return [(match.entry_id, match.probability) for match in self.matches(text, k)]
