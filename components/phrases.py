"""Whole-word phrase matching that ignores case, punctuation and spacing.

Used for the designer-edited word lists in escalation.yml: "Agent!!", "agent please" and "AGENT" all
tokenise the same way, and "agent" never matches inside "agents" or "reagent".
"""
from __future__ import annotations

import functools
import re
from typing import Any, Container, Dict, Iterable, List, Optional, Sequence, Tuple

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_APOSTROPHES = re.compile(r"['’]")
# Where one clause of a WhatsApp message ends and the next begins: "no human please, only tell me COD
# charges" has two. A hyphen counts only with spaces around it ("one more thing - is it vegan?"), so
# "co-ord set" stays one clause.
_CLAUSE_BREAK = re.compile(r"[,.;:!?…\n]+|\s[-–—]+\s|[–—]")
_EDGE_PUNCTUATION = re.compile(r"[\s,;:\-–—]+$")
_REPEATS = re.compile(r"(\w)\1+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes are dropped so "ma'am" == "maam"."""
    return [t for t in _NON_WORD.split(_APOSTROPHES.sub("", text.lower())) if t]


def clause_spans(text: str) -> List[Tuple[int, int]]:
    """(start, end) of each clause of the message (split at punctuation) that has a word in it."""
    spans, start = [], 0
    for brk in _CLAUSE_BREAK.finditer(text):
        spans.append((start, brk.start()))
        start = brk.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if tokenize(text[s:e])]


def clauses(text: str) -> list[list[str]]:
    """The message's clauses (split at punctuation), each as its `tokenize` words; empty ones left out."""
    return [tokenize(text[s:e]) for s, e in clause_spans(text)]


def without_clauses(text: str, dropped: Iterable[Tuple[int, int]]) -> str:
    """`text` without the given clauses (spans from `clause_spans`), each kept clause with its punctuation."""
    dropped = set(dropped)
    spans = clause_spans(text)
    kept = []
    for index, (start, end) in enumerate(spans):
        if (start, end) in dropped:
            continue
        # A clause keeps the punctuation after it ("how do I pick my size?"), up to the next clause.
        following = spans[index + 1][0] if index + 1 < len(spans) else len(text)
        kept.append(text[start:following].strip())
    return _EDGE_PUNCTUATION.sub("", " ".join(kept))


def squeeze(word: str) -> str:
    """A word with every run of a repeated letter cut to one: "okkk", "okk" and "ok" compare equal."""
    return _REPEATS.sub(r"\1", word)


# `squeeze` of the words messages use, remembered: every squeezed list squeezes every word of every message.
_squeeze_cached = functools.lru_cache(maxsize=65536)(squeeze)


def word_spans(text: str) -> List[Tuple[str, int, int]]:
    """(lower-case word, start, end) for every word of `text`, offsets into `text` itself.

    Apostrophes inside a word are kept in the offsets but dropped from the word ("doesn't" ->
    "doesnt"): the same words `tokenize` gives.
    """
    return [
        (_APOSTROPHES.sub("", match.group().lower()), match.start(), match.end())
        for match in re.finditer(r"\w+(?:['’]\w+)*", text, re.UNICODE)
    ]


def phrase_strings(values: Any, where: str) -> List[str]:
    """A designer's list of words or phrases from escalation.yml, checked: every item must be text."""
    if values is None:
        return []
    if not isinstance(values, list):
        raise ValueError(f"{where} must be a list of words or phrases, got {values!r}")
    for value in values:
        if not isinstance(value, str):
            hint = ' (quote it: YAML reads a bare no, yes, on or off as true/false)' if isinstance(value, bool) else ""
            raise ValueError(f"{where}: {value!r} is not a word or phrase{hint}")
    return values


class PhraseList:
    """A list of phrases, each matched as a contiguous run of whole words.

    With `squeezed=True` repeated letters are ignored on both sides ("okkk" matches "ok").

    Phrases are looked up by their first (and last) word instead of being tried at every position: the
    answers, and their order, are those of trying every phrase of the list in order at every position.
    """

    def __init__(self, phrases: Iterable[str], squeezed: bool = False) -> None:
        self._squeezed = squeezed
        self._phrases: list[Tuple[str, Tuple[str, ...]]] = []
        for phrase in phrases:
            words = self._normal(tokenize(str(phrase)))
            if words:
                self._phrases.append((str(phrase), words))
        self._longest = max((len(needle) for _phrase, needle in self._phrases), default=0)
        # First (last) word -> (position in the list, phrase, words) of the phrases starting (ending) with it,
        # in list order.
        self._by_first: Dict[str, List[Tuple[int, str, Tuple[str, ...]]]] = {}
        self._by_last: Dict[str, List[Tuple[int, str, Tuple[str, ...]]]] = {}
        for order, (phrase, needle) in enumerate(self._phrases):
            self._by_first.setdefault(needle[0], []).append((order, phrase, needle))
            self._by_last.setdefault(needle[-1], []).append((order, phrase, needle))

    def _normal(self, words: Sequence[str]) -> Tuple[str, ...]:
        return tuple(_squeeze_cached(w) for w in words) if self._squeezed else tuple(words)

    def __len__(self) -> int:
        return len(self._phrases)

    def _found(self, words: Sequence[str]) -> List[Tuple[int, int, str, int]]:
        """(position in the list, start, phrase, end) of every occurrence, sorted: list order, then start."""
        words = self._normal(words)
        found = []
        by_first = self._by_first
        for start, word in enumerate(words):
            for order, phrase, needle in by_first.get(word, ()):
                end = start + len(needle)
                if words[start:end] == needle:
                    found.append((order, start, phrase, end))
        found.sort()
        return found

    def occurrences(self, words: Sequence[str]) -> List[Tuple[str, int, int]]:
        """Every (phrase, start, end) where a phrase occurs in `words` (end exclusive), list order."""
        return [(phrase, start, end) for _order, start, phrase, end in self._found(words)]

    def find(self, words: Sequence[str]) -> Optional[str]:
        """The first phrase (as written in the list) that occurs in `words`, else None."""
        found = self._found(words)
        return found[0][2] if found else None

    def find_all(self, words: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(phrase for phrase, _start, _end in self.occurrences(words)))

    def longest_at(self, words: Sequence[str], start: int) -> Optional[Tuple[str, int]]:
        """The longest phrase that begins at `words[start]`, with the index just after it."""
        # Only the words a phrase can reach are normalised: a long message costs no more than a short one.
        window = self._normal(words[start : start + self._longest])
        if not window:
            return None
        best: Optional[Tuple[str, int]] = None
        for _order, phrase, needle in self._by_first.get(window[0], ()):
            end = start + len(needle)
            if window[: len(needle)] == needle and (best is None or end > best[1]):
                best = (phrase, end)
        return best

    def covering(self, words: Sequence[str], fillers: Container[str]) -> List[str]:
        """The phrases, in order, of a message made only of this list's phrases and `fillers` (squeezed single
        words: "never mind ji", "ek minute ruko"); [] when any other word is in it."""
        position, found = 0, []
        while position < len(words):
            hit = self.longest_at(words, position)
            if hit is not None:
                found.append(hit[0])
                position = hit[1]
            elif squeeze(words[position]) in fillers:
                position += 1
            else:
                return []
        return found

    def ending_at(self, words: Sequence[str], end: int) -> Optional[str]:
        """A phrase that ends just before `words[end]`, else None."""
        if end < 1 or end > len(words):
            return None  # no phrase (at least one word) can end there
        words = self._normal(words)
        for _order, phrase, needle in self._by_last.get(words[end - 1], ()):
            start = end - len(needle)
            if start >= 0 and words[start:end] == needle:
                return phrase
        return None
