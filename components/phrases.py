"""Whole-word phrase matching that ignores case, punctuation and spacing.

Used for the designer-edited word lists in escalation.yml: "Agent!!", "agent please" and "AGENT" all
tokenise the same way, and "agent" never matches inside "agents" or "reagent".
"""
from __future__ import annotations

import re
from typing import Iterable, Optional, Sequence, Tuple

_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes are dropped so "ma'am" == "maam"."""
    return [t for t in _NON_WORD.split(text.lower().replace("'", "").replace("’", "")) if t]


class PhraseList:
    """A list of phrases, each matched as a contiguous run of whole words."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases: list[Tuple[str, Tuple[str, ...]]] = []
        for phrase in phrases:
            words = tuple(tokenize(str(phrase)))
            if words:
                self._phrases.append((str(phrase), words))

    def __len__(self) -> int:
        return len(self._phrases)

    def find(self, words: Sequence[str]) -> Optional[str]:
        """The first phrase (as written in the list) that occurs in `words`, else None."""
        for phrase, needle in self._phrases:
            n = len(needle)
            for start in range(len(words) - n + 1):
                if tuple(words[start : start + n]) == needle:
                    return phrase
        return None

    def find_all(self, words: Sequence[str]) -> list[str]:
        found = []
        for phrase, needle in self._phrases:
            n = len(needle)
            if any(tuple(words[i : i + n]) == needle for i in range(len(words) - n + 1)):
                found.append(phrase)
        return found
