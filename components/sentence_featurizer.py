"""Dense sentence features from a sentence encoder (all-MiniLM-L6-v2 by default).

Each message text gets one L2-normalised embedding, added as a dense *sentence* feature of the
`text` attribute (no per-token sequence features: the sentence encoder pools internally). Any
component that reads dense sentence features can use it; `CalibratedIntentClassifier` measures
in-scope-ness in this embedding space.

Config:
    model_name: model package name or local directory, resolved offline by
        `components.sentence_encoder.load_encoder` (default "all-MiniLM-L6-v2").
    batch_size: texts encoded per batch when featurizing training data (default 64).
    precision: "float" (default) or "int8": the ONNX graph with int8 weights, about a third of the CPU per
        message with embeddings at cosine ~0.99 to float (components/onnx_encoder.py; ONNX models only, not the
        Universal Sentence Encoder). A change retrains the model. Keep it equal to `knowledge_base.precision` in
        escalation.yml, or the action server encodes each question again instead of reusing the carried vector.
    alias: name under which the features are stored (Rasa's usual featurizer alias).
    carry_embedding: also put the embedding of the message text into the parse data as `text_embedding`
        (components/text_embedding.py), so that the action server's knowledge-base search reuses it instead of
        encoding the same text again (default false; on for the all-MiniLM-L6-v2 instance in config.yml).

The encoder is loaded once per process and shared by every component that asks for it.
"""
from __future__ import annotations

import inspect
import logging
import sys
from typing import Any, Dict, List, Optional, Text

import numpy as np
import rasa.shared.utils.io
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components import onnx_encoder, sentence_encoder, text_embedding, use_encoder
from components.sentence_encoder import DEFAULT_MODEL, load_encoder, resolve_model_path

logger = logging.getLogger(__name__)


def encode_texts(model_name: Text, texts: List[Text], batch_size: int = 64, precision: Text = "float") -> np.ndarray:
    """L2-normalised float32 embeddings of `texts`, shape (len(texts), dim)."""
    encoder = load_encoder(model_name, precision)
    if not texts:
        dim = encoder.get_sentence_embedding_dimension()
        return np.zeros((0, dim), dtype=np.float32)
    return text_embedding.embed(encoder, texts, batch_size)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds the sentence encoder's embedding of the message text as a dense sentence feature."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (see module docstring)."""
        return {
            **DenseFeaturizer.get_default_config(),
            "model_name": DEFAULT_MODEL,
            "batch_size": 64,
            "precision": "float",
            "carry_embedding": False,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages the component needs."""
        return ["sentence_transformers"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[str]:
        """Cached training features must be recomputed when the model behind the name changes."""
        model_path = resolve_model_path(config.get("model_name") or DEFAULT_MODEL)
        weights = sorted(
            (str(path.relative_to(model_path)), path.stat().st_size)
            for path in model_path.rglob("*")
            if path.is_file()
        )
        return rasa.shared.utils.io.deep_container_fingerprint(
            {
                "model": str(model_path),
                "files": weights,
                # How text becomes a vector: this module and the encoder loaders (torch or ONNX).
                "modules": [
                    inspect.getsource(module)
                    for module in (sys.modules[__name__], sentence_encoder, onnx_encoder, use_encoder, text_embedding)
                ],
            }
        )

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        self._model_name = self._config["model_name"]
        self._batch_size = int(self._config["batch_size"])
        # Fail at model load time, not on the first customer message. The component keeps the (shared) encoder:
        # looking it up again by name resolves the model path on disk (0.02-0.07 ms per message and encoder).
        self._encoder = encoder = load_encoder(self._model_name, self._config["precision"])
        # The identity the action server compares with its own before reusing a carried vector (None: not carried).
        self._carried_identity = (
            text_embedding.encoder_identity(self._model_name, encoder) if self._config["carry_embedding"] else None
        )

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        """Creates the featurizer (it has nothing to train or persist)."""
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Rejects a missing model name or a non-positive batch size."""
        if not config.get("model_name"):
            raise InvalidConfigException("SentenceEmbeddingFeaturizer needs a `model_name`.")
        if int(config.get("batch_size", 1)) < 1:
            raise InvalidConfigException("SentenceEmbeddingFeaturizer: `batch_size` must be >= 1.")
        try:
            sentence_encoder.check_precision(config["model_name"], config.get("precision", "float"))
        except sentence_encoder.EncoderNotAvailable as error:
            raise InvalidConfigException(f"SentenceEmbeddingFeaturizer: {error}") from error
        if not isinstance(config.get("carry_embedding", False), bool):
            raise InvalidConfigException("SentenceEmbeddingFeaturizer: `carry_embedding` must be true or false.")

    def _featurize(self, messages: List[Message], batch_size: int, carry: bool = False) -> None:
        with_text = [m for m in messages if isinstance(m.get(TEXT), str)]
        if not with_text:
            return
        embeddings = text_embedding.embed(self._encoder, [m.get(TEXT) for m in with_text], batch_size)
        for message, embedding in zip(with_text, embeddings):
            self.add_features_to_message(
                sequence=None,
                sentence=embedding.reshape(1, -1),
                attribute=TEXT,
                message=message,
            )
        # Carried only for a text encoded alone (every message Rasa serves): in a batch, padding to a longer
        # text may change the last bits, and the knowledge base encodes one text at a time.
        if carry and self._carried_identity is not None and len(with_text) == 1:
            message = with_text[0]
            value = text_embedding.carried_value(message.get(TEXT), self._carried_identity, embeddings[0])
            message.set(text_embedding.KEY, value, add_to_output=True)

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds the embedding to each incoming message that has text (and, with `carry_embedding`, to its parse
        data)."""
        self._featurize(messages, self._batch_size, carry=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Adds the embedding to every training example that has text, encoding in batches."""
        self._featurize(training_data.training_examples, self._batch_size)
        return training_data
