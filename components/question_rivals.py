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
        listed = section.get("intents")
        if not isinstance(listed, list) or not all(isinstance(name, str) and name for name in listed):
            raise ValueError(f"{where}.intents must be a list of intent names")
        self.rivals = list(dict.fromkeys(listed))
        path = settings_path(self._config["settings_path"])
        forbidden = set(load_section(path, "topics", type(self).__name__, optional=True))
        forbidden.add(str(load_section(path, "human_request", type(self).__name__, optional=True).get("intent") or ""))
        forbidden.update({STOP_INTENT, self.question_intent})
        clash = sorted(forbidden.intersection(self.rivals))
        if clash:
            raise ValueError(
                f"{where}.intents may not list {', '.join(clash)}: a topic, a request for a person, STOP or the "
                "question intent itself must stay a rival (a person is due whichever reading is right)"
            )

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
            if first.get(INTENT_NAME_KEY) != self.question_intent:
                continue
            if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) != self.question_intent:
                continue
            if second.get(INTENT_NAME_KEY) not in self.rivals:
                continue
            if demote_intent(message, second[INTENT_NAME_KEY]):
                message.set(
                    RIVAL_KEY,
                    {"intent": second[INTENT_NAME_KEY], "confidence": second.get(PREDICTED_CONFIDENCE_KEY)},
                    add_to_output=True,
                )
        return messages
