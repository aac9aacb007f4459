"""A learnt second opinion on requests for a person (pattern 2) and pattern-3 topics (issue 12, session 39).

Placed after KeywordEscalation, StillLooking and QuestionRivals, before FallbackClassifier. The phrase lists of
escalation.yml catch the wordings someone wrote down; fresh traffic keeps finding new ones ("can someone from ur QC
team come on chat?", "put on the night cream yesterday, this morning there are small red bumps…"), which the intent
classifier reads as a question or is unsure of. This component is a logistic regression over the same sentence
embeddings the pipeline already computed (every dense sentence featurizer, in pipeline order: no second encoding
per message), trained on the labelled customer turns of the used-up conversation sets
(data/second_opinion/turns.yml, written by scripts/second_opinion_turns.py): `person`, one class per topic, `other`.

It only ever speaks where the pipeline read an ordinary message, and only when it is very sure:
- the reading is one of escalation.yml `second_opinion.replaces` (a knowledge-base question, an order-status
  message), or any reading under `replaces_below` (what FallbackClassifier would hand off as "not sure", an unsure
  person or topic included); a sure reading of a person or a topic always stays;
- no designer rule decided the message already (a request for a person or a declined one, a topic rule, an
  acknowledgement, still looking for the order number): those keep their reading;
- its most likely class is a person or a topic, with a probability of at least `limit`.
Then the intent becomes that class's intent (`human_request.intent`, or the intent of `topics` with that topic) at
the classifier's probability, and the parse data says why (`second_opinion: {class, probability,
classifier_intent}`). Rules and stories do the rest, exactly as for the same intent from the classifier.

Config:
    settings_path: escalation.yml (as the other designer components; ESCALATION_SETTINGS wins at the default).
    labelled_turns: the training file (default data/second_opinion/turns.yml). A change retrains the component.
    encoders: the pipeline's dense sentence featurizers, in pipeline order, as [{model_name, precision}]: the
        turns are encoded with exactly these, so that training and serving see the same vectors
        (scripts/check_config.py checks the list against the pipeline).
    regularisation_c: the logistic regression's C (default 4.0; chosen in session 39's leave-one-set-out runs).
The turns' embeddings are cached in build/second_opinion_embeddings/ (actions/embedding_cache.py; filled by
scripts/setup.sh), so a retrain after editing the turns encodes only the new ones. The settings in escalation.yml are
read when the model is loaded (restart Rasa after editing them; no retraining). On training data without the
person and topic intents (the out-of-scope benchmark's), the component trains nothing and does nothing.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Text

import numpy as np
import rasa.shared.utils.io
import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components import text_embedding
from components.calibrated_confidence import sentence_features
from components.designer_lists import confidence_setting, load_section, set_intent, settings_path

logger = logging.getLogger(__name__)

# Parse-data key that explains a reading this component gave (shown by `rasa shell nlu`, read by tests).
SECOND_OPINION_KEY = "second_opinion"
SECTION = "second_opinion"
PERSON = "person"
OTHER = "other"
# Parse-data keys of the designer rules that decided a message already (components/*.py): their reading stays.
DECIDED_KEYS = (
    "human_request_match",  # keyword_escalation.MATCH_KEY
    "human_request_declined",  # keyword_escalation.DECLINED_KEY
    "topic_signal",  # keyword_escalation.TOPIC_SIGNAL_KEY
    "acknowledgement",  # acknowledgements.ACKNOWLEDGEMENT_KEY
    "still_looking",  # still_looking.STILL_LOOKING_KEY
)
STATE_FILE = "second_opinion.json"
WEIGHTS_FILE = "second_opinion.npz"
CACHE_DIRECTORY = Path(__file__).resolve().parents[1] / "build" / "second_opinion_embeddings"


def read_turns(path: Path) -> Dict[Text, List[Text]]:
    """{class: [text, ...]} from the labelled-turns file, or a clear error."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"SecondOpinion: labelled turns not found at '{path}'. Write them with "
            "scripts/second_opinion_turns.py, or fix `labelled_turns` in config.yml."
        ) from error
    turns = document.get("turns") if isinstance(document, dict) else None
    if not isinstance(turns, dict) or not turns:
        raise ValueError(f"{path}: needs a non-empty mapping under `turns:` (class: [texts])")
    found: Dict[Text, List[Text]] = {}
    for name, texts in turns.items():
        if not isinstance(texts, list) or not all(isinstance(text, str) and text.strip() for text in texts):
            raise ValueError(f"{path}: `turns.{name}` must be a list of non-empty texts")
        found[str(name)] = list(texts)
    if OTHER not in found or len(found) < 2:
        raise ValueError(f"{path}: needs `{OTHER}` and at least one person or topic class under `turns:`")
    return found


def encode(texts: Sequence[Text], encoders: Sequence[Dict[Text, Any]], cache_directory: Optional[Path]) -> np.ndarray:
    """The texts' embeddings by every encoder of `encoders`, side by side (float64, one row per text): what the
    pipeline's featurizers give the same texts."""
    from actions.embedding_cache import EmbeddingCache
    from components.sentence_encoder import load_encoder

    cache = EmbeddingCache(cache_directory) if cache_directory is not None else None
    parts = []
    for spec in encoders:
        encoder = load_encoder(spec["model_name"], spec.get("precision", "float"))

        def compute(batch: Sequence[Text], encoder: Any = encoder) -> np.ndarray:
            return text_embedding.embed(encoder, list(batch))

        vectors = cache.embed(texts, spec["model_name"], encoder, compute) if cache else compute(texts)
        parts.append(np.asarray(vectors, dtype=np.float64))
    return np.hstack(parts)


def is_replaceable(reading: Optional[Text], confidence: Any, replaces: Set[Text], replaces_below: float) -> bool:
    """Whether the second opinion may replace the classifier's reading (the gate also used by
    bench/second_opinion_folds.py): any reading under `replaces_below`, which is no reading (as for topic_signals'
    `override_below`: an unsure person or topic would be handed off as "not sure", "my lips have puffed up and
    tingle": urgent_problem 0.32), or one of `replaces`. A sure person or topic is never in `replaces` (checked when
    the settings are read)."""
    if isinstance(confidence, (int, float)) and confidence < replaces_below:
        return True
    return reading in replaces


def cache_directory() -> Optional[Path]:
    """build/second_opinion_embeddings, or none when KB_EMBEDDING_CACHE turns embedding caches off."""
    from actions.embedding_cache import caches_turned_off

    return None if caches_turned_off() else CACHE_DIRECTORY


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class SecondOpinion(GraphComponent, IntentClassifier):
    """Logistic regression over the pipeline's sentence embeddings: person / topic / other, applied only when sure."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "settings_path": "escalation.yml",
            "labelled_turns": "data/second_opinion/turns.yml",
            "encoders": [],
            "regularisation_c": 4.0,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[str]:
        """Rasa fingerprints the config, not the file it names: the turns' content must retrain the component."""
        path = Path(config.get("labelled_turns") or cls.get_default_config()["labelled_turns"])
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
        return rasa.shared.utils.io.deep_container_fingerprint(
            {"turns": content, "module": inspect.getsource(inspect.getmodule(cls))}
        )

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        state: Optional[Dict[Text, Any]] = None,
        weights: Optional[Dict[Text, np.ndarray]] = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._validate_encoders()
        self._state: Dict[Text, Any] = dict(state or {})
        if self._state.get("active") and "protected" not in self._state:
            self._state["protected"] = sorted(set(self._state.get("intent_of", {}).values()))
        self._coef = weights["coef"] if weights else None
        self._intercept = weights["intercept"] if weights else None
        self._configure(load_section(settings_path(self._config["settings_path"]), SECTION, type(self).__name__,
                                     optional=True))
        self._dimension_warned = False

    def _validate_encoders(self) -> None:
        encoders = self._config["encoders"]
        if not isinstance(encoders, list) or not encoders or not all(
            isinstance(spec, dict) and isinstance(spec.get("model_name"), str) for spec in encoders
        ):
            raise InvalidConfigException(
                "SecondOpinion: `encoders` must list the pipeline's dense sentence featurizers in order, each as "
                "{model_name: ..., precision: ...}."
            )

    def _configure(self, section: Dict[Text, Any]) -> None:
        where = f"escalation.yml `{SECTION}`"
        # No section: the component stays out of the way (e.g. a test's own escalation file).
        self.enabled = bool(section) and section.get("enabled", True) is not False
        self.limit = confidence_setting(section, "limit", where, default=1.0)
        self.replaces_below = confidence_setting(section, "replaces_below", where, default=0.0)
        replaces = section.get("replaces") or []
        if not isinstance(replaces, list) or not all(isinstance(name, str) for name in replaces):
            raise ValueError(f"{where}.replaces must be a list of intent names")
        self.replaces = set(replaces)
        protected = set(self._state.get("protected", []))
        wrong = sorted(self.replaces & protected)
        if wrong:
            raise ValueError(f"{where}.replaces may not name a person or topic intent: {', '.join(wrong)}")

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SecondOpinion":
        return cls(config, model_storage, resource)

    # --- training -------------------------------------------------------------------------
    def intent_of_every_class(self) -> Dict[Text, Text]:
        """The intent of `person` and of every topic, read from escalation.yml (`human_request.intent`, `topics`)."""
        path = settings_path(self._config["settings_path"])
        person_intent = str(load_section(path, "human_request", type(self).__name__).get("intent") or "")
        topics = load_section(path, "topics", type(self).__name__)
        intent_of = {PERSON: person_intent}
        intent_of.update({str(value["topic"]): str(intent) for intent, value in topics.items()
                          if isinstance(value, dict) and value.get("topic")})
        return intent_of

    def intent_of_class(self, classes: Sequence[Text], intent_of: Dict[Text, Text]) -> Dict[Text, Text]:
        """Each person/topic class of the turns file and its intent (from `intent_of`, all of them); an unknown class
        is a clear error."""
        unknown = sorted(set(classes) - set(intent_of) - {OTHER})
        if unknown:
            raise ValueError(f"{self._config['labelled_turns']}: classes {', '.join(unknown)} are neither "
                             f"`{PERSON}`, `{OTHER}` nor a topic of escalation.yml `topics`")
        return {name: intent_of[name] for name in classes if name != OTHER}

    def train(self, training_data: TrainingData) -> Resource:
        from sklearn.linear_model import LogisticRegression

        turns = read_turns(Path(self._config["labelled_turns"]))
        every_intent = self.intent_of_every_class()
        intent_of = self.intent_of_class(list(turns), every_intent)
        missing = sorted(set(intent_of.values()) - set(training_data.intents))
        if missing:
            logger.warning("SecondOpinion: intent(s) %s not in the training data; the second opinion is off.",
                           ", ".join(missing))
            self._state = {"active": False}
            self._persist(None)
            return self._resource
        texts = [text for name in turns for text in turns[name]]
        labels = [name for name in turns for _ in turns[name]]
        features = encode(texts, self._config["encoders"], cache_directory())
        model = LogisticRegression(C=float(self._config["regularisation_c"]), class_weight="balanced",
                                   max_iter=3000)
        model.fit(features, labels)
        self._state = {"active": True, "classes": [str(name) for name in model.classes_], "intent_of": intent_of,
                       # Every person and topic intent, also those without turns: a reading of one always stays.
                       "protected": sorted(set(every_intent.values())),
                       "dimension": int(features.shape[1]),
                       "counts": {name: len(turns[name]) for name in turns}}
        self._coef = model.coef_.astype(np.float64)
        self._intercept = model.intercept_.astype(np.float64)
        self._persist({"coef": self._coef, "intercept": self._intercept})
        return self._resource

    def _persist(self, weights: Optional[Dict[Text, np.ndarray]]) -> None:
        with self._model_storage.write_to(self._resource) as directory:
            (directory / STATE_FILE).write_text(json.dumps(self._state))
            if weights is not None:
                np.savez(directory / WEIGHTS_FILE, **weights)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "SecondOpinion":
        state: Dict[Text, Any] = {}
        weights = None
        try:
            with model_storage.read_from(resource) as directory:
                state = json.loads((directory / STATE_FILE).read_text())
                if state.get("active"):
                    with np.load(directory / WEIGHTS_FILE) as data:
                        weights = {"coef": data["coef"], "intercept": data["intercept"]}
        except (ValueError, FileNotFoundError, OSError):
            state, weights = {}, None
        return cls(config, model_storage, resource, state=state, weights=weights)

    # --- inference ------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return bool(self.enabled and self._state.get("active") and self._coef is not None)

    def probabilities(self, vector: np.ndarray) -> Dict[Text, float]:
        """Each class's probability for one (1, dimension) row of sentence features."""
        logits = vector @ self._coef.T + self._intercept
        if len(self._state["classes"]) == 2:  # sklearn's binary case: one row of weights for the second class
            logits = np.hstack([np.zeros_like(logits), logits])
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probabilities = (exp / exp.sum(axis=1, keepdims=True))[0]
        return {name: float(p) for name, p in zip(self._state["classes"], probabilities)}

    def _ordinary(self, message: Message) -> bool:
        if any(message.get(key) for key in DECIDED_KEYS):
            return False
        classified = message.get(INTENT) or {}
        return is_replaceable(classified.get(INTENT_NAME_KEY), classified.get(PREDICTED_CONFIDENCE_KEY),
                              self.replaces, self.replaces_below)

    def process(self, messages: List[Message]) -> List[Message]:
        if not self.active:
            return messages
        for message in messages:
            if not self._ordinary(message):
                continue
            dense, _ = sentence_features(message, [])
            if not dense:
                continue
            vector = np.hstack(dense)
            if vector.shape[1] != self._state["dimension"]:
                if not self._dimension_warned:
                    logger.warning("SecondOpinion: sentence features of %d dimensions, trained on %d; retrain "
                                   "the model. The second opinion is skipped.", vector.shape[1],
                                   self._state["dimension"])
                    self._dimension_warned = True
                continue
            probabilities = self.probabilities(vector)
            best = max(probabilities, key=probabilities.get)
            if best == OTHER or probabilities[best] < self.limit:
                continue
            classified = dict(message.get(INTENT) or {})
            set_intent(message, self._state["intent_of"][best], confidence=probabilities[best])
            message.set(
                SECOND_OPINION_KEY,
                {"class": best, "probability": round(probabilities[best], 4), "classifier_intent": classified},
                add_to_output=True,
            )
        return messages


def warm_cache(config_path: Path = Path("config.yml")) -> int:
    """Encodes the labelled turns into the embedding cache (scripts/setup.sh), so the first training does not."""
    pipeline = (yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}).get("pipeline") or []
    spec = next((item for item in pipeline if str(item.get("name", "")).endswith("SecondOpinion")), None)
    if spec is None:
        return 0
    config = {**SecondOpinion.get_default_config(), **spec}
    turns = read_turns(Path(config["labelled_turns"]))
    texts = [text for name in turns for text in turns[name]]
    encode(texts, config["encoders"], cache_directory())
    return len(texts)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    print(f"second opinion: {warm_cache()} labelled turns in the embedding cache")
