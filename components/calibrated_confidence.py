"""Intent classifier whose confidence is calibrated for the FallbackClassifier threshold.

Rasa compares `intent.confidence` with FallbackClassifier's `threshold` (0.6 in config.yml) to
decide "not sure -> hand off". A softmax classifier is close to 1.0 for almost any input, so that
comparison says little. This component ranks intents with a logistic regression on the pipeline's
sentence features and replaces the confidence with a calibrated one (see
`components.in_scope_model`):

* held-out folds of the training data tell how in-scope messages score (classifier probability,
  similarity to the predicted intent's nearest examples, Mahalanobis distance to the nearest
  intent centroid in the sentence-embedding space);
* a message's confidence is its percentile among those held-out in-scope scores, mapped so that
  the percentile `1 - in_scope_coverage` equals `threshold`. With the defaults, about 96 % of
  in-scope messages stay at or above 0.6 and anything that looks less in scope than the least
  typical 4 % of the training data falls below it.

Output (what FallbackClassifier consumes):
    intent: {name, confidence}, confidence calibrated;
    intent_ranking: up to `ranking_length` intents; the top one has the calibrated confidence, each
        other one that value minus its gap in (temperature-calibrated) classifier probability to
        the top intent, floored at 0. So FallbackClassifier's `ambiguity_threshold` fires exactly
        when the classifier's two best intents are within that many probability points, however
        in-scope the message looks. Every entry also carries `raw_confidence` (the classifier's own
        probability).
    intent_calibration: {raw_confidence, in_scope_percentile} for debugging (`rasa shell nlu`).

It learns only from the intents and examples it is trained on; nothing is specific to one bot.

Config:
    threshold: confidence that marks the calibrated boundary; keep equal to FallbackClassifier's
        `threshold` (default 0.6).
    in_scope_coverage: share of in-scope messages that should stay at or above `threshold`
        (default 0.96). Higher = fewer needless hand-offs, more out-of-scope messages answered.
    neighbours: nearest training examples of the predicted intent averaged for similarity (5).
    folds: cross-fitting folds for the held-out scores (10; more folds = calibration models closer
        to the final one, i.e. coverage closer to `in_scope_coverage`, but longer training).
    regularisation_c: inverse L2 regularisation strength of the logistic regression (10.0).
    evidence: evidence averaged into the in-scope score, any of "classifier", "neighbours",
        "mahalanobis", "energy" (default: all four).
    featurizers: names (or aliases) of featurizers whose sentence features are used; empty = all.
        Dense features (e.g. SentenceEmbeddingFeaturizer) are required; each dense featurizer is one
        view with its own classifier and evidence (two different sentence encoders see different
        things; `components.in_scope_model`). Sparse ones (e.g. CountVectorsFeaturizer) are tf-idf
        weighted and added to every view's classifier input.
    ranking_length: number of intents reported in `intent_ranking` (10).
    random_seed: seed of the fold assignment (0).
"""
from __future__ import annotations

import inspect
import json
import logging
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
import rasa.shared.utils.io
import scipy.sparse as sp
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import (
    FEATURE_TYPE_SENTENCE,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components import in_scope_model
from components.in_scope_model import EVIDENCE_KINDS, CalibratedIntentModel, Prediction
from components.serving_threads import limit_blas_threads_for_serving

logger = logging.getLogger(__name__)

ARRAYS_FILE = "calibrated_intent_model.npz"
METADATA_FILE = "calibrated_intent_model.json"
# Parse-data keys for debugging; FallbackClassifier only reads `intent` and `intent_ranking`.
RAW_CONFIDENCE_KEY = "raw_confidence"
CALIBRATION_KEY = "intent_calibration"


def _empty_row(dim: int) -> in_scope_model.SparseRow:
    return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64), dim


def sentence_features(
    message: Message, featurizers: List[Text], sparse_as_csr: bool = True
) -> Tuple[List[np.ndarray], List[Tuple[Text, sp.spmatrix]]]:
    """The message's dense sentence features (one (1, dim) row per dense featurizer, in pipeline
    order: each is a view of `CalibratedIntentModel`) and its sparse ones per featurizer (as CSR
    matrices; with `sparse_as_csr=False` as stored on the message)."""
    dense_parts, sparse_parts = [], []
    for feature in message.features:
        if feature.attribute != TEXT or feature.type != FEATURE_TYPE_SENTENCE:
            continue
        if featurizers and feature.origin not in featurizers:
            continue
        if feature.is_dense():
            dense_parts.append(np.asarray(feature.features, dtype=np.float64).reshape(1, -1))
        else:
            sparse_parts.append((feature.origin, sp.csr_matrix(feature.features) if sparse_as_csr else feature.features))
    return dense_parts, sparse_parts


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class CalibratedIntentClassifier(GraphComponent, IntentClassifier):
    """Logistic-regression intent ranking with a conformally calibrated confidence."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (documented in the module docstring)."""
        return {
            "threshold": 0.6,
            "in_scope_coverage": 0.96,
            "neighbours": 5,
            "folds": 10,
            "regularisation_c": 10.0,
            "evidence": list(EVIDENCE_KINDS),
            "featurizers": [],
            "ranking_length": 10,
            "random_seed": 0,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages the component needs."""
        return ["sklearn", "scipy"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[str]:
        """Rasa's training cache only fingerprints this class's source; the model lives in
        `components.in_scope_model`, so a change there must also invalidate cached training."""
        return rasa.shared.utils.io.deep_container_fingerprint(inspect.getsource(in_scope_model))

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[CalibratedIntentModel] = None,
        sparse_dims: Optional[Dict[Text, int]] = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._model = model
        # Sparse featurizer name -> feature dimension, in the block order the model was trained with.
        self._sparse_dims: Dict[Text, int] = dict(sparse_dims or {})
        self._validate_config()

    def _validate_config(self) -> None:
        try:
            self._new_model()
        except ValueError as error:
            raise InvalidConfigException(f"CalibratedIntentClassifier: {error}") from error

    def _new_model(self) -> CalibratedIntentModel:
        return CalibratedIntentModel(
            threshold=float(self._config["threshold"]),
            in_scope_coverage=float(self._config["in_scope_coverage"]),
            neighbours=int(self._config["neighbours"]),
            folds=int(self._config["folds"]),
            regularisation_c=float(self._config["regularisation_c"]),
            evidence=list(self._config["evidence"]),
            seed=int(self._config["random_seed"]),
        )

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CalibratedIntentClassifier:
        """Creates an untrained component."""
        return cls(config, model_storage, resource)

    # --- training -------------------------------------------------------------------------
    def train(self, training_data: TrainingData) -> Resource:
        """Fits the classifier and its calibration on the intent examples."""
        featurizers = list(self._config["featurizers"])
        examples = [
            example
            for example in training_data.intent_examples
            if example.get(INTENT) and sentence_features(example, featurizers)[0]
        ]
        if len(examples) < len(training_data.intent_examples):
            logger.warning(
                "CalibratedIntentClassifier: %d intent examples have no dense sentence features "
                "and are ignored.",
                len(training_data.intent_examples) - len(examples),
            )
        if not examples:
            logger.warning(
                "CalibratedIntentClassifier: nothing to train on (no intent examples with dense "
                "sentence features; is SentenceEmbeddingFeaturizer in the pipeline?)."
            )
            return self._resource

        features = [sentence_features(example, featurizers) for example in examples]
        view_counts = {len(views) for views, _ in features}
        if len(view_counts) > 1:
            raise ValueError(
                f"CalibratedIntentClassifier: training examples have different numbers of dense "
                f"sentence features ({sorted(view_counts)}); every example must pass the same featurizers."
            )
        dense = [np.vstack(rows) for rows in zip(*(views for views, _ in features))]
        dims = {origin: matrix.shape[1] for _, parts in features for origin, matrix in parts}
        self._sparse_dims = dict(sorted(dims.items()))
        blocks = self._sparse_blocks([parts for _, parts in features])
        intents = [example.get(INTENT) for example in examples]

        self._model = self._new_model().fit(dense, blocks, intents)
        self.persist()
        return self._resource

    def _sparse_blocks(self, per_message: List[List[Tuple[Text, sp.csr_matrix]]]) -> List[sp.csr_matrix]:
        """One (n_messages, dim) matrix per sparse featurizer seen in training; zeros where missing."""
        blocks = []
        for origin, dim in self._sparse_dims.items():
            rows = []
            for parts in per_message:
                found = next((matrix for name, matrix in parts if name == origin), None)
                rows.append(found if found is not None else sp.csr_matrix((1, dim)))
            blocks.append(sp.vstack(rows).tocsr())
        return blocks

    # --- inference ------------------------------------------------------------------------
    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent`, `intent_ranking` (calibrated) and `intent_calibration` on each message."""
        if self._model is None or self._model.fitted is None:
            return messages
        featurizers = list(self._config["featurizers"])
        for message in messages:
            dense, parts = sentence_features(message, featurizers, sparse_as_csr=False)
            if not dense:
                continue
            prediction = self._model.predict_row(dense, self._sparse_rows(parts))
            self._set_prediction(message, prediction)
        return messages

    def _sparse_rows(self, parts: List[Tuple[Text, sp.spmatrix]]) -> List[in_scope_model.SparseRow]:
        """One message's `_sparse_blocks` as the model's `SparseRow`s (non-zeros only; no scipy matrix is built:
        at one message per call that construction cost more than the classifier's arithmetic)."""
        rows = []
        for origin, dim in self._sparse_dims.items():
            found = next((matrix for name, matrix in parts if name == origin), None)
            rows.append(in_scope_model.sparse_row(found) if found is not None else _empty_row(dim))
        return rows

    def _set_prediction(self, message: Message, prediction: Prediction) -> None:
        raw = prediction.raw_probabilities[0]
        relative = prediction.intent_probabilities[0]
        confidence = float(prediction.confidence[0])
        order = np.argsort(-relative)[: int(self._config["ranking_length"])]
        top = float(relative[order[0]])
        ranking = [
            {
                INTENT_NAME_KEY: self._model.intents[index],
                # The gap to the top intent is the classifier's probability gap, so
                # ambiguity_threshold keeps its usual meaning whatever the in-scope confidence.
                PREDICTED_CONFIDENCE_KEY: max(0.0, confidence - (top - float(relative[index]))),
                RAW_CONFIDENCE_KEY: float(raw[index]),
            }
            for index in order
        ]
        message.set(
            INTENT,
            {INTENT_NAME_KEY: ranking[0][INTENT_NAME_KEY], PREDICTED_CONFIDENCE_KEY: confidence},
            add_to_output=True,
        )
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        message.set(
            CALIBRATION_KEY,
            {
                RAW_CONFIDENCE_KEY: ranking[0][RAW_CONFIDENCE_KEY],
                "in_scope_percentile": float(prediction.in_scope_percentile[0]),
            },
            add_to_output=True,
        )

    # --- persistence ----------------------------------------------------------------------
    def persist(self) -> None:
        """Writes the model as plain numpy arrays + JSON (no pickle) into the model storage."""
        if self._model is None or self._model.fitted is None:
            return
        arrays, metadata = self._model.to_arrays()
        metadata["sparse_dims"] = list(self._sparse_dims.items())
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / ARRAYS_FILE, **arrays)
            (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=1), encoding="utf-8")

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CalibratedIntentClassifier:
        """Loads a trained component; an untrained one if nothing was persisted."""
        limit_blas_threads_for_serving()  # loading means serving (or testing) one message at a time
        try:
            with model_storage.read_from(resource) as directory:
                metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
                with np.load(directory / ARRAYS_FILE, allow_pickle=False) as stored:
                    arrays = {name: stored[name] for name in stored.files}
        except (ValueError, FileNotFoundError):
            logger.debug("CalibratedIntentClassifier: no trained model found, loading untrained.")
            return cls(config, model_storage, resource)
        model = CalibratedIntentModel.from_arrays(arrays, metadata)
        return cls(config, model_storage, resource, model, dict(metadata["sparse_dims"]))
