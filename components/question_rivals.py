"""A knowledge-base question with a harmless intent close behind: the knowledge base decides.

Placed after KeywordEscalation and before FallbackClassifier. The calibrated classifier scores every
intent on its own, so a question that also reads a little like an order-status message ("after
dispatch how do i follow my package": ask_question 0.68, order_status 0.62) or like chit-chat has two
intents within FallbackClassifier's `ambiguity_threshold`, and was handed off as
low-confidence although the knowledge base answers it.

When the question intent (escalation.yml `question_rivals.question_intent`) is ranked first and the
runner-up is one of `question_rivals.intents`, the runner-up leaves the contest (last in the ranking at
0.0, as a declined request does in KeywordEscalation). The first intent and its confidence stay as
classified, so a question under the fallback threshold still falls back. The knowledge base then
decides with its own calibrated answer probability: it answers, or hands off with the same honest
low-confidence hand-off (actions/answers.py). Pattern-3 topics, the request for a person and STOP may
not be listed: whichever reading is right, a person (or silence) is due, so that ambiguity stays a
hand-off.

The other way round (`question_rivals.yields_to`): when one of those intents is ranked first and the
question is the runner-up ("can u check where my order is": order_status 0.80, ask_question 0.74), the
question leaves the contest and the first intent's own path runs (the order form asks for the number;
a side question inside the form is still answered). Both readings answer; neither is a person's call.
The same intents are refused there.

The parse data says what happened: `question_rival: {"intent", "confidence"}` (the runner-up demoted).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message

from components.designer_lists import DesignerListComponent, demote_intent, load_section, settings_path

# Parse-data key that explains a demoted runner-up (shown by `rasa shell nlu`, read by tests).
RIVAL_KEY = "question_rival"
# Intents that must stay rivals: the ambiguity between a question and these is a person's (or STOP's) call.
NEVER_LISTED_SECTIONS = ("topics",)
STOP_INTENT = "stop_messages"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class QuestionRivals(DesignerListComponent, IntentClassifier):
    SECTION = "question_rivals"
    STATE_FILE = "question_rivals.json"

    def configure(self, section: Dict[Text, Any]) -> None:
        where = f"escalation.yml `{self.SECTION}`"
        self.question_intent = str(section.get("question_intent") or "")
        if not self.question_intent:
            raise ValueError(f"{where} needs a `question_intent`")
        self.rivals = self._intent_list(section, "intents", where, required=True)
        self.yields_to = self._intent_list(section, "yields_to", where, required=False)
        path = settings_path(self._config["settings_path"])
        forbidden = set(load_section(path, "topics", type(self).__name__, optional=True))
        forbidden.add(str(load_section(path, "human_request", type(self).__name__, optional=True).get("intent") or ""))
        forbidden.update({STOP_INTENT, self.question_intent})
        for key, listed in (("intents", self.rivals), ("yields_to", self.yields_to)):
            clash = sorted(forbidden.intersection(listed))
            if clash:
                raise ValueError(
                    f"{where}.{key} may not list {', '.join(clash)}: a topic, a request for a person, STOP or the "
                    "question intent itself must stay a rival (a person is due whichever reading is right)"
                )

    @staticmethod
    def _intent_list(section: Dict[Text, Any], key: Text, where: Text, required: bool) -> List[Text]:
        listed = section.get(key)
        if listed is None and not required:
            return []
        if not isinstance(listed, list) or not all(isinstance(name, str) and name for name in listed):
            raise ValueError(f"{where}.{key} must be a list of intent names")
        return list(dict.fromkeys(listed))

    def required_intents(self) -> Iterable[Text]:
        return [self.question_intent]

    def process(self, messages: List[Message]) -> List[Message]:
        if self.active is False:
            return messages
        for message in messages:
            ranking = message.get(INTENT_RANKING_KEY) or []
            if len(ranking) < 2:
                continue
            first, second = ranking[0], ranking[1]
            if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) != first.get(INTENT_NAME_KEY):
                continue
            pair = (first.get(INTENT_NAME_KEY), second.get(INTENT_NAME_KEY))
            question_first = pair[0] == self.question_intent and pair[1] in self.rivals
            question_second = pair[0] in self.yields_to and pair[1] == self.question_intent
            if not (question_first or question_second):
                continue
            if demote_intent(message, second[INTENT_NAME_KEY]):
                message.set(
                    RIVAL_KEY,
                    {"intent": second[INTENT_NAME_KEY], "confidence": second.get(PREDICTED_CONFIDENCE_KEY)},
                    add_to_output=True,
                )
        return messages
