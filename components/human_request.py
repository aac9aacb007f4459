"""Recognise explicit requests for a person (escalation pattern 2) from escalation.yml word lists."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from components.phrases import PhraseList, clause_spans, phrase_strings, tokenize

# How many `declined.gap_words` may stand between a request and the cue that declines it.
MAX_GAP_WORDS = 2
# `language_speakers.not_followed_by`: how many words may stand between the language and the thing it describes
# ("bengali wali taant saree").
SPEAKER_THING_WINDOW = 2
# How many words may stand between a choice word ("or", "ya") and a machine word for `bot_questions`,
# unless escalation.yml says otherwise.
BOT_QUESTION_WINDOW = 3
# A name as customers write one: a capital first letter, then lower-case letters ("Farhan", "Meenal").
_WRITTEN_NAME = re.compile(r"(?<![\w'’])([A-Z][a-z]{2,})(?![\w'’])")


@dataclass(frozen=True)
class HumanRequestMatch:
    phrase: str
    rule: str  # "phrase", "language_speaker", "named_person", "team_name" or "short_keyword"


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

    Someone who speaks the customer's language is a person asked for (`language_speakers`: "koi Telugu wala
    hai kya", "is there a kannada speaking executive?"); a translation asked for ("translate it into tamil")
    is not.

    A teammate asked for by name is a person asked for (`named_people`: "can i speak to Farhan?", "Meenal ma'am se
    baat karni hai"): a word written with a capital first letter that no list names as something else, right after
    a `before` phrase or right before an `after` phrase (an honorific may stand between); also a name asked after as
    being there (`named_people.present`: "is Tanvi there today?", "Rohan sir available hai?").

    A clause that offers a choice between a machine and a person ("is this automated or is there a staff
    member reading?", "r these from an actual person or some program?") asks what the bot is
    (`bot_questions`): nothing in that clause is a request, and the classifier decides (bot_challenge).
    """

    def __init__(self, section: Dict[str, Any]) -> None:
        self.intent: str = section.get("intent", "request_human")
        where = "escalation.yml: human_request"

        def words(key: str, within: Dict[str, Any] = section, prefix: str = "") -> List[str]:
            return phrase_strings(within.get(key), f"{where}.{prefix}{key}")

        def word_set(key: str, within: Dict[str, Any] = section, prefix: str = "") -> Set[str]:
            """The single words of a list (its phrases split), for word-by-word tests."""
            return {w for phrase in words(key, within, prefix) for w in tokenize(phrase)}

        self._not_requests = PhraseList(words("not_requests"))
        self._phrases = PhraseList(words("phrases"))
        self._team_names = PhraseList(words("team_names"))
        self._asking_words = PhraseList(words("asking_words"))
        if self._team_names and not self._asking_words:
            raise ValueError(f"{where}.team_names needs `asking_words` (what turns a name into a request)")
        self._short_keywords = word_set("short_keywords")
        self._fillers = word_set("filler_words")
        if not self._phrases and not self._short_keywords:
            raise ValueError(f"{where} needs `phrases` or `short_keywords`")

        def mapping(key: str, fields: str, within: Dict[str, Any] = section, prefix: str = "") -> Dict[str, Any]:
            """An optional section of lists (left out: empty)."""
            found = within.get(key) or {}
            if not isinstance(found, dict):
                raise ValueError(f"{where}.{prefix}{key} must be a mapping ({fields})")
            return found

        declined = mapping("declined", "cue lists")
        self._cues_before = PhraseList(words("before", declined, "declined."))
        self._cues_before_keyword = PhraseList(words("before_keyword_only", declined, "declined."))
        self._cues_after = PhraseList(words("after", declined, "declined."))
        self._gap_words = word_set("gap_words", declined, "declined.")
        bot_questions = mapping("bot_questions", "machine_words, choice_words, within_words")
        self._machine_words = PhraseList(words("machine_words", bot_questions, "bot_questions."))
        self._choice_words = PhraseList(words("choice_words", bot_questions, "bot_questions."))
        if bool(self._machine_words) != bool(self._choice_words):
            raise ValueError(f"{where}.bot_questions needs both `machine_words` and `choice_words`")
        within = bot_questions.get("within_words", BOT_QUESTION_WINDOW)
        if not isinstance(within, int) or isinstance(within, bool) or within < 0:
            raise ValueError(f"{where}.bot_questions.within_words must be a whole number of at least 0, not {within!r}")
        self._bot_question_window = within
        speakers = mapping("language_speakers", "languages, before, after")
        self._languages = PhraseList(words("languages", speakers, "language_speakers."))
        self._speaker_before = PhraseList(words("before", speakers, "language_speakers."))
        self._speaker_after = PhraseList(words("after", speakers, "language_speakers."))
        self._speaker_things = PhraseList(words("not_followed_by", speakers, "language_speakers."))
        if self._languages and not (self._speaker_before or self._speaker_after):
            raise ValueError(
                f"{where}.language_speakers needs `before` or `after` words (what makes a language a person)")
        named = mapping("named_people", "before, not_led_by, after, honorifics, not_names, present")
        self._name_before = PhraseList(words("before", named, "named_people."))
        self._name_after = PhraseList(words("after", named, "named_people."))
        self._name_not_led_by = PhraseList(words("not_led_by", named, "named_people."))
        self._honorifics = word_set("honorifics", named, "named_people.")
        self._not_names = word_set("not_names", named, "named_people.")
        present = mapping("present", "after, led_by, honorific_only, followed_only_by, between", named, "named_people.")
        self._present_after = PhraseList(words("after", present, "named_people.present."))
        self._present_led_by = PhraseList(words("led_by", present, "named_people.present."))
        self._present_honorific_only = PhraseList(words("honorific_only", present, "named_people.present."))
        self._present_then = word_set("followed_only_by", present, "named_people.present.")
        self._present_between = PhraseList(words("between", present, "named_people.present."))

    def match(self, text: Optional[str]) -> Optional[HumanRequestMatch]:
        words = tokenize(text or "")
        if not words or self._not_requests.find(words):
            return None
        clauses = [(span, clause) for span, clause, about_bot in self._clauses(text) if not about_bot]
        request_clauses = [clause for _span, clause in clauses]
        for clause in request_clauses:
            for phrase, start, end in self._phrases.occurrences(clause):
                if self._declining_cue(clause, start, end, keyword=self._keyword_led(clause, start)) is None:
                    return HumanRequestMatch(phrase=phrase, rule="phrase")
            for phrase, start, end in self._language_speakers(clause):
                if self._declining_cue(clause, start, end, keyword=False) is None:
                    return HumanRequestMatch(phrase=phrase, rule="language_speaker")
        for (start, end), clause in clauses:
            for phrase, first, last in self._named_people(text[start:end], clause):
                if self._declining_cue(clause, first, last, keyword=False) is None:
                    return HumanRequestMatch(phrase=phrase, rule="named_person")
        for clause in request_clauses:
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
        for span, clause, about_bot in self._clauses(text):
            if about_bot:
                continue
            requests = [(p, s, e, self._keyword_led(clause, s)) for p, s, e in self._phrases.occurrences(clause)]
            requests += [(p, s, e, False) for p, s, e in self._language_speakers(clause)]
            requests += [(p, s, e, False) for p, s, e in self._named_people(text[span[0]:span[1]], clause)]
            requests += [(p, s, e, False) for p, s, e in self._team_names.occurrences(clause)]
            requests += [(w, i, i + 1, True) for i, w in enumerate(clause) if w in self._short_keywords]
            for phrase, start, end, keyword in requests:
                cue = self._declining_cue(clause, start, end, keyword=keyword)
                if cue is not None:
                    found.append(DeclinedRequest(phrase=phrase, cue=cue, clause=span))
                    break
        return found

    def _language_speakers(self, clause: Sequence[str]) -> List[Tuple[str, int, int]]:
        """(phrase, start, end) of each language named as a person who speaks it: a `before` word right before
        it ("koi Telugu …") or an `after` word right after it ("Telugu wala", "tamil speaking executive"); not when a
        `not_followed_by` thing comes close after the language ("koi bengali wali taant saree")."""
        found = []
        for language, start, end in self._languages.occurrences(clause):
            if self._speaker_things.find(clause[end : end + SPEAKER_THING_WINDOW + 1]):
                continue  # "koi bengali wali taant saree": a thing from there, not a person
            lead = self._speaker_before.ending_at(clause, start)
            if lead is not None:
                found.append((f"{lead} {language}", start - len(tokenize(lead)), end))
                continue
            tail = self._speaker_after.longest_at(clause, end)
            if tail is not None:
                found.append((f"{language} {tail[0]}", start, tail[1]))
        return found

    def _named_people(self, clause_text: str, clause: Sequence[str]) -> List[Tuple[str, int, int]]:
        """(phrase, start, end) of each name asked for in the clause: a word written with a capital first letter
        ("Farhan"), not one of `not_names`, a language or a team name, with a `before` phrase ending right before it
        ("speak to Farhan"; not led by a `not_led_by` phrase: "let me talk to Priya") or an `after` phrase right after
        it, an honorific allowed between ("Meenal maam se baat karni hai")."""
        if not (self._name_before or self._name_after or self._present_after):
            return []
        names = {m.group(1).lower() for m in _WRITTEN_NAME.finditer(clause_text)} - self._not_names
        found = []
        for index, word in enumerate(clause):
            if word not in names or self._languages.longest_at(clause, index) or self._team_names.longest_at(clause, index):
                continue
            lead = self._name_before.ending_at(clause, index)
            if lead is not None:
                first = index - len(tokenize(lead))
                # "let me talk to Priya, she placed it": the customer will ask someone of their own
                if self._name_not_led_by.ending_at(clause, first) is None:
                    found.append((f"{lead} {word}", first, index + 1))
                continue
            after = index + 1
            while after < len(clause) and clause[after] in self._honorifics:
                after += 1
            tail = self._name_after.longest_at(clause, after)
            if tail is None:
                tail = self._asked_after_as_there(clause, index, after)
            if tail is not None:
                found.append((" ".join(clause[index:after] + [tail[0]]), index, tail[1]))
        return found

    def _asked_after_as_there(self, clause: Sequence[str], name: int, after: int) -> Optional[Tuple[str, int]]:
        """(phrase, end) when the name at `name` is asked after as being there: a `present.after` phrase at `after`
        (past any honorifics and `present.between` words: "Imran bhai aaj duty pe hai?"), only
        `present.followed_only_by` words after it, and an honorific between ("Rohan sir available hai?") or a
        `present.led_by` word right before the name ("is Tanvi there today?"). `present.honorific_only` phrases need the
        honorific: a product is written with a capital too ("is Chanderi available?")."""
        honorific = after > name + 1
        start = after
        while (step := self._present_between.longest_at(clause, after)) is not None:
            after = step[1]
        tail = self._present_after.longest_at(clause, after)
        if tail is None or any(w not in self._present_then for w in clause[tail[1]:]):
            return None  # "is Chanderi there in XL?": what follows asks after a thing
        phrase = (" ".join(clause[start:tail[1]]), tail[1])
        if honorific:
            return phrase
        if self._present_honorific_only.longest_at(clause, after) is not None:
            return None
        return phrase if self._present_led_by.ending_at(clause, name) is not None else None

    def asks_about_bot(self, clause: Sequence[str]) -> bool:
        """Whether the clause's words offer a machine or a person: a choice word ("or", "ya") with at most
        `within_words` words between it and a machine word ("automated", "program", "bot"), either side."""
        if not self._machine_words:
            return False
        machines = self._machine_words.occurrences(clause)
        if not machines:
            return False
        for _choice, start, end in self._choice_words.occurrences(clause):
            for _machine, m_start, m_end in machines:
                if m_start >= end and m_start - end <= self._bot_question_window:
                    return True
                if start >= m_end and start - m_end <= self._bot_question_window:
                    return True
        return False

    def _clauses(self, text: Optional[str]) -> List[Tuple[Tuple[int, int], List[str], bool]]:
        """Each clause's span, its words, and whether it asks what the bot is (`bot_questions`). A clause that begins
        with a choice word is read with the one before it ("is this a machine, or someone from your team?")."""
        spans = clause_spans(text or "")
        words = [tokenize(text[start:end]) for start, end in spans]
        found = []
        for index, (span, clause) in enumerate(zip(spans, words)):
            about_bot = self.asks_about_bot(clause)
            if not about_bot and index > 0 and self._choice_words.longest_at(clause, 0) is not None:
                about_bot = self.asks_about_bot(words[index - 1] + clause)
            following = words[index + 1] if index + 1 < len(words) else []
            if not about_bot and following and self._choice_words.longest_at(following, 0) is not None:
                about_bot = self.asks_about_bot(clause + following)
            found.append((span, clause, about_bot))
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
