"""Escalation pattern 2 in the NLU pipeline: explicit requests for a person always win.

Placed after the intent classifier(s) and before FallbackClassifier. When a message matches the
`human_request` lists of escalation.yml ("agent please", "speak to someone", "kisi insaan se baat karni
hai"), the intent becomes `human_request.intent` with confidence 1.0, whatever the classifier said,
so rules hand off at any moment — also in the middle of a form. "Do you sell human hair extensions?"
is vetoed by `not_requests` and left to the classifier.

Config:
    settings_path: path of escalation.yml (default: "escalation.yml", relative to the working dir).

The word lists are read when the model is loaded (restart Rasa after editing them). Training only
records whether the target intent exists in the training data; if it does not (e.g. when this config
is trained on another data set, as the out-of-scope benchmark does), the component does nothing.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.human_request import HumanRequestMatcher

logger = logging.getLogger(__name__)

STATE_FILE = "keyword_escalation.json"
# Parse-data key that explains an override (shown by `rasa shell nlu`, read by tests).
MATCH_KEY = "human_request_match"


def load_matcher(settings_path: Text) -> HumanRequestMatcher:
    path = Path(settings_path)
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"KeywordEscalation: escalation settings not found at '{path}'. Set `settings_path` in "
            "config.yml or run Rasa from the project root."
        ) from error
    section = settings.get("human_request")
    if not isinstance(section, dict):
        raise ValueError(f"{path}: missing the `human_request` section")
    return HumanRequestMatcher(section)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class KeywordEscalation(GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"settings_path": "escalation.yml"}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        intent_known: Optional[bool] = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._matcher = load_matcher(config["settings_path"])
        self._intent_known = intent_known

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "KeywordEscalation":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        self._intent_known = self._matcher.intent in training_data.intents
        if not self._intent_known:
            logger.warning(
                f"KeywordEscalation: intent '{self._matcher.intent}' is not in the training data; "
                "requests for a person will be left to the classifier."
            )
        with self._model_storage.write_to(self._resource) as directory:
            (directory / STATE_FILE).write_text(json.dumps({"intent_known": self._intent_known}))
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "KeywordEscalation":
        try:
            with model_storage.read_from(resource) as directory:
                state = json.loads((directory / STATE_FILE).read_text())
        except (ValueError, FileNotFoundError):
            state = {}
        return cls(config, model_storage, resource, intent_known=state.get("intent_known"))

    def process(self, messages: List[Message]) -> List[Message]:
        if self._intent_known is False:
            return messages
        for message in messages:
            match = self._matcher.match(message.get(TEXT))
            if not match:
                continue
            classified = message.get(INTENT) or {}
            ranking = [
                {**entry, PREDICTED_CONFIDENCE_KEY: 0.0}
                for entry in message.get(INTENT_RANKING_KEY) or []
                if entry.get(INTENT_NAME_KEY) != self._matcher.intent
            ]
            override = {INTENT_NAME_KEY: self._matcher.intent, PREDICTED_CONFIDENCE_KEY: 1.0}
            message.set(INTENT, override, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [dict(override)] + ranking, add_to_output=True)
            message.set(
                MATCH_KEY,
                {"phrase": match.phrase, "rule": match.rule, "classifier_intent": classified},
                add_to_output=True,
            )
        return messages
