"""The knowledge base: verbatim answers, the entry a question belongs to, and a calibrated probability
that the entry really answers it.

Public API (also used by the benchmarks, on any file of this schema):

    kb = KnowledgeBase.from_yaml("data/knowledge_base.yml")     # validates, embeds once, fits the classifier
    kb.search("do you have cash on delivery?", k=3)              # [("cash_on_delivery", 0.97), ("shipping", 0.13), ...]
    kb.best_match("retrn polcy kya hai")                         # Match("returns", probability=0.41, similarity=0.64)
    kb.entry("returns").answer                                   # the text sent to the customer, verbatim

The entries are treated like intents: at load time a classifier learns from each entry's questions,
title and answer sentences which entry a question belongs to, and from the `not_covered` questions and
the near-miss file when none does (actions/kb_answerability.py). Until issue 12 the nearest entry by
cosine similarity was taken instead; the classifier raised top-1 accuracy on the 84 test paraphrases
from 0.857 to 0.988 (bench/kb_benchmark.py), mostly on Hinglish and terse wordings.

The score `search` returns is the probability that the entry answers the question, fitted on held-out
examples of both outcomes. It is what `knowledge_base.answer_threshold` in escalation.yml is compared with.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np
import yaml

from actions.kb_answerability import (
    FEATURES, NONE, AnswerCalibration, CalibrationError, EntryClassifier, feature_matrix, fit_answerability, stems,
    topic_words,
)
from actions.embedding_cache import EmbeddingCache
from actions.kb_fit_cache import FitCache, fit_key
from components import text_embedding
from components.sentence_encoder import DEFAULT_MODEL, load_encoder

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_MARKUP = re.compile(r"[*_~•]+")
FROM_ENVIRONMENT = "environment"  # embedding_cache default: EmbeddingCache.from_environment()


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
    # Questions of labelled sets (retired TEST sets) this entry answers: learnt from like `questions`,
    # but kept apart so the designer's own list stays as written and topic words come from it alone.
    labelled: Tuple[str, ...] = ()

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


def _answered_by(entries: Sequence[KnowledgeBaseEntry]) -> Dict[str, str]:
    """{normalised question: id of the entry it is a question of}."""
    return {_normalised(q): entry.id for entry in entries for q in entry.questions}


def parse_entries(document: Any, source: str = "knowledge base") -> List[KnowledgeBaseEntry]:
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise KnowledgeBaseError(f"{source}: expected a mapping with an `entries:` list")
    entries = [_parse_entry(raw, i, source) for i, raw in enumerate(document["entries"], start=1)]
    seen = set()
    for entry in entries:
        if entry.id in seen:
            raise KnowledgeBaseError(f"{source}: duplicate entry id '{entry.id}'")
        seen.add(entry.id)
    answered_by = _answered_by(entries)
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
    answered_by = _answered_by(entries)
    for question in questions:
        if _normalised(question) in answered_by:
            raise KnowledgeBaseError(
                f"{source}: near miss {question!r} is a question of entry '{answered_by[_normalised(question)]}'"
            )
    return questions


_GLOSSARY_WORD = re.compile(r"[a-z]+")


def parse_glossary(document: Any, source: str) -> Dict[str, str]:
    """The `words:` of a glossary file: {customer's word: what it means in English}, e.g. {"naap": "size
    measurement"}. Keys are single lower-case words (letters only, as `gloss` reads them); values the meaning
    in plain words."""
    if not isinstance(document, dict) or not isinstance(document.get("words"), dict) or not document["words"]:
        raise KnowledgeBaseError(f"{source}: expected a mapping with a non-empty `words:` mapping (word: meaning)")
    glossary: Dict[str, str] = {}
    for word, meaning in document["words"].items():
        if not isinstance(word, str) or not _GLOSSARY_WORD.fullmatch(word):
            raise KnowledgeBaseError(f"{source}: {word!r} must be one lower-case word of letters a-z")
        if not isinstance(meaning, str) or not meaning.strip():
            raise KnowledgeBaseError(f"{source}: the meaning of {word!r} must be non-empty text, got {meaning!r}")
        glossary[word] = " ".join(meaning.split())
    return glossary


def gloss(text: str, glossary: Dict[str, str]) -> str:
    """`text` with the meanings of its glossary words after it ("naap ki table kahan hai | size measurement"),
    each meaning once; `text` itself when it has none. What the entry classifier's n-grams read, for the
    knowledge base's texts and for every question alike."""
    if not glossary:
        return text
    meanings = list(dict.fromkeys(glossary[w] for w in _GLOSSARY_WORD.findall(text.lower()) if w in glossary))
    return f"{text} | {' '.join(meanings)}" if meanings else text


def parse_labelled_set(
    document: Any, source: str, entries: Sequence[KnowledgeBaseEntry]
) -> Tuple[Dict[str, List[str]], List[str]]:
    """A labelled set (the schema of bench/kb_benchmark.py's files: `paraphrases: [{text, entry_id}]`,
    `unanswerable: [text]`, e.g. a retired TEST set): ({entry id: its questions}, questions no entry
    answers), checked like the KB. A question of an inactive entry is kept out, like the entry."""
    if not isinstance(document, dict) or not ({"paraphrases", "unanswerable"} & set(document)):
        raise KnowledgeBaseError(f"{source}: expected a mapping with `paraphrases:` and/or `unanswerable:`")
    known = {entry.id: entry for entry in entries}
    by_entry: Dict[str, List[str]] = {}
    paraphrases = document.get("paraphrases") or []
    if not isinstance(paraphrases, list):
        raise KnowledgeBaseError(f"{source}: `paraphrases` must be a list of {{text, entry_id}}")
    for number, item in enumerate(paraphrases, start=1):
        if not (isinstance(item, dict) and isinstance(item.get("text"), str) and item["text"].strip()):
            raise KnowledgeBaseError(f"{source}: paraphrase {number} must be {{text: ..., entry_id: ...}}, got {item!r}")
        entry = known.get(item.get("entry_id"))
        if entry is None:
            raise KnowledgeBaseError(
                f"{source}: paraphrase {number} ({item['text']!r}) names entry {item.get('entry_id')!r}, "
                f"which the knowledge base does not have"
            )
        if entry.active:
            by_entry.setdefault(entry.id, []).append(item["text"].strip())
    unanswerable = _question_list(document.get("unanswerable") or [], f"{source}: `unanswerable`")
    not_answered = {_normalised(q) for entry in entries for q in entry.not_covered} | {_normalised(q) for q in unanswerable}
    answered_by = {_normalised(q): entry_id for entry_id, qs in by_entry.items() for q in qs}
    answered_by.update(_answered_by(entries))
    for question in unanswerable:
        if _normalised(question) in answered_by:
            raise KnowledgeBaseError(
                f"{source}: unanswerable {question!r} is also a question of entry '{answered_by[_normalised(question)]}'"
            )
    for entry_id, questions in by_entry.items():
        for question in questions:
            if _normalised(question) in not_answered:
                raise KnowledgeBaseError(
                    f"{source}: paraphrase {question!r} of entry '{entry_id}' is also a question no entry answers"
                )
    return by_entry, unanswerable


def _named_file(document: Dict[str, Any], key: str, path: Path, what: str) -> Optional[Tuple[Any, Path]]:
    """(its YAML, its path) for the file the KB file names under `key` (relative to the KB file), or None."""
    name = document.get(key)
    if name is None:
        return None
    if not isinstance(name, str):
        raise KnowledgeBaseError(f"{path}: `{key}` must be a file name, got {name!r}")
    named = path.parent / name
    return _read_yaml(named, what), named


def linked_files(document: Any, path: Path) -> List[Path]:
    """The other files a KB file names (its near-miss file, glossary and labelled sets): they decide its answers
    too. Names that are not strings are left to the loader's validation."""
    if not isinstance(document, dict):
        return []
    names = [document.get("near_misses"), document.get("glossary")] + list(document.get("labelled_sets") or [])
    return [path.parent / name for name in names if isinstance(name, str)]


def copy_knowledge_base(path: Path, directory: Path) -> Path:
    """Copy a KB file with the files it names (same relative paths) into `directory`; the copy's path.
    For systems and tests that edit or serve their own copy."""
    path, directory = Path(path), Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / path.name
    shutil.copy(path, copy)
    for linked in linked_files(yaml.safe_load(path.read_text(encoding="utf-8")), path):
        target = directory / linked.relative_to(path.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(linked, target)
    return copy


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
    similarity: float  # mean cosine similarity of the entry's 3 nearest example texts (0-1), for people
    # The entry classifier's probability of this entry (all entries and NONE sum to 1): which entry the
    # question is about, before calibration. Compared between two entries by the follow-up rule
    # (actions/answers.py, `knowledge_base.follow_up_keeps_topic`).
    share: float = 0.0


def entries_declared_in(text: str, declared: Sequence[Tuple[str, Sequence[str]]]) -> Set[str]:
    """The entries (ids) whose designer-declared topic words `text` uses (`declared`: (entry id, words) pairs,
    escalation.yml `knowledge_base.elliptical_follow_ups.topic_words`), word stems compared as for learnt ones."""
    words = set(stems(text))
    return {entry for entry, listed in declared if words.intersection(stems(" ".join(listed)))}


@dataclass
class KnowledgeBase:
    entries: List[KnowledgeBaseEntry]
    model: str = DEFAULT_MODEL
    near_misses: Tuple[str, ...] = ()  # questions no entry answers (besides the entries' not_covered)
    _encoder: Any = field(default=None, repr=False)
    _positions: List[int] = field(default_factory=list, repr=False)  # entry index of each classifier class
    classifier: Optional[EntryClassifier] = field(default=None, repr=False)
    calibration: Optional[AnswerCalibration] = field(default=None, repr=False)
    embedding_cache: Optional[EmbeddingCache] = field(default=None, repr=False)  # None: embed every start
    _topic_words: Dict[str, str] = field(default_factory=dict, repr=False)  # word stem -> entry id it names
    glossary: Dict[str, str] = field(default_factory=dict, repr=False)  # customer's word -> meaning (`gloss`)
    # components/text_embedding.encoder_identity of the encoder: a vector the NLU carried with this identity is
    # the one `embed` would compute (None: never reuse one).
    _encoder_identity: Optional[str] = field(default=None, repr=False)

    @classmethod
    def from_yaml(
        cls, path: str | Path, model: str = DEFAULT_MODEL, encoder: Any = None,
        embedding_cache: Any = FROM_ENVIRONMENT, precision: str = "float",
    ) -> "KnowledgeBase":
        """Load and validate a KB file (and its near-miss file), embed every text once (or read its
        embedding from the cache, actions/embedding_cache.py), fit the entry classifier and the
        answer probability."""
        path = Path(path)
        document = _read_yaml(path, "knowledge base file")
        entries = parse_entries(document, str(path))
        near_misses: List[str] = []
        named = _named_file(document, "near_misses", path, "near-miss file")
        if named is not None:
            near_misses = parse_near_misses(named[0], str(named[1]), entries)
        labelled_sets = document.get("labelled_sets") or []
        if not isinstance(labelled_sets, list) or not all(isinstance(name, str) for name in labelled_sets):
            raise KnowledgeBaseError(f"{path}: `labelled_sets` must be a list of file names, got {labelled_sets!r}")
        extra: Dict[str, List[str]] = {}
        for name in labelled_sets:
            set_path = path.parent / name
            by_entry, unanswerable = parse_labelled_set(_read_yaml(set_path, "labelled set"), str(set_path), entries)
            for entry_id, questions in by_entry.items():
                extra.setdefault(entry_id, []).extend(questions)
            near_misses += unanswerable
        if extra:
            entries = [dataclasses.replace(entry, labelled=tuple(extra.get(entry.id, ()))) for entry in entries]
        named = _named_file(document, "glossary", path, "glossary file")
        glossary = parse_glossary(named[0], str(named[1])) if named is not None else {}
        return cls.from_entries(
            entries, model=model, encoder=encoder, near_misses=near_misses, embedding_cache=embedding_cache,
            precision=precision, glossary=glossary,
        )

    @classmethod
    def from_entries(
        cls,
        entries: Iterable[KnowledgeBaseEntry],
        model: str = DEFAULT_MODEL,
        encoder: Any = None,
        near_misses: Iterable[str] = (),
        embedding_cache: Any = FROM_ENVIRONMENT,
        precision: str = "float",
        glossary: Optional[Dict[str, str]] = None,
    ) -> "KnowledgeBase":
        """`precision`: the encoder's ("float" or "int8", components/sentence_encoder.load_encoder); ignored when
        `encoder` is given. `glossary`: {word: meaning} (`parse_glossary`), read into every text (`gloss`)."""
        if embedding_cache == FROM_ENVIRONMENT:
            embedding_cache = EmbeddingCache.from_environment()
        kb = cls(
            entries=list(entries), model=model, near_misses=tuple(near_misses),
            _encoder=encoder or load_encoder(model, precision), embedding_cache=embedding_cache,
            glossary=dict(glossary or {}),
        )
        kb._encoder_identity = text_embedding.encoder_identity(model, kb._encoder)
        kb._fit()
        return kb

    def _fit(self) -> None:
        texts, labels, is_question = [], [], []
        self._positions = [position for position, entry in enumerate(self.entries) if entry.active]
        for label, position in enumerate(self._positions):
            entry = self.entries[position]
            sentences = answer_sentences(entry.answer)
            texts += [*entry.questions, entry.title, *sentences]
            labels += [label] * (len(entry.questions) + 1 + len(sentences))
            is_question += [True] * len(entry.questions) + [False] * (1 + len(sentences))
        if not texts:
            return
        # Topic words from the designer's texts only: their thresholds were chosen on those (escalation.yml
        # elliptical_follow_ups); the labelled sets' wordings made "sale" and "paying" topic words.
        self._topic_words = {
            stem: self.entries[self._positions[label]].id
            for stem, label in topic_words(texts, labels, len(self._positions)).items()
        }
        for label, position in enumerate(self._positions):
            labelled = [q for q in self.entries[position].labelled if q not in self.entries[position].questions]
            texts += labelled
            labels += [label] * len(labelled)
            is_question += [True] * len(labelled)
        near_misses = list(dict.fromkeys(
            [q for entry in self.active_entries for q in entry.not_covered] + list(self.near_misses)
        ))
        texts += near_misses
        labels += [NONE] * len(near_misses)
        is_question += [True] * len(near_misses)
        # The classifier's word and character n-grams read each text with its glossary meanings (`gloss`); the
        # sentence embedding reads the text as written, so the vector the NLU carried for a question stays usable.
        # Session 25: glossing the embedding's input too gave the same answers and cost an encode per glossed question.
        glossed = [gloss(text, self.glossary) for text in texts]  # topic words above stay the designer's own words
        vectors, labels, is_question = self._embed_examples(texts), np.asarray(labels), np.asarray(is_question)
        stored = store = None
        if self.embedding_cache is not None:  # the fit is cached where the embeddings are (actions/kb_fit_cache.py)
            fits = FitCache(self.embedding_cache.directory / "fits")
            key = fit_key(glossed, vectors, labels, is_question, len(self._positions))
            stored, store = (lambda: fits.read(key)), (lambda fitted: fits.write(key, fitted))
        try:
            self.classifier, self.calibration = fit_answerability(
                glossed, vectors, labels, is_question, len(self._positions), stored=stored, store=store
            )
        except CalibrationError as error:
            raise KnowledgeBaseError(str(error)) from error

    def _embed_examples(self, texts: Sequence[str]) -> np.ndarray:
        if self.embedding_cache is None:
            return self.embed(texts)
        return self.embedding_cache.embed(texts, self.model, self._encoder, self.embed)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised sentence embeddings of `texts` (one row each)."""
        return text_embedding.embed(self._encoder, texts)

    def _question_vector(self, text: str, carried: Any) -> np.ndarray:
        """`embed([text])`, or the vector the NLU carried (parse data `text_embedding`) when it is exactly that:
        the same text, by an encoder of the same identity (components/text_embedding.py)."""
        if carried is not None and self.classifier is not None:
            dimension = self.classifier.vectors.shape[1]  # the examples' embeddings
            vector = text_embedding.carried_vector(carried, text, self._encoder_identity, dimension)
            if vector is not None:
                return vector
        return self.embed([text])

    # --- lookup -------------------------------------------------------------------------------
    @property
    def active_entries(self) -> List[KnowledgeBaseEntry]:
        return [e for e in self.entries if e.active]

    def entry(self, entry_id: str) -> KnowledgeBaseEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise KeyError(f"no knowledge-base entry '{entry_id}'")

    def matches(self, text: str, k: Optional[int] = 3, carried: Any = None) -> List[Match]:
        """The k entries most likely to answer `text` (None: every active entry), best first, each with
        its answer probability. `carried`: the parse data's `text_embedding`, used instead of encoding `text`
        only when it is the embedding of exactly `text` by this knowledge base's encoder."""
        if not text or not text.strip() or self.classifier is None or (k is not None and k <= 0):
            return []
        n_entries = len(self._positions)
        vector = self._question_vector(text, carried)
        text = gloss(text, self.glossary)  # for the classifier's n-grams only (see _fit)
        entries, none = self.classifier.entry_probabilities([text], vector, n_entries)
        # every entry is a candidate: the same question's row once per entry
        repeat = np.zeros(n_entries, dtype=np.int64)
        features = feature_matrix(self.classifier, entries[repeat], none[repeat], vector, np.arange(n_entries))
        probabilities = self.calibration.probability(features)
        similarities = features[:, FEATURES.index("neighbours")]
        order = np.argsort(-probabilities, kind="stable")[:k]  # [:None]: all
        return [
            Match(self.entries[self._positions[c]].id, float(probabilities[c]), float(similarities[c]),
                  share=float(entries[0, c]))
            for c in order
        ]

    def topics_named(self, text: str, besides: Optional[str] = None, ignore: Sequence[str] = (),
                     declared: Sequence[Tuple[str, Sequence[str]]] = ()) -> List[str]:
        """The entries (ids, sorted) whose topic words `text` uses, other than `besides`: words the
        entry's example texts use far more than any other entry's (actions/kb_answerability.topic_words).
        "aur COD milega?" names cash_on_delivery; "kitne din tak?" and "is it free?" name none. Words in
        `ignore` name nothing: a learnt topic word can be an accident of the examples ("too", "koi"). Words
        `declared` for an entry (entry id, words) name it, as a designer said ("press" for care_washing)."""
        ignored = set(stems(" ".join(ignore)))
        named = {self._topic_words[w] for w in stems(text) if w in self._topic_words and w not in ignored}
        known = {entry.id for entry in self.active_entries}  # a declared id the KB lacks names nothing
        named.update(entries_declared_in(text, declared) & known)
        return sorted(named - {besides})

    def best_match(self, text: str) -> Optional[Match]:
        found = self.matches(text, k=1)
        return found[0] if found else None

    def search(self, text: str, k: int = 3) -> List[Tuple[str, float]]:
        """The k best entries as (entry_id, answer probability) pairs, best first."""
        return [(match.entry_id, match.probability) for match in self.matches(text, k)]
