"""SentenceEmbeddingFeaturizer: one normalised sentence vector per message, offline encoder."""
from __future__ import annotations

import numpy as np
import pytest
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.sentence_featurizer import SentenceEmbeddingFeaturizer


@pytest.fixture(scope="module")
def featurizer():
    return SentenceEmbeddingFeaturizer(SentenceEmbeddingFeaturizer.get_default_config(), "sentence_embedding")


@pytest.fixture(scope="module")
def use_featurizer():
    """The second encoder: Universal Sentence Encoder multilingual v3 (numpy, components/use_encoder.py)."""
    from components.use_encoder import USE_MODEL_NAME

    config = {**SentenceEmbeddingFeaturizer.get_default_config(), "model_name": USE_MODEL_NAME, "alias": "use"}
    return SentenceEmbeddingFeaturizer(config, "use_embedding")


@pytest.fixture(params=["featurizer", "use_featurizer"])
def any_featurizer(request):
    return request.getfixturevalue(request.param)


def sentence_vector(message: Message) -> np.ndarray:
    _, sentence = message.get_dense_features("text")
    return sentence.features[0]


def test_each_message_gets_one_unit_length_sentence_vector(featurizer):
    [message] = featurizer.process([Message(data={"text": "where is my parcel"})])
    sequence, sentence = message.get_dense_features("text")
    assert sequence is None
    assert sentence.features.shape == (1, 384)
    assert np.linalg.norm(sentence.features) == pytest.approx(1.0, abs=1e-5)


def test_paraphrases_are_closer_than_unrelated_text(any_featurizer):
    messages = any_featurizer.process(
        [Message(data={"text": t}) for t in ("where is my parcel", "my package has not arrived", "play some jazz")]
    )
    parcel, package, jazz = map(sentence_vector, messages)
    assert parcel @ package > parcel @ jazz + 0.2


def test_training_data_is_featurized_in_batches_like_single_messages(any_featurizer):
    texts = ["refund please", "hello", "how do i reset my password"]
    training = TrainingData([Message(data={"text": t, "intent": "x"}) for t in texts])
    any_featurizer.process_training_data(training)
    single = any_featurizer.process([Message(data={"text": "hello"})])[0]
    np.testing.assert_allclose(sentence_vector(training.training_examples[1]), sentence_vector(single), atol=1e-5)


def test_messages_without_text_are_left_alone(featurizer):
    [message] = featurizer.process([Message(data={"intent": "greet"})])
    assert message.features == []


def test_unknown_model_name_fails_when_the_pipeline_is_loaded():
    with pytest.raises(Exception, match="not a local directory"):
        SentenceEmbeddingFeaturizer({**SentenceEmbeddingFeaturizer.get_default_config(), "model_name": "no-such-model"}, "x")


def test_config_without_model_name_is_rejected():
    with pytest.raises(InvalidConfigException):
        SentenceEmbeddingFeaturizer({**SentenceEmbeddingFeaturizer.get_default_config(), "model_name": ""}, "x")


def test_the_second_encoder_adds_its_own_512_dimensional_unit_vector(featurizer, use_featurizer):
    [message] = use_featurizer.process(featurizer.process([Message(data={"text": "where is my parcel"})]))
    dense = [f for f in message.features if f.is_dense() and f.type == "sentence" and f.attribute == "text"]
    assert [f.features.shape for f in dense] == [(1, 384), (1, 512)]
    assert dense[1].origin == "use"
    assert np.linalg.norm(dense[1].features) == pytest.approx(1.0, abs=1e-5)



def test_a_message_is_encoded_by_the_encoder_loaded_with_the_component(any_featurizer, monkeypatch):
    # Looking the encoder up by name again resolves its path on disk on every message: the component keeps it.
    from components import sentence_encoder, sentence_featurizer
    from components.sentence_featurizer import encode_texts

    text = "kal tak aa jayega kya"
    expected = encode_texts(any_featurizer._model_name, [text])[0]

    def no_lookup(*_args):
        raise AssertionError("encoder looked up again")

    monkeypatch.setattr(sentence_encoder, "load_encoder", no_lookup)
    monkeypatch.setattr(sentence_featurizer, "load_encoder", no_lookup)
    [message] = any_featurizer.process([Message(data={"text": text})])
    np.testing.assert_array_equal(sentence_vector(message), expected)
