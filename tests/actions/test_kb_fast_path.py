"""The knowledge base scores one question without sklearn's and scipy's per-call machinery
(EntryClassifier._text_probabilities, the one-vector branch of `neighbours`, near_miss's cached near-miss
vectors: issue 16, CPU per customer message). The results must be those of the code it replaced, bit for
bit: entry probabilities, NONE probability, every answer-probability feature, the answer probabilities and
so the answers. Compared exactly (no tolerance) on every question of the dev sets, on a fixed sample of the labelled
sets the shipped knowledge base learns from (`compared_questions`; KB_FAST_PATH_ALL_QUESTIONS=1 takes every one), on
edge cases, and on knowledge bases too small for the fast path."""
from __future__ import annotations

import hashlib
import os
import types
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import yaml

from actions.kb_answerability import NONE, EntryClassifier, feature_matrix
from components import text_embedding

ROOT = Path(__file__).resolve().parents[2]
QUESTION_SETS = [
    "bench/data/kb_dev.yml", "bench/data/kb_dev2.yml", "bench/data/kb_dev3.yml",
    *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "data" / "kb_labelled").glob("*.yml")),
]


def questions(name: str):
    document = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
    return [item["text"] for item in document.get("paraphrases") or []] + list(document.get("unanswerable") or [])


def compared_questions(name: str):
    """Every question of a dev set; of a labelled set (the used-up conversations' KB turns alone are ~4,600 texts, which
    took 5-25 minutes on one CI worker), the first paraphrase of every entry, the first unanswerable question and a
    fixed quarter of the rest: the texts whose SHA-256 is 0 mod 4, the same on every run and machine. The fast path
    has no branch by entry or by text, so the sample keeps every kind of question it scores. With
    KB_FAST_PATH_ALL_QUESTIONS=1, every question."""
    if os.environ.get("KB_FAST_PATH_ALL_QUESTIONS") == "1" or not name.startswith("data/kb_labelled/"):
        return questions(name)
    document = yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))
    firsts = {}
    for item in document.get("paraphrases") or []:
        firsts.setdefault(item["entry_id"], item["text"])
    kept = set(firsts.values()) | set((document.get("unanswerable") or [])[:1])
    return [text for text in questions(name)
            if text in kept or int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 4 == 0]


# The code before the fast path, verbatim: the reference.
def original_neighbours(self, vectors, candidates):
    similarities = vectors @ self.vectors.T
    result = np.zeros(len(candidates))
    for candidate in np.unique(candidates):
        rows, examples = np.flatnonzero(candidates == candidate), self._examples_of.get(candidate)
        if examples is None:
            continue
        own = similarities[np.ix_(rows if len(vectors) > 1 else np.zeros(len(rows), dtype=int), examples)]
        k = min(3, own.shape[1])
        result[rows] = np.partition(own, own.shape[1] - k, axis=1)[:, -k:].mean(axis=1)
    return result


def original_near_miss(self, vectors):
    near = self.vectors[self.labels == NONE]
    return (vectors @ near.T).max(axis=1) if len(near) else np.zeros(len(vectors))


def use_original_path(monkeypatch, classifier: EntryClassifier) -> None:
    monkeypatch.setattr(classifier, "probabilities", partial(EntryClassifier.probabilities, classifier, batch=True), raising=False)
    monkeypatch.setattr(classifier, "neighbours", types.MethodType(original_neighbours, classifier), raising=False)
    monkeypatch.setattr(classifier, "near_miss", types.MethodType(original_near_miss, classifier), raising=False)


def lookup(kb, text: str, vector: np.ndarray):
    """What KnowledgeBase.matches computes for `text`, every part of it, and matches itself."""
    n_entries = len(kb._positions)
    entries, none = kb.classifier.entry_probabilities([text], vector, n_entries)
    repeat = np.zeros(n_entries, dtype=np.int64)
    features = feature_matrix(kb.classifier, entries[repeat], none[repeat], vector, np.arange(n_entries))
    carried = text_embedding.carried_value(text, kb._encoder_identity, vector)
    matches = kb.matches(text, k=None, carried=carried) if text.strip() else []
    return entries, none, features, kb.calibration.probability(features), matches


def assert_same(fast, original, text):
    for name, a, b in zip(("entry probabilities", "NONE probability", "features", "answer probabilities"), fast, original):
        assert a.dtype == b.dtype and np.array_equal(a, b), f"{name} differ for {text!r}: {a} vs {b}"
    assert fast[4] == original[4], f"matches differ for {text!r}"  # Match: floats compared exactly


@pytest.mark.parametrize("name", QUESTION_SETS)
def test_every_question_scores_as_before_bit_for_bit(kb, monkeypatch, name):
    texts = compared_questions(name)
    assert texts
    vectors = [kb.embed([text]) for text in texts]
    fast = [lookup(kb, text, vector) for text, vector in zip(texts, vectors)]
    use_original_path(monkeypatch, kb.classifier)
    for text, vector, result in zip(texts, vectors, fast):
        assert_same(result, lookup(kb, text, vector), text)


LONG = " ".join(questions("bench/data/kb_dev.yml")) * 3  # thousands of words, n-grams counted many times
EDGE_CASES = {
    "empty": "",
    "whitespace only": " \n\t  ",
    "no known n-gram": "ЖЖЖ ЩЩЩ 漢字漢字",
    "emoji only": "🙏🙏👍😊",
    "very long": LONG,
    "one letter": "a",
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
@pytest.mark.parametrize("vector_of", ["its own", "zero"])
def test_edge_cases_score_as_before(kb, monkeypatch, case, vector_of):
    text = EDGE_CASES[case]
    vector = kb.embed([text or "x"]) if vector_of == "its own" else np.zeros((1, kb.classifier.vectors.shape[1]), np.float32)
    if case == "no known n-gram":  # make sure the case is what it says
        assert all(v.transform([text.lower()]).nnz == 0 for v in kb.classifier.vectorizers)
    fast = lookup(kb, text, vector)
    use_original_path(monkeypatch, kb.classifier)
    assert_same(fast, lookup(kb, text, vector), text)
    assert np.isclose(fast[0].sum() + fast[1][0], 1.0)


def small_classifier(labels, seed=0):
    """An EntryClassifier on made-up texts and random unit vectors (few texts: min_df 1)."""
    words = ["return", "refund", "cod", "cash", "delivery", "size", "chart", "kitne", "din", "exchange", "offer"]
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(words, size=4)) for _ in labels]
    vectors = rng.normal(size=(len(labels), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return EntryClassifier().fit(texts, vectors, np.asarray(labels)), rng


@pytest.mark.parametrize("labels", [
    [0, 1, 2, NONE] * 5,  # multinomial: the fast path
    [0, NONE] * 5,  # binary: sklearn's path (one-vs-rest probabilities)
    [0] * 6,  # a single class: no model, probability 1
], ids=["four classes", "binary", "single class"])
def test_small_knowledge_bases_score_as_before(monkeypatch, labels):
    classifier, rng = small_classifier(labels)
    texts = ["return kitne din", "cash on delivery milega?", "qwxz", "", "🙏", "refund refund refund " * 50]
    vectors = [rng.normal(size=(1, 16)).astype(np.float32) for _ in texts]
    candidates = np.arange(max(labels) + 2)  # includes an entry the classifier never saw
    fast = [(classifier.probabilities([t], v), classifier.neighbours(v, candidates), classifier.near_miss(v))
            for t, v in zip(texts, vectors)]
    use_original_path(monkeypatch, classifier)
    for text, vector, (probabilities, neighbours, near_miss) in zip(texts, vectors, fast):
        assert np.array_equal(probabilities, classifier.probabilities([text], vector)), text
        assert np.array_equal(neighbours, classifier.neighbours(vector, candidates)), text
        assert np.array_equal(near_miss, classifier.near_miss(vector)), text
        assert probabilities.shape == (1, len(set(labels))) and np.isclose(probabilities.sum(), 1.0)
