"""On the shipped model, the NLU parse's per-message fast paths give exactly the parse of the original code.

Each check parses its texts twice on one loaded model: once as served, once with the fast path swapped for the code
it replaced, and compares the whole parse (intent, confidence, ranking, entities, every key the components add)
with ==. The texts (`compared_texts`): every customer text of the test stories, every NLU example with an emoji, a
non-ASCII letter or a digit, a fixed third of the other NLU examples of every intent, and a few edge cases; with
NLU_SPEEDUPS_ALL_TEXTS=1, every NLU example (data/nlu) as well (about 2,460 texts, twice the time).
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from rasa.core.channels.channel import UserMessage
from rasa.shared.nlu.training_data.loading import load_data
from scipy.special import logsumexp

from components import in_scope_model
from components.calibrated_confidence import CalibratedIntentClassifier, sentence_features

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def nlu_examples():
    return [example for example in load_data(str(ROOT / "data" / "nlu")).training_examples
            if example.get("text") is not None]


def story_texts():
    texts = []
    for path in sorted(ROOT.glob("tests/test_stories*.yml")):
        for story in yaml.safe_load(path.read_text(encoding="utf-8")).get("stories") or []:
            texts += [step["user"].strip() for step in story.get("steps", []) if isinstance(step, dict) and step.get("user")]
    return texts


def all_texts():
    texts = [example.get("text") for example in nlu_examples()] + story_texts()
    texts += ["👍", "", "   ", "AGENT!!!", "okkk", "asdfgh qwerty", "order #KL-48213 kahan hai"]
    return list(dict.fromkeys(text for text in texts if text is not None))


def compared_texts():
    """`all_texts()`, or (the default) a fixed sample of it that keeps every kind of text the fast paths treat
    differently: each check parsed all ~2,460 texts twice, 40-60 s a check in CI. Kept whole: the test stories' customer
    texts (the conversations the bot is tested on) and the edge cases, and every NLU example with a character outside
    ASCII (emoji, ₹, Devanagari: the emoji scan, the char n-grams of other scripts) or a digit (order numbers,
    sizes, prices). Of the other NLU examples, the third whose SHA-256 is 0 mod 3 (the same texts on every run and
    machine, spread over every intent; asserted in `served`). NLU_SPEEDUPS_ALL_TEXTS=1 compares every text."""
    texts = all_texts()
    if os.environ.get("NLU_SPEEDUPS_ALL_TEXTS") == "1":
        return texts
    plain = {text for text in (example.get("text") for example in nlu_examples())
             if not re.search(r"[^\x00-\x7f]|\d", text)} - set(story_texts())
    return [text for text in texts
            if text not in plain or int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 3 == 0]


def parses(agent, texts):
    """Every text's parse, one after the other on one event loop, as the server's channel parses them."""
    processor = agent.processor

    async def parse_all():
        return [await processor.parse_message(UserMessage(text, sender_id="nlu-speedups")) for text in texts]

    return asyncio.run(parse_all())


def patch_process(patch, agent, component_class, process):
    """Makes the loaded graph's `component_class` nodes run `process` (a node holds the function it was built
    with, so patching the class alone would change nothing); returns how many calls it got."""
    calls = []

    def counted(self, *args, **kwargs):
        calls.append(1)
        return process(self, *args, **kwargs)

    nodes = [node for node in agent.processor.graph_runner._instantiated_nodes.values()
             if node._component_class is component_class and node._fn_name == "process"]
    assert nodes, component_class
    for node in nodes:
        patch.setattr(node, "_fn", counted)
    return calls


@pytest.fixture(scope="module")
def served(agent):
    """Every text and its parse as served (nothing patched): the same for every comparison, so parsed once."""
    texts = compared_texts()
    assert len(texts) > 1000
    examples, chosen = nlu_examples(), set(texts)
    assert {example.get("intent") for example in examples if example.get("text") in chosen} == {
        example.get("intent") for example in examples}
    return texts, parses(agent, texts)


def assert_same_parses(agent, monkeypatch, served, original):
    """Parses as served, then with `original()` applied (it monkeypatches the fast path away), compared."""
    texts, served_parses = served
    with monkeypatch.context() as patch:
        calls = original(patch)
        expected = parses(agent, texts)
    assert len(calls) >= len(texts)  # the original code did run
    for text, got, want in zip(texts, served_parses, expected):
        assert got == want, text


def test_the_intent_classifier_without_scipy_matrices_gives_the_same_parses(agent, monkeypatch, served):
    def matrix_process(self, messages):
        # CalibratedIntentClassifier.process before the per-message fast path: scipy matrices, scipy's
        # logsumexp, np.add.at.
        if self._model is None or self._model.fitted is None:
            return messages
        for message in messages:
            dense, parts = sentence_features(message, list(self._config["featurizers"]))
            if dense:
                self._set_prediction(message, self._model.predict(dense, self._sparse_blocks([parts])))
        return messages

    def original(patch):
        patch.setattr(in_scope_model, "_logsumexp", lambda a, axis, keepdims=False: logsumexp(a, axis=axis, keepdims=keepdims))
        patch.setattr(in_scope_model, "_add_rows", np.add.at)
        return patch_process(patch, agent, CalibratedIntentClassifier, matrix_process)

    assert_same_parses(agent, monkeypatch, served, original)


def test_the_designer_lists_looked_up_by_first_word_give_the_same_parses(agent, monkeypatch, served):
    import emoji

    from components import acknowledgements
    from components.acknowledgements import Acknowledgements
    from components.phrases import PhraseList
    from tests.components.test_phrase_lookup import ReferencePhraseList

    def original(patch):
        # Every phrase tried at every position, and the emoji package's scan of every text.
        for name in ("_normal", "occurrences", "find", "longest_at", "ending_at"):
            patch.setattr(PhraseList, name, getattr(ReferencePhraseList, name))
        patch.setattr(acknowledgements, "emoji_list", emoji.emoji_list)
        patch.setattr(acknowledgements, "replace_emoji", emoji.replace_emoji)
        # Counts the calls of one of the components that use them (its own code unchanged).
        return patch_process(patch, agent, Acknowledgements, Acknowledgements.process)

    assert_same_parses(agent, monkeypatch, served, original)


def count_vector_nodes(agent):
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer

    nodes = [node for node in agent.processor.graph_runner._instantiated_nodes.values()
             if node._component_class is CountVectorsFeaturizer and node._fn_name == "process"]
    assert len(nodes) == 2  # word tokens, char_wb 1-4 grams (config.yml)
    if not all(hasattr(node._fn, "__wrapped__") for node in nodes):
        pytest.skip("the Rasa speed-ups are off (RASA_SPEEDUPS=0): nothing to compare")
    return nodes


def test_count_vectors_of_one_message_are_rasas_features_bit_for_bit(agent, monkeypatch):
    from rasa.shared.nlu.training_data.message import Message

    from connectors import fast_count_vectors
    from tests.connector.test_fast_count_vectors import SHIPPED_PROCESS, assert_same_features

    checked = []

    def both(self, messages):
        # Rasa's own process on a copy of the message as it reaches the featurizer, the fast path on the message.
        # The featurizer only reads the data and appends to the features, so a copy of both lists is enough
        # (a deep copy of every token cost more than both featurizers).
        assert len(messages) == 1
        original = messages[0]
        expected = [Message(data=dict(original.data), features=list(original.features))]
        SHIPPED_PROCESS(self, expected)
        assert fast_count_vectors.featurize_one(self, messages[0])
        assert_same_features(expected[0], messages[0])
        checked.append(messages[0].get("text"))
        return messages

    texts = compared_texts()
    with monkeypatch.context() as patch:
        for node in count_vector_nodes(agent):
            patch.setattr(node, "_fn", both)
        parses(agent, texts)
    assert len(checked) == 2 * len(texts)


def test_count_vectors_without_scipy_transforms_give_the_same_parses(agent, monkeypatch, served):
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer

    from tests.connector.test_fast_count_vectors import SHIPPED_PROCESS

    count_vector_nodes(agent)

    def original(patch):
        return patch_process(patch, agent, CountVectorsFeaturizer, SHIPPED_PROCESS)

    assert_same_parses(agent, monkeypatch, served, original)
