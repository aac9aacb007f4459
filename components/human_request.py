"""Recognise explicit requests for a person (escalation pattern 2) from escalation.yml word lists."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from components.phrases import PhraseList, tokenize


@dataclass(frozen=True)
class HumanRequestMatch:
    phrase: str
    rule: str  # "phrase" or "short_keyword"


class HumanRequestMatcher:
    """Decides whether a message asks for a person.

    Three lists, in this order: `not_requests` veto ("human hair", "travel agent"); `phrases` match
    anywhere ("speak to someone"); `short_keywords` match only when every other word of the message is
    a filler word ("agent please", "HUMAN!!"), so a keyword inside a real question never hands off.
    """

    def __init__(self, section: Dict[str, Any]) -> None:
        self.intent: str = section.get("intent", "request_human")
        self._not_requests = PhraseList(section.get("not_requests") or [])
        self._phrases = PhraseList(section.get("phrases") or [])
        self._short_keywords = {w for k in section.get("short_keywords") or [] for w in tokenize(str(k))}
        self._fillers = {w for f in section.get("filler_words") or [] for w in tokenize(str(f))}
        if not self._phrases and not self._short_keywords:
            raise ValueError("escalation.yml: human_request needs `phrases` or `short_keywords`")

    def match(self, text: Optional[str]) -> Optional[HumanRequestMatch]:
        words = tokenize(text or "")
        if not words or self._not_requests.find(words):
            return None
        phrase = self._phrases.find(words)
        if phrase:
            return HumanRequestMatch(phrase=phrase, rule="phrase")
        keywords = [w for w in words if w in self._short_keywords]
        if keywords and all(w in self._short_keywords or w in self._fillers for w in words):
            return HumanRequestMatch(phrase=keywords[0], rule="short_keyword")
        return None
