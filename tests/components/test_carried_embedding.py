"""SentenceEmbeddingFeaturizer `carry_embedding`: the NLU's embedding of the text it encoded goes into the parse data
(`text_embedding`, components/text_embedding.py) for the action server's knowledge-base search to reuse."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import yaml
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components import text_embedding
from components.sentence_encoder import load_encoder
from components.sentence_featurizer import SentenceEmbeddingFeaturizer
from components.use_encoder import USE_MODEL_NAME
from connectors.event_filter import TURN_ONLY_PARSE_DATA_KEYS
from tests.components.test_sentence_featurizer import sentence_vector

DEFAULTS = SentenceEmbeddingFeaturizer.get_default_config()


@pytest.fixture(scope="module")
def carrying():
    return SentenceEmbeddingFeaturizer({**DEFAULTS, "carry_embedding": True}, "sentence_embedding")


def parse_data(message: Message) -> dict:
    """What Rasa puts into the user event and sends the action server (MessageProcessor.parse_message)."""
    return message.as_dict(only_output_properties=True)


def test_the_parse_data_carries_the_embedding_of_the_text_it_encoded(carrying):
    [message] = carrying.process([Message(data={"text": "what is your return policy?"})])
    carried = parse_data(message)[text_embedding.KEY]

    assert carried["text"] == "what is your return policy?"
    assert carried["encoder"] == text_embedding.encoder_identity("all-MiniLM-L6-v2", load_encoder("all-MiniLM-L6-v2"))
    assert carried["encoder"].startswith("all-MiniLM-L6-v2:")
    vector = np.frombuffer(base64.b64decode(carried["vector"]), dtype="<f4")
    assert vector.tobytes() == sentence_vector(message).astype("<f4").tobytes()  # the feature itself, bit for bit
    assert len(carried["vector"]) == 2048  # 384 float32, base64


def test_the_embedding_is_carried_only_when_asked_and_never_for_a_batch(carrying):
    plain = SentenceEmbeddingFeaturizer(DEFAULTS, "sentence_embedding")
    [message] = plain.process([Message(data={"text": "what is your return policy?"})])
    assert text_embedding.KEY not in parse_data(message)

    batch = carrying.process([Message(data={"text": "refund please"}), Message(data={"text": "cod hai kya"})])
    assert all(text_embedding.KEY not in parse_data(message) for message in batch)
    training = TrainingData([Message(data={"text": "refund please", "intent": "x"})])
    carrying.process_training_data(training)
    assert text_embedding.KEY not in training.training_examples[0].data
    [no_text] = carrying.process([Message(data={"intent": "greet"})])
    assert text_embedding.KEY not in no_text.data


def test_config_yml_carries_the_minilm_embedding_only():
    config = Path(__file__).resolve().parents[2] / "config.yml"
    pipeline = yaml.safe_load(config.read_text(encoding="utf-8"))["pipeline"]
    featurizers = [step for step in pipeline if step["name"].endswith("SentenceEmbeddingFeaturizer")]
    carried = {step["model_name"]: step.get("carry_embedding", False) for step in featurizers}
    assert carried == {"all-MiniLM-L6-v2": True, USE_MODEL_NAME: False}
    # The project's tracker store and broker drop exactly this key (connectors/event_filter.py has no imports).
    assert TURN_ONLY_PARSE_DATA_KEYS == {text_embedding.KEY}


def test_carry_embedding_must_be_true_or_false():
    with pytest.raises(InvalidConfigException, match="carry_embedding"):
        SentenceEmbeddingFeaturizer.validate_config({**DEFAULTS, "carry_embedding": "yes"})


def test_an_encoder_it_does_not_know_has_no_identity_so_nothing_is_carried_or_reused():
    class Other:
        def encode(self, texts, **kwargs):
            return np.ones((len(texts), 4), dtype=np.float32) / 2

    assert text_embedding.encoder_identity("all-MiniLM-L6-v2", Other()) is None
    value = text_embedding.carried_value("hi", "x", np.ones(4, dtype=np.float32) / 2)
    assert text_embedding.carried_vector(value, "hi", None, 4) is None
    np.testing.assert_array_equal(text_embedding.carried_vector(value, "hi", "x", 4), [[0.5] * 4])


def test_another_process_computes_the_same_identity(carrying):
    """The Rasa server and the action server are two processes: the identity depends on files and code, not on
    the process."""
    import subprocess
    import sys

    code = ("from components import text_embedding; from components.sentence_encoder import load_encoder; "
            "print(text_embedding.encoder_identity('all-MiniLM-L6-v2', load_encoder('all-MiniLM-L6-v2')))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    [message] = carrying.process([Message(data={"text": "hi"})])
    assert other.stdout.strip() == parse_data(message)[text_embedding.KEY]["encoder"]


def test_an_int8_encoder_has_its_own_identity_and_cache_file(tmp_path):
    # A vector from the int8 graph is never taken for a float one (nor the other way round), in the parse data
    # or in the knowledge base's embedding cache.
    from actions.embedding_cache import EmbeddingCache

    float_encoder, int8_encoder = load_encoder("all-MiniLM-L6-v2"), load_encoder("all-MiniLM-L6-v2", "int8")
    float_identity = text_embedding.encoder_identity("all-MiniLM-L6-v2", float_encoder)
    int8_identity = text_embedding.encoder_identity("all-MiniLM-L6-v2", int8_encoder)
    assert int8_identity.startswith("all-MiniLM-L6-v2@int8:") and float_identity != int8_identity
    vector = text_embedding.embed(int8_encoder, ["kya COD milta hai?"])[0]
    carried = text_embedding.carried_value("kya COD milta hai?", int8_identity, vector)
    assert text_embedding.carried_vector(carried, "kya COD milta hai?", float_identity, 384) is None
    assert np.array_equal(text_embedding.carried_vector(carried, "kya COD milta hai?", int8_identity, 384)[0], vector)
    cache = EmbeddingCache(tmp_path)
    assert cache.path("all-MiniLM-L6-v2", float_encoder) != cache.path("all-MiniLM-L6-v2", int8_encoder)


def test_the_featurizer_runs_and_carries_the_precision_config_yml_asks_for():
    featurizer = SentenceEmbeddingFeaturizer({**DEFAULTS, "carry_embedding": True, "precision": "int8"}, "int8")
    message = Message.build(text="size chart kahan milega")
    featurizer.process([message])
    carried = parse_data(message)[text_embedding.KEY]
    assert carried["encoder"].startswith("all-MiniLM-L6-v2@int8:")
    expected = text_embedding.embed(load_encoder("all-MiniLM-L6-v2", "int8"), ["size chart kahan milega"])[0]
    assert np.array_equal(sentence_vector(message), expected)


@pytest.mark.parametrize("config, says", [
    ({"precision": "half"}, "use one of float, int8"),
    ({"precision": "int8", "model_name": USE_MODEL_NAME}, "no int8 version"),
])
def test_a_precision_the_encoder_cannot_run_is_a_config_error(config, says):
    with pytest.raises(InvalidConfigException, match=says):
        SentenceEmbeddingFeaturizer({**DEFAULTS, **config}, "bad")
