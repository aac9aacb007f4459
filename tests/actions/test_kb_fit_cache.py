"""The knowledge base's fitted model is cached on disk (actions/kb_fit_cache.py): a restart reads it instead of
fitting for tens of seconds, answers exactly as the fresh fit did, and any edit, a damaged file or a switched-off
cache means a fresh fit."""
from __future__ import annotations

import logging
import shutil
import textwrap

import numpy as np
import pytest

from actions import kb_answerability, kb_fit_cache
from actions.embedding_cache import DEFAULT_DIRECTORY, EmbeddingCache
from actions.knowledge_base import KnowledgeBase
from actions.settings import PROJECT_ROOT

# Written for these tests: questions customers might send, on and off the entries' topics.
QUESTIONS = [
    "can i send the dupatta back if the colour is off", "how many days till my parcel reaches jaipur",
    "cod hai kya", "what does the vip tier give me", "size M mein chest kitna hai", "do you ship to dubai",
    "is the night cream okay for sensitive skin", "points expire hote hain?", "how do i wash a linen shirt",
    "i want 40 kurtas for a wedding", "when does the next sale start", "can i cancel after it is packed",
]

SMALL_KB = """
    entries:
      - id: returns
        title: Returns
        answer: Free returns within 14 days of delivery.
        questions: [can I return it, can i send it back, return policy kya hai, {returns_question}]
        not_covered: [can i return it in a store, do you take back gift cards]
      - id: shipping
        title: Shipping
        answer: Delivery takes 4-7 days.
        questions: [how long is delivery, when will my parcel come, delivery kitne din mein]
        not_covered: [do you deliver on sunday]
"""


def small_kb(tmp_path, encoder, cache, returns_question="wapas kaise karun"):
    path = tmp_path / "kb.yml"
    path.write_text(textwrap.dedent(SMALL_KB.format(returns_question=returns_question)), encoding="utf-8")
    return KnowledgeBase.from_yaml(path, encoder=encoder, embedding_cache=cache)


def probabilities(kb, questions=QUESTIONS):
    return [[(m.entry_id, m.probability) for m in kb.matches(q, k=None)] for q in questions]


@pytest.fixture
def no_fitting(monkeypatch):
    """Makes any fit of the answer probability fail the test (the cross-fitting folds are its first step)."""
    def refuse(_labels):
        raise AssertionError("fitted although a cached fit exists")

    return lambda: monkeypatch.setattr(kb_answerability, "_folds", refuse)


def test_a_restart_reads_the_shipped_knowledge_base_fit_and_answers_exactly_as_the_fresh_fit(tmp_path, kb, no_fitting):
    directory = tmp_path / "cache"
    directory.mkdir()
    for embeddings in DEFAULT_DIRECTORY.glob("*.npz"):  # the embeddings only: encoding is not what is tested here
        shutil.copy(embeddings, directory)
    path = PROJECT_ROOT / "data" / "knowledge_base.yml"
    fresh = KnowledgeBase.from_yaml(path, encoder=kb._encoder, embedding_cache=EmbeddingCache(directory))
    assert len(list((directory / "fits").glob("*.npz"))) == 1
    no_fitting()
    restarted = KnowledgeBase.from_yaml(path, encoder=kb._encoder, embedding_cache=EmbeddingCache(directory))
    assert probabilities(restarted) == probabilities(fresh)  # equal floats, not close ones
    questions = [q for entry in fresh.entries for q in entry.questions[:5]]
    assert probabilities(restarted, questions) == probabilities(fresh, questions)
    assert np.array_equal(restarted.classifier.model.coef_, fresh.classifier.model.coef_)


def test_an_edited_question_is_fitted_again_and_the_old_fit_stays_for_the_old_version(tmp_path, kb, no_fitting):
    cache = EmbeddingCache(tmp_path / "cache")
    first = small_kb(tmp_path, kb._encoder, cache)
    edited = small_kb(tmp_path, kb._encoder, cache, returns_question="i want to send back the saree")
    assert len(list((tmp_path / "cache" / "fits").glob("*.npz"))) == 2
    assert probabilities(edited) != probabilities(first)
    no_fitting()
    assert probabilities(small_kb(tmp_path, kb._encoder, cache)) == probabilities(first)


def test_a_damaged_file_is_fitted_again_with_a_warning(tmp_path, kb, caplog):
    cache = EmbeddingCache(tmp_path / "cache")
    first = small_kb(tmp_path, kb._encoder, cache)
    (stored,) = (tmp_path / "cache" / "fits").glob("*.npz")
    stored.write_bytes(stored.read_bytes()[:200])
    with caplog.at_level(logging.WARNING, logger="actions.kb_fit_cache"):
        again = small_kb(tmp_path, kb._encoder, cache)
    assert probabilities(again) == probabilities(first)
    assert any("unreadable" in r.getMessage() and "fitting again" in r.getMessage() for r in caplog.records)
    assert small_kb(tmp_path, kb._encoder, cache) is not None and stored.stat().st_size > 200  # written anew


def test_weights_that_do_not_fit_the_inputs_are_not_used(tmp_path, kb):
    cache = EmbeddingCache(tmp_path / "cache")
    first = small_kb(tmp_path, kb._encoder, cache)
    (stored,) = (tmp_path / "cache" / "fits").glob("*.npz")
    with np.load(stored) as data:
        fields = dict(data)
    fields["coef"] = fields["coef"][:, :-3]  # a file another version wrote under the same name
    np.savez(stored, **fields)
    assert probabilities(small_kb(tmp_path, kb._encoder, cache)) == probabilities(first)


def test_without_the_embedding_cache_nothing_is_stored(tmp_path, kb):
    small_kb(tmp_path, kb._encoder, None)
    assert not list(tmp_path.rglob("*.npz"))


def test_only_the_newest_fits_are_kept(tmp_path, kb, monkeypatch):
    monkeypatch.setattr(kb_fit_cache, "KEEP_FILES", 2)
    cache = EmbeddingCache(tmp_path / "cache")
    for question in ("return karna hai", "send it back please", "can this go back"):
        small_kb(tmp_path, kb._encoder, cache, returns_question=question)
    assert len(list((tmp_path / "cache" / "fits").glob("*.npz"))) == 2


def test_the_key_changes_with_any_input():
    texts, vectors = ["a b", "c d", "e f"], np.eye(3, dtype=np.float32)
    labels, questions = np.array([0, 1, -1]), np.array([True, True, True])
    key = kb_fit_cache.fit_key(texts, vectors, labels, questions, 2)
    assert key == kb_fit_cache.fit_key(list(texts), vectors.copy(), labels.copy(), questions.copy(), 2)
    assert key != kb_fit_cache.fit_key(["a b", "c d", "e g"], vectors, labels, questions, 2)
    assert key != kb_fit_cache.fit_key(texts, vectors * 0.5, labels, questions, 2)
    assert key != kb_fit_cache.fit_key(texts, vectors, np.array([1, 0, -1]), questions, 2)
    assert key != kb_fit_cache.fit_key(texts, vectors, labels, np.array([True, False, True]), 2)
    assert key != kb_fit_cache.fit_key(texts, vectors, labels, questions, 3)
