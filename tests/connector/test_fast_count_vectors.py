"""connectors/fast_count_vectors.py against Rasa's own CountVectorsFeaturizer.process, without the shipped model:
featurizers trained here on a few made-up messages (word tokens, and char_wb 1-4 grams as in config.yml) count
edge-case messages (empty, emoji only, out-of-vocabulary words, numbers, very long, Hinglish, other scripts) to the
same features: the same Features in the same order, and sparse matrices equal to the last attribute (class, shape,
dtypes, values, order of the non-zeros, flags). tests/integration/test_nlu_speedups.py does the same on the shipped
model for every NLU example and test-story text."""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
import scipy.sparse
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from connectors import fast_count_vectors, rasa_speedups

# Rasa's own process, whether or not the speed-ups were installed in this test process.
SHIPPED_PROCESS = getattr(CountVectorsFeaturizer.process, "__wrapped__", CountVectorsFeaturizer.process)

TRAINING = [
    ("hi there", "greet"), ("namaste bhai", "greet"), ("where is my order 4521", "order_status"),
    ("mera order kab aayega", "order_status"), ("order abhi tak nahi aaya", "order_status"),
    ("can I return the kurta", "ask_question"), ("exchange kaise hota hai", "ask_question"),
    ("size chart bhejo please", "ask_question"), ("I want to talk to a person", "request_human"),
    ("kisi insaan se baat karao", "request_human"), ("thanks a lot", "thank"), ("ok thik hai", "affirm"),
    ("the dupatta colour faded after one wash", "complaint"), ("paisa wapas chahiye", "request_refund"),
]

EDGE_TEXTS = [
    "", "   ", "👍", "👍🏽👍🏽 🙏", "???", "!!! ... ,,,", "x",
    "qwertyuiop zxcvbnm asdfgh", "ORDER KAHAN HAI", "order #KL-48213 kab aayega?", "48213", "call me at 9876543210",
    "mera order kab aayega bhai, 3 din ho gaye", "kal tak delivery ho jayegi na?", "I wanna return it, fit nahi aaya",
    "मेरा ऑर्डर कहाँ है", "ΟΔΟΣ Σ σς", "İstanbul straße", "tab\tseparated\nlines", "don't can't won't",
    "order order order order", "a b c d e f g", "__NUMBER__ __number__", "café naïve",
    " ".join(["mera", "order", "kab", "aayega", "bhai", "please", "jaldi", "batao", "🙏", "4521"] * 300),
]


def tokens_of(text: str, lemma_twist: bool = True) -> List[Token]:
    """Whitespace tokens (emoji and punctuation kept, as spaCy keeps them), with a lemma that sometimes differs from
    the text, so that use_lemma matters."""
    tokens, offset = [], 0
    for word in text.split():
        start = text.index(word, offset)
        offset = start + len(word)
        lemma = word.lower().rstrip("s") or word if lemma_twist else word
        tokens.append(Token(word, start, lemma=lemma))
    return tokens


def message(text: Optional[str], intent: Optional[str] = None, lemma_twist: bool = True) -> Message:
    data: Dict[str, Any] = {}
    if text is not None:
        data[TEXT] = text
    if intent is not None:
        data[INTENT] = intent
    result = Message(data=data)
    if text is not None:
        result.set("text_tokens", tokens_of(text, lemma_twist))
    if intent is not None:
        result.set("intent_tokens", [Token(intent, 0, lemma=intent)])
    return result


def trained(tmp_path, name: str, **config: Any) -> CountVectorsFeaturizer:
    (tmp_path / name).mkdir()
    storage = LocalModelStorage(tmp_path / name)
    context = ExecutionContext(graph_schema=None, model_id="test", node_name=name)
    featurizer = CountVectorsFeaturizer.create(
        {**CountVectorsFeaturizer.get_default_config(), **config}, storage, Resource(name), context)
    featurizer.train(TrainingData([message(text, intent) for text, intent in TRAINING]))
    return featurizer


@pytest.fixture(scope="module")
def featurizers(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("count_vectors")
    return {
        "word": trained(tmp_path, "word"),
        "char_wb": trained(tmp_path, "char_wb", analyzer="char_wb", min_ngram=1, max_ngram=4),
    }


def assert_same_matrix(want: Any, have: Any) -> None:
    assert type(have) is type(want) is scipy.sparse.coo_matrix
    assert list(vars(have)) == list(vars(want))
    for key, value in vars(want).items():
        other = vars(have)[key]
        if isinstance(value, np.ndarray):
            assert isinstance(other, np.ndarray), key
            assert (other.dtype, other.shape) == (value.dtype, value.shape), key
            assert other.tobytes() == value.tobytes(), key
            for flag in ("C_CONTIGUOUS", "F_CONTIGUOUS", "OWNDATA", "WRITEABLE", "ALIGNED", "WRITEBACKIFCOPY"):
                assert other.flags[flag] == value.flags[flag], (key, flag)
        else:
            assert type(other) is type(value) and other == value, key
            if isinstance(value, tuple):
                assert [type(x) for x in other] == [type(x) for x in value], key


def assert_same_features(want: Message, have: Message) -> None:
    assert len(have.features) == len(want.features)
    for expected, got in zip(want.features, have.features):
        assert (got.type, got.attribute, got.origin) == (expected.type, expected.attribute, expected.origin)
        assert_same_matrix(expected.features, got.features)


def shipped_and_fast(featurizer: CountVectorsFeaturizer, original: Message) -> None:
    want, have = copy.deepcopy(original), copy.deepcopy(original)
    SHIPPED_PROCESS(featurizer, [want])
    assert fast_count_vectors.featurize_one(featurizer, have)
    assert_same_features(want, have)
    return want


@pytest.mark.parametrize("text", EDGE_TEXTS)
@pytest.mark.parametrize("kind", ["word", "char_wb"])
def test_edge_cases_give_rasas_features(featurizers, kind, text):
    featurizer = featurizers[kind]
    for _ in range(2):  # counted, then from the cache
        want = shipped_and_fast(featurizer, message(text))
    if text.strip():
        assert want.features  # the comparison was not vacuous
        assert all(f.features.shape[1] == len(featurizer.vectorizers[TEXT].vocabulary_) for f in want.features)


def test_training_texts_and_a_message_without_text(featurizers):
    for featurizer in featurizers.values():
        for text, intent in TRAINING:
            shipped_and_fast(featurizer, message(text))
            shipped_and_fast(featurizer, message(text, intent))  # the intent: Rasa's own steps
        shipped_and_fast(featurizer, message(None))
        no_tokens = Message(data={TEXT: "tokens missing"})
        shipped_and_fast(featurizer, no_tokens)


def test_the_installed_process_serves_one_message_and_leaves_batches_to_rasa(featurizers, monkeypatch):
    assert fast_count_vectors.install()
    installed = CountVectorsFeaturizer.process
    assert installed.__wrapped__ is SHIPPED_PROCESS
    featurizer = featurizers["char_wb"]
    original = message("mera order kab aayega")
    want, have = copy.deepcopy(original), copy.deepcopy(original)
    SHIPPED_PROCESS(featurizer, [want])
    assert installed(featurizer, [have]) == [have]
    assert_same_features(want, have)

    def must_not_run(*args):
        raise AssertionError("a batch went through the one-message path")

    monkeypatch.setattr(fast_count_vectors, "featurize_one", must_not_run)
    batch = [message(text) for text, _ in TRAINING]
    expected = copy.deepcopy(batch)
    SHIPPED_PROCESS(featurizer, expected)
    installed(featurizer, batch)
    for want, have in zip(expected, batch):
        assert_same_features(want, have)


@pytest.mark.parametrize("config", [
    {"OOV_token": "oov", "OOV_words": ["kurta"]},  # Rasa replaces words outside the vocabulary
    {"max_ngram": 2},  # word bigrams cross tokens in the joined text
    {"analyzer": "char", "max_ngram": 3},  # so do plain character n-grams
    {"strip_accents": "unicode"},
])
def test_configurations_not_proven_here_run_rasas_code(tmp_path, config):
    featurizer = trained(tmp_path, "other", **config)
    assert not fast_count_vectors.featurize_one(featurizer, message("the kurta"))
    original = message("mera kurta kab aayega café")
    want, have = copy.deepcopy(original), copy.deepcopy(original)
    SHIPPED_PROCESS(featurizer, [want])
    fast_count_vectors.install()
    CountVectorsFeaturizer.process(featurizer, [have])
    assert_same_features(want, have)


@pytest.mark.parametrize("config", [{"use_lemma": False}, {"use_shared_vocab": True}, {"lowercase": False},
                                    {"analyzer": "char_wb", "min_ngram": 2, "max_ngram": 5}])
def test_other_served_configurations(tmp_path, config):
    featurizer = trained(tmp_path, "served", **config)
    for text in EDGE_TEXTS[:-1]:
        shipped_and_fast(featurizer, message(text))
        shipped_and_fast(featurizer, message(text, lemma_twist=False))


def test_a_new_vocabulary_is_not_served_from_the_old_cache(tmp_path, featurizers, monkeypatch):
    featurizer = trained(tmp_path, "replaced", analyzer="char_wb", min_ngram=1, max_ngram=4)
    shipped_and_fast(featurizer, message("order kab aayega"))
    featurizer.vectorizers = dict(featurizers["word"].vectorizers)  # another vocabulary, another analyzer
    shipped_and_fast(featurizer, message("order kab aayega"))
    vocabulary = dict(featurizer.vectorizers[TEXT].vocabulary_)
    vocabulary["zzz"] = len(vocabulary)
    featurizer.vectorizers[TEXT].vocabulary_ = vocabulary
    shipped_and_fast(featurizer, message("order zzz kab aayega"))
    monkeypatch.setattr(fast_count_vectors, "CACHE_SIZE", 3)  # the cache starts again while counting
    shipped_and_fast(featurizer, message("a b c d e f g h order zzz kab aayega a b"))
    assert len(featurizer.__dict__[fast_count_vectors._PLAN_KEY].cache) <= 3


def test_the_self_check_passes_and_catches_a_different_matrix(monkeypatch):
    assert fast_count_vectors.self_check() is None
    monkeypatch.setattr(fast_count_vectors, "_MAXPRINT", 51)
    assert "maxprint" in fast_count_vectors.self_check()
    # A failing self-check leaves Rasa's process in place.
    monkeypatch.setattr(CountVectorsFeaturizer, fast_count_vectors._INSTALLED_FLAG, False, raising=False)
    monkeypatch.setattr(CountVectorsFeaturizer, "process", SHIPPED_PROCESS)
    assert fast_count_vectors.install() is False
    assert CountVectorsFeaturizer.process is SHIPPED_PROCESS


def test_switched_off_speed_ups_leave_the_featurizer_as_shipped(monkeypatch):
    def must_not_run():
        raise AssertionError("installed although switched off")

    monkeypatch.setattr(fast_count_vectors, "install", must_not_run)
    assert "off" in rasa_speedups.install({"RASA_SPEEDUPS": "0"}, rasa_speedups.TESTED_RASA_VERSION)
    assert "off" in rasa_speedups.install({}, "3.6.20")
