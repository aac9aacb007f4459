"""Acknowledgements ("ok", "thik hai", "👍", "🙏🏽") and WhatsApp reactions, from escalation.yml lists.

Placed after the intent classifier and before KeywordEscalation and FallbackClassifier. A message made
only of words, phrases and emoji from the `acknowledgements` lists (plus filler words such as "ji",
"sir") gets the intent of its list with confidence 1.0, so an acknowledgement is never a
low-confidence hand-off. Any other emoji counts as `other_emoji`. When a message mixes lists, the
intent listed first in escalation.yml wins ("ok 👎" is deny). A message with any other word ("👎
agent", "ok and can I return it?") is left alone, so requests for a person still win.

Emoji are found with the `emoji` package (every emoji of the Unicode standard, sequences included).
Skin tones and variation selectors are ignored ("👍🏽" is "👍", "❤" is "❤️"); a ZWJ sequence that is not
listed itself is looked up by its first emoji ("🤦‍♀️" as "🤦"). Words ignore case, punctuation and
repeated letters ("OKKK" is "ok").

WhatsApp reactions reach the NLU as the emoji, with the connector's metadata
`{"whatsapp": {"type": "reaction", ...}}` (connectors/README.md). Only metadata marks a reaction:
customer text can never look like one. A reaction gets the `reactions` intents of escalation.yml and
an entity `reaction` (`positive` or `negative`), which the rules in data/rules/chitchat.yml use to
answer a positive reaction silently.

An acknowledgement may also lead a short remark that is not a question (escalation.yml
`acknowledgements.with_a_remark`): what the customer will do next ("great, will email", "theek hai,
chart dekh ke order kar dungi": `plans`), or why a topic is dropped ("never mind, found the tracking
sms", "chhodo, parcel aa gaya": `endings`, which end the order form). A message that is only such a lead ("never
mind", "koi baat nahi") gets the endings' intent and the entity `dismissal`: it ends the order form, and outside
the form it is acknowledged (data/rules/chitchat.yml), not answered like "no". A lead with a remark gets the lead's
intent, unless it is a question or the classifier read a hand-off intent (`keep_intents`); requests for
a person are still forced by KeywordEscalation, which runs after this component.

When the classifier itself ranks two of the `plans` intents or of `same_decision_intents` first and
second (affirm, thank, feedback_positive), the runner-up is no rival for FallbackClassifier's ambiguity
test: each is the same resolution signal with a short courtesy reply.

A message that takes leave (`leave_taking`: a farewell anywhere, nothing asked, no problem or request named)
gets the goodbye intent when the classifier read it as something else or could not place it ("hmm samajh
gayi, alvida" was "ok", "haha nvm bye" was "no").

The parse data says what happened: `acknowledgement: {"intent", "items", "classifier_intent",
"reaction"}`, plus `"remark"` and `"rule"` (`plan`, `ending` or `comment`) for a lead with a remark (`"rule":
"dismissal"` for a bare lead, `"closing"` for a dismissal closed with thanks ("koi baat nahi, thanks": the closing's
intent, no dismissal; `endings.closed_by`), `"farewell"` for a message that takes leave).

A `comment` (`with_a_remark.comments`) is an acknowledgement and a short remark that is neither a plan nor a question
("noted, cold water it is", "great, exactly what i wanted"): it counts only when the classifier could not place the
message, and never with a problem, a request or a doubt in the remark.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Text, Tuple

import emoji
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    ENTITIES, INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from components.designer_lists import (
    DesignerListComponent, confidence_setting, count_setting, demote_intent, set_intent,
)
from components.follow_ups import CUSTOMER_TEXT_KEY
from components.phrases import PhraseList, clauses, phrase_strings, squeeze, tokenize

# Parse-data key that explains an acknowledgement (shown by `rasa shell nlu`, read by tests).
ACKNOWLEDGEMENT_KEY = "acknowledgement"
# Entity a reaction carries; the value is "positive" or "negative" (rules in data/rules/chitchat.yml).
REACTION_ENTITY = "reaction"
# Entity of a bare dismissal ("never mind", "koi baat nahi", "chhodo ji"): a message made only of
# `with_a_remark.endings.leads` or `.alone_only` (and filler words). Inside the order form it ends the form
# like any ending; outside it the rules in data/rules/chitchat.yml acknowledge it instead of apologising for
# the last answer.
DISMISSAL_ENTITY = "dismissal"
POSITIVE, NEGATIVE = "positive", "negative"

# Skin tones (U+1F3FB–U+1F3FF) and text/emoji variation selectors change how an emoji looks, not what it says.
_APPEARANCE = re.compile("[\U0001F3FB-\U0001F3FF\uFE0E\uFE0F]")
_ZWJ = "\u200d"


def emoji_list(text: str) -> List[Dict[str, Any]]:
    """`emoji.emoji_list(text)`; plain ASCII text (most messages) has none: every emoji the package knows has a
    character beyond ASCII (tests/components/test_phrase_lookup.py checks both), and the package's scan costs
    more than the rest of the component."""
    return [] if text.isascii() else emoji.emoji_list(text)


def replace_emoji(text: str, replacement: str) -> str:
    """`emoji.replace_emoji(text, replacement)`; plain ASCII text is returned as it is (see `emoji_list`)."""
    return text if text.isascii() else emoji.replace_emoji(text, replacement)


def emoji_key(symbol: str) -> str:
    return _APPEARANCE.sub("", symbol)


def is_reaction(message: Message) -> bool:
    whatsapp = (message.get("metadata") or {}).get("whatsapp")
    return isinstance(whatsapp, dict) and whatsapp.get("type") == "reaction"


@dataclass(frozen=True)
class Acknowledgement:
    intent: str
    items: List[str]  # the listed words, phrases and emoji found, in order
    remark: str = ""  # with_a_remark: the words after the lead
    rule: str = ""  # with_a_remark: "plan", "ending" or "comment"; "dismissal" for a bare ending lead, "closing" after one


class RemarkRules:
    """`acknowledgements.with_a_remark`: a leading acknowledgement plus a short remark that is no question."""

    def __init__(self, section: Dict[str, Any], intents: List[str]) -> None:
        where = "escalation.yml: acknowledgements.with_a_remark"
        plans = section.get("plans") or {}
        endings = section.get("endings") or {}
        self.plan_intents = [str(i) for i in plans.get("intents") or []]
        self._plan_cues = PhraseList(phrase_strings(plans.get("cues"), f"{where}.plans.cues"))
        self._plan_endings = tuple(phrase_strings(plans.get("word_endings"), f"{where}.plans.word_endings"))
        self.ending_intent = str(endings.get("intent") or "")
        leads = phrase_strings(endings.get("leads"), f"{where}.endings.leads")
        self._ending_leads = PhraseList(leads, squeezed=True)
        # A message made only of these (and filler words) is a dismissal (bare_ending).
        alone_only = phrase_strings(endings.get("alone_only"), f"{where}.endings.alone_only")
        self._dismissals = PhraseList([*leads, *alone_only], squeezed=True)
        self.closed_by = [str(i) for i in endings.get("closed_by") or []]
        self._question_starts = PhraseList(phrase_strings(section.get("question_starts"), f"{where}.question_starts"))
        self._question_words = {w for q in phrase_strings(section.get("question_words"), f"{where}.question_words")
                                for w in tokenize(q)}
        self._connectives = PhraseList(phrase_strings(section.get("connectives"), f"{where}.connectives"))
        self.farewells = PhraseList(phrase_strings(section.get("farewells"), f"{where}.farewells"), squeezed=True)
        self.keep_intents = set(phrase_strings(section.get("keep_intents"), f"{where}.keep_intents"))
        self.max_words = int(section.get("max_words") or 12)
        comments = section.get("comments") or {}
        self.comment_intents = [str(i) for i in comments.get("intents") or []]
        self.comment_below = float(comments.get("below") or 0.0)
        self.comment_own_below = float(comments.get("own_intents_below") or 0.0)
        self.comment_max_words = int(comments.get("max_words") or 0)
        self._comment_not_when = PhraseList(phrase_strings(comments.get("not_when"), f"{where}.comments.not_when"))
        ending = [self.ending_intent] if self.ending_intent else []
        named_intents = (("plans.intents", self.plan_intents), ("endings.intent", ending),
                         ("endings.closed_by", self.closed_by), ("comments.intents", self.comment_intents))
        for key, named in named_intents:
            unknown = [intent for intent in named if intent not in intents]
            if unknown:
                raise ValueError(f"{where}.{key}: {unknown[0]!r} must be one of the acknowledgement intents "
                                 f"{', '.join(intents)}")
        if self._ending_leads and not self.ending_intent:
            raise ValueError(f"{where}.endings needs an `intent`")

    def is_question(self, text: str, remark: List[str]) -> bool:
        """A "?", a question word anywhere in the remark, or a question start at the remark's start or at the
        start of any later clause: "ok never mind that. what email do i write to" asks (session 25: the remark
        started "that", and the question after the full stop was dropped as a dismissal)."""
        if "?" in text or any(w in self._question_words for w in remark):
            return True
        starts = [remark] + clauses(replace_emoji(text, ", "))[1:]
        return any(self._question_starts.longest_at(words, self.after_connectives(words)) is not None for words in starts)

    def takes_leave(self, remark: List[str]) -> bool:
        """The remark says goodbye ("bye", "good night", "ttyl"): the classifier's goodbye, not a plan."""
        return bool(self.farewells.find(remark))

    def after_connectives(self, remark: List[str]) -> int:
        """Where the remark starts after its leading `connectives` ("and", "also", "one more thing"): "acha and
        how long will delivery take" asks "how long…", a follow-up question, no plan."""
        position = 0
        while position < len(remark):
            hit = self._connectives.longest_at(remark, position)
            if hit is None:
                break
            position = hit[1]
        return position

    def is_plan(self, remark: List[str]) -> bool:
        """A cue ("will", "i'll", "gonna") or a first-person future verb ("kar dungi", "dekh lunga")."""
        if self._plan_cues.find(remark):
            return True
        return any(w.endswith(e) and len(w) > len(e) for w in remark for e in self._plan_endings)

    def is_comment(self, text: str, remark: List[str], classifier_intent: str, confidence: float) -> bool:
        """A short comment on the answer, when the classifier could not place the message (`comments`): "great,
        exactly what i wanted", "noted, cold water it is"."""
        if not self.comment_intents or len(remark) > self.comment_max_words:
            return False
        # A sure enough reading of the comment's own intents is the classifier's to keep (_no_rival_of_the_same_kind).
        below = self.comment_own_below if classifier_intent in self.comment_intents else self.comment_below
        if confidence >= below:
            return False
        return not any(ch.isdigit() for ch in text) and not self._comment_not_when.find(remark)

    def ending_lead(self, words: List[str], start: int) -> Optional[Tuple[str, int]]:
        return self._ending_leads.longest_at(words, start)

    def bare_ending(self, words: List[str], fillers: set) -> List[str]:
        """The leads of a message made only of ending leads (or `alone_only` dismissals) and filler words ("never
        mind", "koi baat nahi ji", "chhodo yaar, rehne do"); [] when anything else is in it."""
        return self._dismissals.covering(words, fillers)


class PraiseRules:
    """`acknowledgements.praise_and_thanks`: thanks or praise with its reason, and nothing to answer.

    "thank you for the super quick delivery, got my order today 😍" (a thank-you lead: `thank_intent`),
    "aapke kurte bahut acche hai, meri mummy ko bhi pasand aaya 😊" (a praise word: `praise_intent`).
    Only over the classifier readings of `override_intents`, and never when the message asks something
    (a "?", a clause that starts like a question, a question word anywhere), names a problem or a
    request (`not_when`), carries a digit (an order number) or a negative emoji, or is too long."""

    def __init__(self, section: Dict[str, Any], where: str) -> None:
        self.thank_intent = str(section.get("thank_intent") or "")
        self.praise_intent = str(section.get("praise_intent") or "")
        if not self.thank_intent or not self.praise_intent:
            raise ValueError(f"{where} needs `thank_intent` and `praise_intent`")
        self.override_intents = set(phrase_strings(section.get("override_intents"), f"{where}.override_intents"))
        self._praise = PhraseList(phrase_strings(section.get("praise_words"), f"{where}.praise_words"), squeezed=True)
        self._not_when = PhraseList(phrase_strings(section.get("not_when"), f"{where}.not_when"), squeezed=True)
        self._question_starts = PhraseList(phrase_strings(section.get("question_starts"), f"{where}.question_starts"))
        self._question_words = {squeeze(w) for q in phrase_strings(section.get("question_words"),
                                                                   f"{where}.question_words") for w in tokenize(q)}
        self.max_words = int(section.get("max_words") or 25)

    def is_question(self, text: str) -> bool:
        if "?" in text:
            return True
        # An emoji ends a clause as punctuation does ("love it 😍 do you have it in red").
        for clause in clauses(replace_emoji(text, ", ")):
            if self._question_starts.longest_at(clause, 0) is not None:
                return True
            if any(squeeze(w) in self._question_words for w in clause):
                return True
        return False

    def has_praise(self, words: List[str]) -> bool:
        return self._praise.find(words) is not None

    def excluded(self, text: str, words: List[str]) -> bool:
        return (not words or len(words) > self.max_words or any(c.isdigit() for c in text)
                or self._not_when.find(words) is not None or self.is_question(text))


class LeaveRules:
    """`acknowledgements.leave_taking`: a message that takes leave ("hmm samajh gayi, alvida", "haha nvm bye",
    "ok 2-3% is fine. bye for now, will check with my sister") is a goodbye, whatever else it says around the
    farewell, when it asks nothing and names no problem or request. The farewells are `with_a_remark.farewells`.
    Only over the classifier readings of `override_intents`, or any reading under `below`."""

    def __init__(self, section: Dict[str, Any], where: str, farewells: Optional[PhraseList]) -> None:
        self.intent = str(section.get("intent") or "")
        if not self.intent:
            raise ValueError(f"{where} needs an `intent` (the goodbye intent)")
        if farewells is None or not len(farewells):
            raise ValueError(f"{where} needs `with_a_remark.farewells` (the phrases that take leave)")
        self.farewells = farewells
        self.override_intents = set(phrase_strings(section.get("override_intents"), f"{where}.override_intents"))
        self.below = confidence_setting(section, "below", where)
        self._not_when = PhraseList(phrase_strings(section.get("not_when"), f"{where}.not_when"), squeezed=True)
        self.max_words = count_setting(section, "max_words", where, default=20)

    def applies_to(self, classifier_intent: str, confidence: float) -> bool:
        return classifier_intent in self.override_intents or confidence < self.below

    def farewell(self, words: List[str]) -> Optional[str]:
        """The farewell said, when the message takes leave and names nothing else to act on."""
        if not words or len(words) > self.max_words or self._not_when.find(words) is not None:
            return None
        return self.farewells.find(words)


class AcknowledgementMatcher:
    """Decides whether a message is only an acknowledgement, and of which intent."""

    def __init__(self, section: Dict[str, Any]) -> None:
        where = "escalation.yml: acknowledgements"
        intents = section.get("intents")
        if not isinstance(intents, dict) or not intents:
            raise ValueError(f"{where}.intents must map intents to their words and emoji")
        self.intents: List[str] = list(intents)  # precedence: the first listed wins
        self._emoji: Dict[str, str] = {}
        self._symbols: List[Tuple[str, str]] = []  # emoticons such as ":)", matched as written
        self._phrases: Dict[str, PhraseList] = {}
        for intent, entries in intents.items():
            words = []
            for entry in phrase_strings(entries, f"{where}.intents.{intent}"):
                found = emoji_list(entry)
                if found and emoji.purely_emoji(entry.replace(" ", "")):
                    for item in found:
                        self._emoji.setdefault(emoji_key(item["emoji"]), intent)
                elif tokenize(entry):
                    words.append(entry)
                else:
                    self._symbols.append((entry.strip(), intent))
            self._phrases[intent] = PhraseList(words, squeezed=True)
        self.other_emoji: str = str(section.get("other_emoji") or "")
        if self.other_emoji and self.other_emoji not in self.intents:
            raise ValueError(f"{where}.other_emoji must be one of {', '.join(self.intents)}")
        self._fillers = {squeeze(w) for f in phrase_strings(section.get("filler_words"), f"{where}.filler_words")
                         for w in tokenize(f)}
        remarks = section.get("with_a_remark")
        self.remarks: Optional[RemarkRules] = RemarkRules(remarks, self.intents) if remarks else None
        self.question_intent: str = str(section.get("question_intent") or "")
        same = section.get("same_decision_intents") or []
        if not isinstance(same, list) or not all(isinstance(name, str) and name for name in same):
            raise ValueError(f"{where}.same_decision_intents must be a list of intent names")
        self.same_decision_intents: List[str] = list(dict.fromkeys(same))
        praise = section.get("praise_and_thanks")
        self.praise: Optional[PraiseRules] = PraiseRules(praise, f"{where}.praise_and_thanks") if praise else None
        leave = section.get("leave_taking")
        self.leave: Optional[LeaveRules] = LeaveRules(
            leave, f"{where}.leave_taking", self.remarks.farewells if self.remarks else None) if leave else None
        if self.praise and self.praise.thank_intent not in self.intents:
            raise ValueError(f"{where}.praise_and_thanks.thank_intent must be one of {', '.join(self.intents)}")
        reactions = section.get("reactions") or {}
        self.reaction_intents = {POSITIVE: reactions.get(POSITIVE), NEGATIVE: reactions.get(NEGATIVE)}
        for polarity, intent in self.reaction_intents.items():
            if intent not in self.intents:
                raise ValueError(f"{where}.reactions.{polarity} must be one of {', '.join(self.intents)}")

    def match(self, text: Optional[str]) -> Optional[Acknowledgement]:
        text = text or ""
        found: List[Tuple[str, str]] = []  # (item, intent)
        rest = text
        for symbol, intent in self._symbols:
            if symbol in rest:
                found.append((symbol, intent))
                rest = rest.replace(symbol, " ")
        for item in emoji_list(rest):
            intent = self._emoji_intent(item["emoji"])
            if intent is None:
                return None
            found.append((item["emoji"], intent))
        rest = replace_emoji(rest, " ")
        words = tokenize(rest)
        position = 0
        while position < len(words):
            best = self._listed_at(words, position)
            if best is not None:
                found.append((best[0], best[2]))
                position = best[1]
            elif squeeze(words[position]) in self._fillers:
                position += 1
            else:
                return None
        if not found:
            return None
        intents = [i for _, i in found]
        worded = [i for item, i in found if tokenize(item)]
        if worded:
            # Beside words, an emoji only decorates them unless it is a negative one (the `reactions.negative` intent,
            # as in match_with_remark: "ok 👎" is deny). Session 28: "namaste 🙏" was thanks, "suprabhat ☀️" an "ok".
            verdict = self.reaction_intents[NEGATIVE]
            intents = worded + [i for item, i in found if not tokenize(item) and i == verdict]
        intent = min(intents, key=self.intents.index)
        return Acknowledgement(intent=intent, items=[item for item, _ in found])

    def _listed_at(self, words: List[str], position: int) -> Optional[Tuple[str, int, str]]:
        """(phrase, end, intent) of the longest listed word or phrase at words[position], else None."""
        best = None
        for intent, phrases in self._phrases.items():
            hit = phrases.longest_at(words, position)
            if hit and (best is None or hit[1] > best[1]):
                best = (hit[0], hit[1], intent)
        return best

    def match_dismissal(self, text: Optional[str], classifier_intent: str = "") -> Optional[Acknowledgement]:
        """A message that is only leads of `with_a_remark.endings` or `alone_only` (no emoji, no remark): the
        endings' intent, with rule "dismissal". None when the classifier read one of `keep_intents`."""
        rules = self.remarks
        text = text or ""
        if rules is None or not rules.ending_intent or classifier_intent in rules.keep_intents or emoji_list(text):
            return None
        for symbol, _ in self._symbols:
            if symbol in text:
                return None
        words = tokenize(text)
        # An acknowledgement before the dismissal keeps it one: "ok never mind", "chalo koi na, chhodo" (session 28:
        # the first read as deny, "sorry that didn't help", the second fell back). A dismissal lead wins its own
        # words ("chhodo" is both), and a verdict of the ending's own intent ("useless, never mind") is no lead-in.
        position = 0
        while position < len(words) and rules.ending_lead(words, position) is None:
            listed = self._listed_at(words, position)
            if listed is None and squeeze(words[position]) in self._fillers:
                position += 1  # "oh ok, forget it then" (session 36, v32: "oh" stopped the lead-in, read as "no")
                continue
            if listed is None or listed[2] == rules.ending_intent:
                break
            position = listed[1]
        leads = rules.bare_ending(words[position:], self._fillers)
        if leads:
            return Acknowledgement(intent=rules.ending_intent, items=leads, rule="dismissal")
        # A dismissal closed with thanks is that thank-you (`endings.closed_by`): "koi baat nahi, thanks" is "no problem,
        # thanks", a resolution signal (session 35, v30: read as "no" after three answers, pattern 4 handed off). Only a
        # short message: each cut is matched again, and a long message is no closing anyway.
        if len(words) - position > rules.max_words:
            return None
        for cut in range(position + 1, len(words)):
            closing = self.match(" ".join(words[cut:]))
            if closing is not None and closing.intent in rules.closed_by:
                leads = rules.bare_ending(words[position:cut], self._fillers)
                if leads:
                    return Acknowledgement(intent=closing.intent, items=leads + closing.items, rule="closing")
        return None

    def match_with_remark(self, text: Optional[str], classifier_intent: str = "",
                          confidence: float = 1.0) -> Optional[Acknowledgement]:
        """A leading acknowledgement (or a form ending) plus a short remark that is no question:
        "great, will email" (plan), "never mind, found the tracking sms" (ending), "noted, cold water it is"
        (comment, only when the classifier is unsure: `comments`)."""
        rules = self.remarks
        text = text or ""
        if rules is None or classifier_intent in rules.keep_intents:
            return None
        emoji_lead = None
        for item in emoji_list(text):
            intent = self._emoji_intent(item["emoji"])
            if intent is None or intent == self.reaction_intents[NEGATIVE]:
                return None  # a negative or unknown emoji: not a plain acknowledgement
            if emoji_lead is None and not text[: item["match_start"]].strip():
                # An emoji the message starts with leads like a word: "🙏 then i'll take both the sets" is thanks
                # and a plan (session 49, v56; v55's "🙏 ordering 2 then").
                emoji_lead = (item["emoji"], intent)
        text = self._without_symbols(text)
        words = tokenize(replace_emoji(text, " "))
        position, lead, ending = 0, [], None
        while position < len(words):
            hit = rules.ending_lead(words, position)
            if hit is not None:
                ending, position = hit[0], hit[1]
                break
            best = self._listed_at(words, position)
            if best is not None:
                lead.append((best[0], best[2]))
                position = best[1]
            elif squeeze(words[position]) in self._fillers and not lead:
                position += 1
            else:
                break
        remark = words[position:]
        if not remark or len(remark) > rules.max_words or rules.is_question(text, remark) or rules.takes_leave(remark):
            return None
        if ending is not None:
            return Acknowledgement(intent=rules.ending_intent, items=[ending], remark=" ".join(remark), rule="ending")
        if not lead and emoji_lead is not None and emoji_lead[1] in self.intents:
            lead = [emoji_lead]
        if not lead:
            return None
        intent = min((i for _, i in lead), key=self.intents.index)
        if intent in rules.plan_intents and rules.is_plan(remark):
            return Acknowledgement(intent=intent, items=[i for i, _ in lead], remark=" ".join(remark), rule="plan")
        if intent in rules.comment_intents and rules.is_comment(text, remark, classifier_intent, confidence):
            return Acknowledgement(intent=intent, items=[i for i, _ in lead], remark=" ".join(remark), rule="comment")
        return None

    def match_praise(self, text: Optional[str], classifier_intent: str = "") -> Optional[Acknowledgement]:
        """Thanks or praise with its reason and nothing to answer (`praise_and_thanks`)."""
        rules = self.praise
        text = text or ""
        if rules is None or classifier_intent not in rules.override_intents:
            return None
        for item in emoji_list(text):
            intent = self._emoji_intent(item["emoji"])
            if intent is None or intent == self.reaction_intents[NEGATIVE]:
                return None
        words = self._plain_words(text)
        if rules.excluded(text, words):
            return None
        # A thank-you lead (after fillers or an "ok"): "ok thank you for the quick delivery".
        position, lead = 0, []
        while position < len(words):
            best = self._listed_at(words, position)
            if best is not None:
                lead.append(best)
                position = best[1]
            elif squeeze(words[position]) in self._fillers:
                position += 1
            else:
                break
        remark = " ".join(words[position:])
        if any(intent == rules.thank_intent for _, _, intent in lead):
            return Acknowledgement(intent=rules.thank_intent, items=[item for item, _, _ in lead], remark=remark,
                                   rule="thanks")
        # … or a thank-you at the end (session 28: "wah free express shipping 😍 thanks" was answered with the
        # shipping entry, read as a question).
        end = len(words)
        while end > 0 and squeeze(words[end - 1]) in self._fillers:
            end -= 1
        closing = self._phrases[rules.thank_intent].ending_at(words, end)  # thank_intent is listed (checked in __init__)
        start = end - len(tokenize(closing)) if closing is not None else 0
        if start > 0:
            return Acknowledgement(intent=rules.thank_intent, items=[closing], remark=" ".join(words[:start]),
                                   rule="thanks")
        if rules.has_praise(words):
            return Acknowledgement(intent=rules.praise_intent, items=[], remark=" ".join(words), rule="praise")
        return None

    def match_leave(self, text: Optional[str], classifier_intent: str = "",
                    confidence: float = 1.0) -> Optional[Acknowledgement]:
        """A message that takes leave and asks for nothing (`leave_taking`): the goodbye intent, rule "farewell"."""
        rules = self.leave
        text = text or ""
        if rules is None or not rules.applies_to(classifier_intent, confidence):
            return None
        for item in emoji_list(text):
            if self._emoji_intent(item["emoji"]) == self.reaction_intents[NEGATIVE]:
                return None
        words = self._plain_words(text)
        # The remark rules' question test ("ok bye, will it come by friday" asks something): its question starts
        # are whole openings ("will it", "will you"), so "bye for now, will check with my sister" is no question.
        asks = self.remarks.is_question(text, words) if self.remarks is not None else "?" in text
        farewell = None if asks else rules.farewell(words)
        if farewell is None:
            return None
        return Acknowledgement(intent=rules.intent, items=[farewell], remark=" ".join(words), rule="farewell")

    def _without_symbols(self, text: str) -> str:
        """`text` with the listed emoticons (":)") replaced by spaces."""
        for symbol, _ in self._symbols:
            text = text.replace(symbol, " ")
        return text

    def _plain_words(self, text: str) -> List[str]:
        """The words of `text` without its emoticons and emoji."""
        return tokenize(replace_emoji(self._without_symbols(text), " "))

    def _emoji_intent(self, symbol: str) -> Optional[str]:
        key = emoji_key(symbol)
        for candidate in (key, key.split(_ZWJ)[0]):  # the sequence itself, then its first emoji
            if candidate in self._emoji:
                return self._emoji[candidate]
        return self.other_emoji or None

    def reaction(self, emoji_text: Optional[str]) -> Optional[Tuple[str, str]]:
        """(polarity, intent) of a reaction emoji; None when it names no emoji (a removed reaction)."""
        acknowledgement = self.match(emoji_text)
        if acknowledgement is None or not emoji_list(emoji_text or ""):
            return None
        negative = acknowledgement.intent == self.reaction_intents[NEGATIVE]
        polarity = NEGATIVE if negative else POSITIVE
        return polarity, self.reaction_intents[polarity]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class Acknowledgements(DesignerListComponent, IntentClassifier):
    SECTION = "acknowledgements"
    STATE_FILE = "acknowledgements.json"

    def configure(self, section: Dict[Text, Any]) -> None:
        self._matcher = AcknowledgementMatcher(section)

    def required_intents(self) -> Iterable[Text]:
        return self._matcher.intents

    def _no_rival_of_the_same_kind(self, message: Message) -> None:
        """The classifier's first two intents are both acknowledgements that may carry a remark
        (`with_a_remark.plans.intents`: affirm, thank) or both `same_decision_intents` (affirm and
        feedback_positive for "sahi hai ye to"): "ok thanks, trying it on now" at affirm 0.68 and
        thank 0.59 is one decision, a resolution signal, not an ambiguous message for FallbackClassifier's
        `ambiguity_threshold` to hand off. The runner-up leaves the ranking (last, at 0.0), as a declined
        request does in KeywordEscalation; the first intent and its confidence stay as classified, so a
        low confidence still falls back."""
        remarks = self._matcher.remarks
        kinds = (set(remarks.plan_intents) if remarks else set()) | set(self._matcher.same_decision_intents)
        ranking = message.get(INTENT_RANKING_KEY) or []
        if len(ranking) < 2:
            return
        first, second = ranking[0].get(INTENT_NAME_KEY), ranking[1].get(INTENT_NAME_KEY)
        if first != (message.get(INTENT) or {}).get(INTENT_NAME_KEY):
            return
        if first in kinds and second in kinds:
            demote_intent(message, second)
            return
        # A question ranked first with an acknowledgement close behind ("will it shrink": ask_question 0.61,
        # deny 0.58): a message that asks something is no "ok" / "no" / "thanks", so the acknowledgement is
        # no rival either (`question_intent`; the question test of `praise_and_thanks`).
        praise = self._matcher.praise
        question_intent = self._matcher.question_intent
        if (question_intent and praise is not None and first == question_intent and second in self._matcher.intents
                and praise.is_question(message.get(CUSTOMER_TEXT_KEY) or message.get(TEXT) or "")):
            demote_intent(message, second)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.active is False:
            return messages
        for message in messages:
            text = message.get(TEXT) or ""
            classified = message.get(INTENT) or {}
            if is_reaction(message):
                reaction = self._matcher.reaction(text)
                if reaction is None:
                    continue
                polarity, intent = reaction
                set_intent(message, intent)
                entity = {"entity": REACTION_ENTITY, "value": polarity, "start": 0, "end": len(text),
                          "confidence": 1.0, "extractor": type(self).__name__}
                message.set(ENTITIES, (message.get(ENTITIES) or []) + [entity], add_to_output=True)
                explanation = {"intent": intent, "items": [text], "reaction": polarity}
            else:
                # The customer's own words first: FollowUpQuestion cut "aur" off "aur batao, kaise ho?" (a greeting).
                acknowledgement = self._matcher.match(message.get(CUSTOMER_TEXT_KEY) or text)
                if acknowledgement is None and message.get(CUSTOMER_TEXT_KEY):
                    acknowledgement = self._matcher.match(text)
                if acknowledgement is None:
                    acknowledgement = self._matcher.match_dismissal(
                        message.get(CUSTOMER_TEXT_KEY) or text, classified.get("name") or "")
                if acknowledgement is None:
                    # FollowUpQuestion may have cut "great," off the text; the remark rules read it all.
                    acknowledgement = self._matcher.match_with_remark(
                        message.get(CUSTOMER_TEXT_KEY) or text, classified.get("name") or "",
                        float(classified.get("confidence") or 0.0))
                if acknowledgement is None:
                    acknowledgement = self._matcher.match_praise(
                        message.get(CUSTOMER_TEXT_KEY) or text, classified.get("name") or "")
                    praise_intent = self._matcher.praise.praise_intent if self._matcher.praise else ""
                    if acknowledgement and acknowledgement.rule == "praise" and praise_intent not in self.trained_intents:
                        acknowledgement = None
                if acknowledgement is None:
                    acknowledgement = self._matcher.match_leave(
                        message.get(CUSTOMER_TEXT_KEY) or text, classified.get("name") or "",
                        float(classified.get("confidence") or 0.0))
                    leave = self._matcher.leave
                    if acknowledgement and leave is not None and leave.intent not in self.trained_intents:
                        acknowledgement = None
                if acknowledgement is None:
                    self._no_rival_of_the_same_kind(message)
                    continue
                set_intent(message, acknowledgement.intent)
                if acknowledgement.rule == "dismissal":
                    entity = {"entity": DISMISSAL_ENTITY, "value": "dismissal", "start": 0, "end": len(text),
                              "confidence": 1.0, "extractor": type(self).__name__}
                    message.set(ENTITIES, (message.get(ENTITIES) or []) + [entity], add_to_output=True)
                explanation = {"intent": acknowledgement.intent, "items": acknowledgement.items}
                if acknowledgement.rule:
                    explanation.update(remark=acknowledgement.remark, rule=acknowledgement.rule)
            message.set(ACKNOWLEDGEMENT_KEY, {**explanation, "classifier_intent": classified}, add_to_output=True)
        return messages
