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

The parse data says what happened: `acknowledgement: {"intent", "items", "classifier_intent",
"reaction"}`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Text, Tuple

import emoji
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.designer_lists import DesignerListComponent, set_intent
from components.phrases import PhraseList, phrase_strings, squeeze, tokenize

# Parse-data key that explains an acknowledgement (shown by `rasa shell nlu`, read by tests).
ACKNOWLEDGEMENT_KEY = "acknowledgement"
# Entity a reaction carries; the value is "positive" or "negative" (rules in data/rules/chitchat.yml).
REACTION_ENTITY = "reaction"
POSITIVE, NEGATIVE = "positive", "negative"

# Skin tones (U+1F3FB–U+1F3FF) and text/emoji variation selectors change how an emoji looks, not what it says.
_APPEARANCE = re.compile("[\U0001F3FB-\U0001F3FF\uFE0E\uFE0F]")
_ZWJ = "\u200d"


def emoji_key(symbol: str) -> str:
    return _APPEARANCE.sub("", symbol)


def is_reaction(message: Message) -> bool:
    whatsapp = (message.get("metadata") or {}).get("whatsapp")
    return isinstance(whatsapp, dict) and whatsapp.get("type") == "reaction"


@dataclass(frozen=True)
class Acknowledgement:
    intent: str
    items: List[str]  # the listed words, phrases and emoji found, in order


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
                found = emoji.emoji_list(entry)
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
        for item in emoji.emoji_list(rest):
            intent = self._emoji_intent(item["emoji"])
            if intent is None:
                return None
            found.append((item["emoji"], intent))
        rest = emoji.replace_emoji(rest, " ")
        words = tokenize(rest)
        position = 0
        while position < len(words):
            best = None
            for intent, phrases in self._phrases.items():
                hit = phrases.longest_at(words, position)
                if hit and (best is None or hit[1] > best[1]):
                    best = (hit[0], hit[1], intent)
            if best is not None:
                found.append((best[0], best[2]))
                position = best[1]
            elif squeeze(words[position]) in self._fillers:
                position += 1
            else:
                return None
        if not found:
            return None
        intent = min((i for _, i in found), key=self.intents.index)
        return Acknowledgement(intent=intent, items=[item for item, _ in found])

    def _emoji_intent(self, symbol: str) -> Optional[str]:
        key = emoji_key(symbol)
        for candidate in (key, key.split(_ZWJ)[0]):  # the sequence itself, then its first emoji
            if candidate in self._emoji:
                return self._emoji[candidate]
        return self.other_emoji or None

    def reaction(self, emoji_text: Optional[str]) -> Optional[Tuple[str, str]]:
        """(polarity, intent) of a reaction emoji; None when it names no emoji (a removed reaction)."""
        acknowledgement = self.match(emoji_text)
        if acknowledgement is None or not emoji.emoji_list(emoji_text or ""):
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
                acknowledgement = self._matcher.match(text)
                if acknowledgement is None:
                    continue
                set_intent(message, acknowledgement.intent)
                explanation = {"intent": acknowledgement.intent, "items": acknowledgement.items}
            message.set(ACKNOWLEDGEMENT_KEY, {**explanation, "classifier_intent": classified}, add_to_output=True)
        return messages
