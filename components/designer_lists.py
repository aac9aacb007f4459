"""Base of the NLU components that follow a conversation designer's word lists in escalation.yml.

KeywordEscalation (pattern 2), Acknowledgements and the follow-up components each read one section of
escalation.yml when the model is loaded (restart Rasa after editing it) and act only on training data
that has the intents they work with. The out-of-scope benchmark trains this same config.yml on other
intent sets (HWU64); there these components do nothing, so its figures measure the classifier alone.

Config of every such component:
    settings_path: path of escalation.yml (default: "escalation.yml", relative to the working dir).
    Left at the default, the ESCALATION_SETTINGS environment variable wins, as it does for the action
    server and the WhatsApp connector, so all three read the same file.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Text

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

DEFAULT_SETTINGS_PATH = "escalation.yml"
SETTINGS_ENV = "ESCALATION_SETTINGS"


def settings_path(configured: Text) -> Text:
    """config.yml's `settings_path`; at its default, ESCALATION_SETTINGS (if set) names the file instead."""
    if configured == DEFAULT_SETTINGS_PATH:
        return os.environ.get(SETTINGS_ENV) or configured
    return configured


def load_section(settings_path: Text, section: Text, component: Text, optional: bool = False) -> Dict[Text, Any]:
    """One section of escalation.yml, or an error that says which file and section is missing (an
    `optional` section that is absent: {})."""
    path = Path(settings_path)
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{component}: escalation settings not found at '{path}'. Set {SETTINGS_ENV} or `settings_path` "
            "in config.yml, or run Rasa from the project root."
        ) from error
    found = settings.get(section)
    if found is None and optional:
        return {}
    if not isinstance(found, dict):
        raise ValueError(f"{path}: missing the `{section}` section")
    return found


def confidence_setting(section: Dict[Text, Any], key: Text, where: Text, default: float = 0.0) -> float:
    """A designer's confidence (`section[key]`, `default` when absent): a number from 0 to 1, or a clear error."""
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{where}.{key} must be a number from 0 to 1, got {value!r}")
    return float(value)


def count_setting(section: Dict[Text, Any], key: Text, where: Text, default: int) -> int:
    """A designer's count (`section[key]`, `default` when absent): a whole number of at least 1, or a clear error."""
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}.{key} must be a whole number of at least 1, got {value!r}")
    return value


def set_intent(message: Message, intent: Text, confidence: float = 1.0) -> None:
    """Makes `intent` the message's intent; the classifier's other intents follow it in the ranking at 0."""
    others = [
        {**entry, PREDICTED_CONFIDENCE_KEY: 0.0}
        for entry in message.get(INTENT_RANKING_KEY) or []
        if entry.get(INTENT_NAME_KEY) != intent
    ]
    chosen = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: confidence}
    message.set(INTENT, chosen, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [dict(chosen)] + others, add_to_output=True)


def demote_intent(message: Message, intent: Text) -> bool:
    """`intent` leaves the contest: last in the ranking at 0.0, so it is no close runner-up for
    FallbackClassifier's ambiguity test (the parse data still shows it was ranked). The message's intent is
    not touched. False when `intent` is not in the ranking or nothing else is."""
    ranking = message.get(INTENT_RANKING_KEY) or []
    others = [entry for entry in ranking if entry.get(INTENT_NAME_KEY) != intent]
    if not others or len(others) == len(ranking):
        return False
    demoted = [{**entry, PREDICTED_CONFIDENCE_KEY: 0.0} for entry in ranking if entry.get(INTENT_NAME_KEY) == intent]
    message.set(INTENT_RANKING_KEY, others + demoted, add_to_output=True)
    return True


class DesignerListComponent(GraphComponent):
    """Subclasses set SECTION and STATE_FILE, read their section in `configure` and name the intents
    they need in `required_intents`; `active` is False when the training data lacks one of them."""

    SECTION: Text = ""
    STATE_FILE: Text = ""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"settings_path": DEFAULT_SETTINGS_PATH}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        active: Optional[bool] = None,
        trained_intents: Optional[List[Text]] = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self.configure(load_section(settings_path(config["settings_path"]), self.SECTION, type(self).__name__))
        self.active = active
        # Every intent of the training data (for lists that name intents of their own, e.g. a topic rule):
        # remembered with the state, so a list edited later may name any trained intent.
        self.trained_intents: List[Text] = list(trained_intents or [])

    def configure(self, section: Dict[Text, Any]) -> None:
        raise NotImplementedError

    def required_intents(self) -> Iterable[Text]:
        raise NotImplementedError

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "DesignerListComponent":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        missing: List[Text] = sorted(set(self.required_intents()) - set(training_data.intents))
        self.active = not missing
        if missing:
            logger.warning(
                f"{type(self).__name__}: intent(s) {', '.join(missing)} not in the training data; "
                f"the `{self.SECTION}` lists of escalation.yml are not applied."
            )
        self.trained_intents = sorted(training_data.intents)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / self.STATE_FILE).write_text(
                json.dumps({"active": self.active, "intents": self.trained_intents}))
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "DesignerListComponent":
        try:
            with model_storage.read_from(resource) as directory:
                state = json.loads((directory / cls.STATE_FILE).read_text())
        except (ValueError, FileNotFoundError):
            state = {}
        return cls(config, model_storage, resource, active=state.get("active"), trained_intents=state.get("intents"))
