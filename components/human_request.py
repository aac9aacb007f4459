"""Recognise explicit requests for a person (escalation pattern 2) from escalation.yml word lists."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from components.phrases import PhraseList, clause_spans, clauses, phrase_strings, tokenize

# How many `declined.gap_words` may stand between a request and the cue that declines it.
MAX_GAP_WORDS = 2


@dataclass(frozen=True)
class HumanRequestMatch:
    phrase: str
    rule: str  # "phrase", "team_name" or "short_keyword"


@dataclass(frozen=True)
class DeclinedRequest:
    """A request for a person that the customer turned down: "agent nahi chahiye", "no human please"."""

    phrase: str
    cue: str
    clause: Tuple[int, int]  # where the clause it stands in is in the message (see phrases.clause_spans)


class HumanRequestMatcher:
    """Decides whether a message asks for a person.

    Four lists, in this order: `not_requests` veto ("human hair", "travel agent"); `phrases` match
    anywhere ("speak to someone"); `team_names` ("customer care", "customer support") only name the
    team, so they match when their clause also asks for contact (`asking_words`: "connect me to customer
    care", "customer care se baat karni hai") or their clause is little more than the name ("customer
    care please!!"), never in a question about the team ("is customer care open on saturday?");
    `short_keywords` match only when every other word of the message is a filler word ("agent please",
    "HUMAN!!"), so a keyword inside a real question never hands off.

    A phrase or keyword that the customer declines in the same clause ("not looking to talk to a
    person", "agent nahi chahiye") does not count: `declined` lists the cues. A message with one
    declined and one real request ("I don't want to talk to a bot, get me a person") still matches.
    """

    def __init__(self, section: Dict[str, Any]) -> None:
        self.intent: str = section.get("intent", "request_human")
        where = "escalation.yml: human_request"

        def words(key: str, within: Dict[str, Any] = section, prefix: str = "") -> List[str]:
            return phrase_strings(within.get(key), f"{where}.{prefix}{key}")

        self._not_requests = PhraseList(words("not_requests"))
        self._phrases = PhraseList(words("phrases"))
        self._team_names = PhraseList(words("team_names"))
        self._asking_words = PhraseList(words("asking_words"))
        if self._team_names and not self._asking_words:
            raise ValueError(f"{where}.team_names needs `asking_words` (what turns a name into a request)")
        self._short_keywords = {w for k in words("short_keywords") for w in tokenize(k)}
        self._fillers = {w for f in words("filler_words") for w in tokenize(f)}
        if not self._phrases and not self._short_keywords:
            raise ValueError(f"{where} needs `phrases` or `short_keywords`")
        declined = section.get("declined") or {}
        if not isinstance(declined, dict):
            raise ValueError(f"{where}.declined must be a mapping of cue lists")
        self._cues_before = PhraseList(words("before", declined, "declined."))
        self._cues_before_keyword = PhraseList(words("before_keyword_only", declined, "declined."))
        self._cues_after = PhraseList(words("after", declined, "declined."))
        self._gap_words = {w for g in words("gap_words", declined, "declined.") for w in tokenize(g)}

    def match(self, text: Optional[str]) -> Optional[HumanRequestMatch]:
        words = tokenize(text or "")
        if not words or self._not_requests.find(words):
            return None
        for clause in clauses(text or ""):
            for phrase, start, end in self._phrases.occurrences(clause):
                if self._declining_cue(clause, start, end, keyword=self._keyword_led(clause, start)) is None:
                    return HumanRequestMatch(phrase=phrase, rule="phrase")
        for clause in clauses(text or ""):
            # The ask must be in the name's own clause: "what's the mail id for your support team, i want to
            # send pics" asks for an address, and its "want" is about the pictures.
            asks = self._asking_words.find(clause) is not None
            for name, start, end in self._team_names.occurrences(clause):
                alone = all(w in self._fillers for w in clause[:start] + clause[end:])
                if (asks or alone) and self._declining_cue(clause, start, end, keyword=False) is None:
                    return HumanRequestMatch(phrase=name, rule="team_name")
        keywords = [w for w in words if w in self._short_keywords]
        if keywords and all(w in self._short_keywords or w in self._fillers for w in words):
            return HumanRequestMatch(phrase=keywords[0], rule="short_keyword")
        return None

    def declined(self, text: Optional[str]) -> List[DeclinedRequest]:
        """The requests for a person the message turns down, in order (empty for a veto such as "human hair")."""
        if self._not_requests.find(tokenize(text or "")):
            return []
        found = []
        for span in clause_spans(text or ""):
            clause = tokenize(text[span[0] : span[1]])
            requests = [(p, s, e, self._keyword_led(clause, s)) for p, s, e in self._phrases.occurrences(clause)]
            requests += [(p, s, e, False) for p, s, e in self._team_names.occurrences(clause)]
            requests += [(w, i, i + 1, True) for i, w in enumerate(clause) if w in self._short_keywords]
            for phrase, start, end, keyword in requests:
                cue = self._declining_cue(clause, start, end, keyword=keyword)
                if cue is not None:
                    found.append(DeclinedRequest(phrase=phrase, cue=cue, clause=span))
                    break
        return found

    def _keyword_led(self, words: Sequence[str], start: int) -> bool:
        """A phrase that starts with a short keyword ("human needed", "agent please") is declined like the
        keyword itself: "no human needed, what's COD?" is not a request, "no talk to a human" still is."""
        return words[start] in self._short_keywords

    def _declining_cue(self, words: Sequence[str], start: int, end: int, keyword: bool) -> Optional[str]:
        """The cue right before or right after words[start:end] that declines it, else None."""
        for gap in range(MAX_GAP_WORDS + 1):
            before = start - gap
            if before < 0 or any(w not in self._gap_words for w in words[before:start]):
                break
            cue = self._cues_before.ending_at(words, before)
            if cue is None and keyword:
                cue = self._cues_before_keyword.ending_at(words, before)
            if cue is not None:
                return cue
        for gap in range(MAX_GAP_WORDS + 1):
            after = end + gap
            if after > len(words) or any(w not in self._gap_words for w in words[end:after]):
                break
            found = self._cues_after.longest_at(words, after)
            if found is not None:
                return found[0]
        return None
