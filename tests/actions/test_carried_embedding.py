"""The knowledge-base search reuses the NLU's embedding of the question (parse data `text_embedding`,
components/text_embedding.py) only when it is exactly the vector it would compute: the same answers and
probabilities, one encode fewer, and anything else ignored (never an error to the customer)."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
import yaml
from rasa.shared.nlu.training_data.message import Message

from actions import answers
from components import text_embedding
from components.sentence_featurizer import SentenceEmbeddingFeaturizer
from tests.actions.conftest import make_tracker, user_event

DEV_SET = Path(__file__).resolve().parents[2] / "bench" / "data" / "kb_dev.yml"


class CountingEncoder:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.texts = []

    def encode(self, texts, **kwargs):
        self.texts += list(texts)
        return self.encoder.encode(texts, **kwargs)

    def get_sentence_embedding_dimension(self):
        return self.encoder.get_sentence_embedding_dimension()


@pytest.fixture(scope="module")
def featurizer():
    """The featurizer as config.yml configures the carrying one (model and precision, which the KB shares)."""
    shipped = yaml.safe_load((DEV_SET.parents[2] / "config.yml").read_text(encoding="utf-8"))
    [carrying] = [c for c in shipped["pipeline"] if c.get("carry_embedding")]
    config = {**SentenceEmbeddingFeaturizer.get_default_config(), **{k: v for k, v in carrying.items() if k != "name"}}
    return SentenceEmbeddingFeaturizer(config, "sentence_embedding")


@pytest.fixture
def counting(kb, monkeypatch):
    """The session's knowledge base and the one the actions serve now (their encoder identity unchanged), with the
    encoder counted on both: the live reload (actions/kb_reload.py) may have replaced the served one since, when
    another test changed the settings it watches, and an action would then search with an encoder nobody counts
    (session 35: the fresh-clone CI failed so)."""
    from actions import answers

    encoder = CountingEncoder(kb._encoder)
    monkeypatch.setattr(kb, "_encoder", encoder)  # the tests that search `kb` themselves
    served = answers.knowledge_base()
    if served is not kb:  # the actions' knowledge base, reloaded since the session's was loaded
        monkeypatch.setattr(served, "_encoder", encoder)
    return encoder


def carried(featurizer, text: str) -> dict:
    """The `text_embedding` the NLU puts into the parse data of `text`."""
    [message] = featurizer.process([Message(data={"text": text})])
    return message.as_dict(only_output_properties=True)[text_embedding.KEY]


def dev_questions():
    document = yaml.safe_load(DEV_SET.read_text(encoding="utf-8"))
    return [item["text"] for item in document["paraphrases"]] + list(document["unanswerable"])


def test_answers_and_probabilities_are_identical_with_the_carried_vector_and_nothing_is_encoded(
    kb, config, featurizer, counting
):
    questions = dev_questions()
    assert len(questions) > 100
    for question in questions:
        value = carried(featurizer, question)
        counting.texts.clear()
        reused = kb.matches(question, k=None, carried=value)
        assert counting.texts == [], question  # the vector was reused
        assert reused == kb.matches(question, k=None), question  # every entry, every probability, exactly
        assert counting.texts == [question]
        tracker = make_tracker([])
        assert answers.decide(kb, config, tracker, question, carried=value) == answers.decide(
            kb, config, tracker, question), question


@pytest.mark.parametrize("spoil", [
    pytest.param(lambda value: {**value, "text": "do you have cash on delivery?"}, id="another text"),
    pytest.param(lambda value: {**value, "text": value["text"] + " "}, id="one more space"),
    pytest.param(lambda value: {**value, "encoder": value["encoder"].replace(":", ":0", 1)}, id="another encoder"),
    pytest.param(lambda value: {**value, "encoder": "all-MiniLM-L6-v2"}, id="model name only"),
    pytest.param(lambda value: {**value, "vector": value["vector"][:-8]}, id="too short"),
    pytest.param(lambda value: {**value, "vector": value["vector"] + "AAAA"}, id="too long"),
    pytest.param(lambda value: {**value, "vector": "!" + value["vector"][1:]}, id="not base64"),
    pytest.param(lambda value: {**value, "vector": base64.b64encode(np.zeros(384, "<f4").tobytes()).decode()},
                 id="not unit length"),
    pytest.param(lambda value: {**value, "vector": base64.b64encode(np.full(384, np.nan, "<f4").tobytes()).decode()},
                 id="nan"),
    pytest.param(lambda value: {**value, "vector": None}, id="no vector"),
    pytest.param(lambda value: {k: v for k, v in value.items() if k != "encoder"}, id="no encoder"),
    pytest.param(lambda value: [value], id="not a mapping"),
    pytest.param(lambda value: "garbage", id="a string"),
])
def test_a_carried_value_that_is_not_exactly_this_questions_vector_is_ignored(kb, featurizer, counting, spoil):
    question = "what is your return policy?"
    value = spoil(carried(featurizer, question))
    counting.texts.clear()
    assert kb.matches(question, k=None, carried=value) == kb.matches(question, k=None)
    assert counting.texts == [question, question]  # encoded both times


def test_the_vector_of_the_whole_message_is_not_used_for_its_question_part(kb, featurizer, counting):
    """"agent nahi chahiye, bas return policy batao": the NLU encoded the whole text, the KB searches its question."""
    value = carried(featurizer, "agent nahi chahiye, bas return policy batao")
    counting.texts.clear()
    assert kb.matches("bas return policy batao", k=None, carried=value) == kb.matches("bas return policy batao", k=None)
    assert counting.texts == ["bas return policy batao"] * 2


def test_the_switch_turns_reuse_off(kb, featurizer, counting, monkeypatch):
    question = "cod milega kya"
    value = carried(featurizer, question)
    monkeypatch.setenv(text_embedding.REUSE_ENV, "0")
    counting.texts.clear()
    kb.matches(question, k=None, carried=value)
    assert counting.texts == [question]


async def test_the_action_answers_the_same_without_encoding_the_question(
    kb, featurizer, counting, dispatcher, monkeypatch
):
    question = "what is your return policy?"
    event = user_event(question, "ask_question")
    plain_tracker = make_tracker([event])
    expected = await answers.ActionAnswerQuestion().run(dispatcher, plain_tracker, {})
    expected_messages = list(dispatcher.messages)
    dispatcher.messages.clear()

    event["parse_data"][text_embedding.KEY] = carried(featurizer, question)
    counting.texts.clear()
    events = await answers.ActionAnswerQuestion().run(dispatcher, make_tracker([event]), {})
    assert counting.texts == []
    assert events == expected and dispatcher.messages == expected_messages
    assert expected[0]["value"]["answered"] is True


async def test_a_malformed_carried_value_is_never_an_error_to_the_customer(kb, dispatcher, counting):
    question = "what is your return policy?"
    event = user_event(question, "ask_question")
    event["parse_data"][text_embedding.KEY] = {"text": question, "encoder": kb._encoder_identity, "vector": "%%%"}
    events = await answers.ActionAnswerQuestion().run(dispatcher, make_tracker([event]), {})
    assert events[0]["value"]["answered"] is True and counting.texts == [question]
