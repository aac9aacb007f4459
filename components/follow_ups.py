"""Follow-up questions are classified like the question they carry.

"ok and can I return it if it doesn't fit?", "also do you ship to Pune?", "aur exchange kaise hota
hai?", "acha, delivery kitne din mein?": WhatsApp customers open a next question with a discourse
marker. Two components of config.yml, both reading `follow_ups` in escalation.yml:

- `FollowUpQuestion`, first in the pipeline, cuts the leading markers off the text the rest of the
  pipeline classifies (and the knowledge base searches): `markers` always, `markers_before_a_pause`
  only when punctuation follows them ("acha, delivery…" but not "acha laga"), and a leading clause
  with one of the `asides` ("i dont have the number right now, what's the return window?", "number
  baad me deti hu, pehle batao…"). Something must be left.
- `CustomerText`, last before FallbackClassifier, puts the customer's own words back as the message
  text (so the tracker, the inbox transcript and `rasa shell nlu` show what was written) and moves the
  entity offsets back onto them.

The parse data keeps `follow_up: {"markers": [...]}` and `question`: the text that was classified,
which actions/conversation.question_text gives the knowledge-base search. Training data is not
changed: the classifier learns from the examples as written.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import ENTITIES, ENTITY_ATTRIBUTE_END, ENTITY_ATTRIBUTE_START, TEXT, TEXT_TOKENS
from rasa.shared.nlu.training_data.message import Message

from components.designer_lists import DesignerListComponent
from components.keyword_escalation import QUESTION_KEY
from components.phrases import PhraseList, clause_spans, phrase_strings, word_spans

# Parse-data key naming the markers that were cut off.
FOLLOW_UP_KEY = "follow_up"
# Where FollowUpQuestion keeps the customer's own text for CustomerText (not part of the parse data).
_CUSTOMER_TEXT = CUSTOMER_TEXT_KEY = "follow_up_customer_text"
_CUT_AT = "follow_up_cut_at"
# What may separate a marker from the question: spaces and punctuation ("one more thing - is it…").
_SEPARATOR = re.compile(r"[\s,.;:!…\-–—]*")
_PAUSE = re.compile(r"[,.;:!…\-–—]")
_DIGITS = re.compile(r"\d{3,}")


class FollowUpMarkers:
    def __init__(self, section: Dict[str, Any]) -> None:
        where = "escalation.yml: follow_ups"
        self.question_intent = str(section.get("question_intent") or "")
        if not self.question_intent:
            raise ValueError(f"{where}.question_intent is missing")
        self._markers = PhraseList(phrase_strings(section.get("markers"), f"{where}.markers"), squeezed=True)
        self._before_a_pause = PhraseList(
            phrase_strings(section.get("markers_before_a_pause"), f"{where}.markers_before_a_pause"), squeezed=True
        )
        self._asides = PhraseList(phrase_strings(section.get("asides"), f"{where}.asides"))

    def _aside_at(self, text: str, spans: List[tuple], words: List[str], first: int):
        """(phrase, index of the first word after the clause) when the clause that starts at words[first]
        is an aside ("i dont have the number right now, …") and another clause follows it; else None."""
        if not self._asides or first >= len(words):
            return None
        start = spans[first][1]
        clause = next(((s, e) for s, e in clause_spans(text) if s <= start < e), None)
        if clause is None:
            return None
        end = next((i for i in range(first, len(words)) if spans[i][1] >= clause[1]), len(words))
        if end >= len(words):
            return None
        if any(_DIGITS.search(word) for word in words[first:end]):
            return None  # "dont have the number 4821, …" carries the number: nothing is cut
        phrase = self._asides.find(words[first:end])
        return (phrase, end) if phrase else None

    def split(self, text: str) -> tuple[List[str], int]:
        """The leading markers of `text` and the offset where its question starts (0: no marker)."""
        markers: List[str] = []
        cut = 0
        # Tokenised once: a message of thousands of "ok and"s must not be re-read for every marker.
        spans = word_spans(text)
        words = [word for word, _start, _end in spans]
        first = 0  # the first word after the markers found so far
        while True:
            marker = None
            always = self._markers.longest_at(words, first)
            paused = self._before_a_pause.longest_at(words, first)
            if paused and paused[1] < len(words):
                between = text[spans[paused[1] - 1][2] : spans[paused[1]][1]]
                if not _PAUSE.search(between):
                    paused = None
            for found in (always, paused):
                if found and found[1] < len(words) and (marker is None or found[1] > marker[1]):
                    marker = found
            if marker is None:
                marker = self._aside_at(text, spans, words, first)
            if marker is None:
                return markers, cut
            markers.append(marker[0])
            first = marker[1]
            cut = _SEPARATOR.match(text, spans[first - 1][2]).end()

    def question_of(self, text: str) -> str:
        """`text` without its leading markers: what the knowledge base searches ("ok and is it vegan?" → "is it vegan?")."""
        cut = self.split(text)[1]
        return text[cut:] if cut else text


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class FollowUpQuestion(DesignerListComponent, IntentClassifier):
    SECTION = "follow_ups"
    STATE_FILE = "follow_ups.json"

    def configure(self, section: Dict[Text, Any]) -> None:
        self._markers = FollowUpMarkers(section)

    def required_intents(self) -> Iterable[Text]:
        return [self._markers.question_intent]

    def process(self, messages: List[Message]) -> List[Message]:
        if self.active is False:
            return messages
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str):
                continue
            markers, cut = self._markers.split(text)
            if not markers:
                continue
            message.set(_CUSTOMER_TEXT, text)
            message.set(_CUT_AT, cut)
            message.set(TEXT, text[cut:])
            message.set(FOLLOW_UP_KEY, {"markers": markers}, add_to_output=True)
            message.set(QUESTION_KEY, text[cut:], add_to_output=True)
        return messages


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class CustomerText(GraphComponent, IntentClassifier):
    """Gives a message FollowUpQuestion shortened its customer's text back (see the module docstring)."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "CustomerText":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(_CUSTOMER_TEXT)
            if text is None:
                continue
            cut = int(message.get(_CUT_AT) or 0)
            message.set(TEXT, text)
            for entity in message.get(ENTITIES) or []:
                for key in (ENTITY_ATTRIBUTE_START, ENTITY_ATTRIBUTE_END):
                    if isinstance(entity.get(key), int):
                        entity[key] += cut
            for token in message.get(TEXT_TOKENS) or []:
                token.start += cut
                token.end += cut
        return messages
