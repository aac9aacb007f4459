"""Escalation pattern 2 in the NLU pipeline: explicit requests for a person always win.

Placed after the intent classifier(s) and before FallbackClassifier. When a message matches the
`human_request` lists of escalation.yml ("agent please", "speak to someone", "kisi insaan se baat karni
hai"), the intent becomes `human_request.intent` with confidence 1.0, whatever the classifier said,
so rules hand off at any moment — also in the middle of a form. "Do you sell human hair extensions?"
is vetoed by `not_requests` and left to the classifier.

A request the customer turns down ("not looking to talk to a person, how do I pick my size?", "agent
nahi chahiye, bas return policy batao": `human_request.declined`) is never forced, and `request_human`
leaves the classifier's ranking (it goes last, at 0.0): ranked first, the next intent takes its place
with its own (lower) confidence; ranked lower, it no longer counts as the close runner-up that makes
FallbackClassifier call the message ambiguous. The parse data explains both (`human_request_match`,
`human_request_declined`), and `question` holds the rest of the message for the knowledge base.

Pattern 3 by combination (escalation.yml `topic_signals`, components/topic_signals.py): a message
with no request for a person that has, e.g., a deadline plus a delivery problem ("kal shaadi hai aur
parcel abhi tak nahi aaya") or a repeated failure ("phir se galat size bhej diya") gets the rule's topic
intent with confidence 1.0 when the classifier read one of `override_intents` (an order-status or
knowledge-base question, an acknowledgement, ...) or that same topic (then the rule confirms it, and a
close runner-up no longer makes the message ambiguous); another topic the classifier found stays. The
parse data says which rule and cues (`topic_signal`).

Config: `settings_path` (see components/designer_lists.py). The word lists are read when the model is
loaded (restart Rasa after editing them). On training data without the target intent (e.g. the
out-of-scope benchmark's) the component does nothing.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.designer_lists import DesignerListComponent, demote_intent, load_section, set_intent, settings_path
from components.human_request import HumanRequestMatcher
from components.phrases import without_clauses
from components.topic_signals import TopicSignals

# Parse-data keys that explain what this component did (shown by `rasa shell nlu`, read by tests).
MATCH_KEY = "human_request_match"
DECLINED_KEY = "human_request_declined"
# The part of the message that carries the customer's question (actions/conversation.question_text).
QUESTION_KEY = "question"
# Parse-data key of a topic forced by `topic_signals`.
TOPIC_SIGNAL_KEY = "topic_signal"
TOPIC_SIGNALS_SECTION = "topic_signals"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class KeywordEscalation(DesignerListComponent, IntentClassifier):
    SECTION = "human_request"
    STATE_FILE = "keyword_escalation.json"

    def configure(self, section: Dict[Text, Any]) -> None:
        self._matcher = HumanRequestMatcher(section)
        # The optional second section, read from the same file.
        self._topics = TopicSignals(load_section(settings_path(self._config["settings_path"]), TOPIC_SIGNALS_SECTION,
                                                 type(self).__name__, optional=True))

    def required_intents(self) -> Iterable[Text]:
        return [self._matcher.intent]

    def process(self, messages: List[Message]) -> List[Message]:
        if self.active is False:
            return messages
        for message in messages:
            text = message.get(TEXT) or ""
            match = self._matcher.match(text)
            if match:
                classified = message.get(INTENT) or {}
                set_intent(message, self._matcher.intent)
                message.set(
                    MATCH_KEY,
                    {"phrase": match.phrase, "rule": match.rule, "classifier_intent": classified},
                    add_to_output=True,
                )
                continue
            declined = self._matcher.declined(text)
            if declined:
                self._keep_declined_request_out(message, text, declined)
            self._topic_signal(message, text)
        return messages

    def _topic_signal(self, message: Message, text: Text) -> None:
        classified = message.get(INTENT) or {}
        if not self.trained_intents:
            return
        name = classified.get(INTENT_NAME_KEY)
        ordinary = self._topics.overrides(name, classified.get(PREDICTED_CONFIDENCE_KEY))
        # Over an ordinary (or unsure) reading the rule decides; over the same topic it confirms the classifier
        # (a close runner-up no longer makes FallbackClassifier call the message ambiguous).
        if not ordinary and name not in self._topics.replaceable:
            return
        signal = self._topics.match(text, name)
        if signal is None or signal.intent not in self.trained_intents:
            return
        if not ordinary and name != signal.intent and name not in signal.also_over:
            return  # another topic the classifier found itself stays, unless the rule names it (`also_over`)
        set_intent(message, signal.intent)
        message.set(
            TOPIC_SIGNAL_KEY,
            {"intent": signal.intent, "rule": signal.rule, "cues": signal.cues, "classifier_intent": classified},
            add_to_output=True,
        )

    def _keep_declined_request_out(self, message: Message, text: Text, declined: List[Any]) -> None:
        classified = message.get(INTENT) or {}
        explanation: Dict[Text, Any] = {
            "phrase": declined[0].phrase,
            "cue": declined[0].cue,
            "classifier_intent": classified,
        }
        # Ranked lower, the declined request is no rival of the intent that stays either: as a close
        # runner-up ("no need to talk to an agent, just tell me the exchange policy": ask_question 0.69,
        # request_human 0.68) FallbackClassifier would call the message ambiguous and hand it off.
        if demote_intent(message, self._matcher.intent) and classified.get(INTENT_NAME_KEY) == self._matcher.intent:
            message.set(INTENT, dict(message.get(INTENT_RANKING_KEY)[0]), add_to_output=True)
        message.set(DECLINED_KEY, explanation, add_to_output=True)
        rest = without_clauses(text, [d.clause for d in declined])
        if rest:
            message.set(QUESTION_KEY, rest, add_to_output=True)
