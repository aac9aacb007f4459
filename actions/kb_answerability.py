"""Which knowledge-base entry answers a question, and the probability that it really does.

Both are learnt from the knowledge base's own data each time it is loaded, like an intent classifier
(the NLU's components/in_scope_model.py does the same for intents):

* Entry classifier: a multinomial logistic regression whose classes are the active entries plus
  NONE. An entry's examples are its `questions`, its title and the sentences of its answer; NONE's
  are every `not_covered` question and every question of the near-miss file. Its input is the
  sentence embedding joined with tf-idf weighted word (1-2) and character (2-5, within words) n-gram
  counts: the character n-grams are what make "retrn polcy", "kese" / "kaise" and other Hinglish
  spellings land on the right entry, the embedding carries the meaning of unseen wordings.
* Answer probability: another logistic regression over a few features of (question, candidate
  entry), see FEATURES, fitted on honest examples of both outcomes. The entry classifier is
  cross-fitted (every example is scored by a classifier that never saw it); an entry question whose
  held-out best entry is its own is "answerable", a near miss or an entry question that lands on a
  wrong entry is "must not answer". `knowledge_base.answer_threshold` in escalation.yml is compared
  with this probability.

Measured on bench/data/kb_dev.yml and the dev split of bench/conversations against the nearest-
neighbour cosine it replaces: see README "Knowledge base" and bench/kb_benchmark.py.
"""
from __future__ import annotations

import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.extmath import softmax

NONE = -1  # class label of the near misses: "no entry answers this"

# What the answer probability is computed from, for a question and one candidate entry:
#   log_probability: log of the classifier's probability of the candidate (NONE takes its share)
#   log_margin:      that minus the log probability of the best other entry ("not sure which")
#   log_none:        log probability of NONE ("looks like a known near miss")
#   neighbours:      mean cosine similarity of the 3 nearest example texts of the candidate
#   near_miss:       best cosine similarity with a near-miss question
#   contrast:        neighbours minus near_miss
FEATURES = ("log_probability", "log_margin", "log_none", "neighbours", "near_miss", "contrast")

CLASSIFIER_C = 10.0  # inverse L2 strength of the entry classifier (tried 1, 10, 100 on dev)
# Stopping tolerance of the classifier's optimiser: 1e-2 instead of sklearn's 1e-4 fits in two thirds
# of the time; probabilities move by 0.001 at most and the dev figures not at all.
TOLERANCE = 1e-2
CALIBRATION_C = 1.0  # inverse L2 strength of the answer probability (six features)
FOLDS = 3  # cross-fitting folds for the held-out examples the answer probability is fitted on (5: same dev figures, 60 % more load time)
NEIGHBOURS = 3
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)
MIN_DOCUMENT_FREQUENCY = 3  # n-grams of fewer example texts are left out: fewer weights to fit, same dev accuracy
# Entries with few examples weigh more in the classifier's fit: each example of an entry with n examples weighs
# (median entry's n / n) ** CLASS_BALANCE (at least 1; near misses weigh 1). Since the used-up conversations became
# examples (session 32), an established entry has hundreds, and a designer's new entry with five questions scored
# under the answer threshold on its own questions' paraphrases. 0: every example weighs 1.
CLASS_BALANCE = float(os.environ.get("KB_CLASS_BALANCE", "0.5"))
_FLOOR = 1e-6  # smallest probability a log is taken of
# The cross-fitting folds and the final classifier are independent fits: they run side by side on this many threads
# (session 31, the shipped knowledge base on 2 cores: 48 s one after the other, 35 s on two threads; the optimiser's
# sparse products release the GIL for part of the time). Each fit is the same as alone, so the probabilities are the
# same bit for bit. KB_FIT_THREADS=1 fits one after the other.
FIT_THREADS = max(1, int(os.environ.get("KB_FIT_THREADS", "0") or 0) or min(4, os.cpu_count() or 1))

# Topic words (topic_words below): what tells a follow-up that names another entry's subject ("aur COD
# milega?") from one that leans on the answer just given ("koi charge lagega?", "kitne din tak?").
# A word is compared by its first STEM letters ("exchange", "exchanges" and "exchnge" agree on "excha").
STEM = 5
# Words used by this share of the entries or more (and at least two) are the language's own ("hai",
# "the", "kya"), never a topic (0.3 of 14 entries: five or more; 0.5 and 0.2 were worse on the dev
# follow-ups, see escalation.yml elliptical_follow_ups).
FUNCTION_SHARE = 0.3
# A topic word is used this many times as often (share of an entry's example texts that contain it) as
# by any other entry...
TOPIC_DOMINANCE = 2.0
# ...and by at least this many of its entry's example texts.
TOPIC_MIN_EXAMPLES = 3

class CalibrationError(ValueError):
    """The knowledge base does not hold the examples the classifier and its calibration need."""


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def balance_weights(labels: np.ndarray, balance: Optional[float] = None) -> Optional[np.ndarray]:
    """Sample weights that lift entries with few examples (CLASS_BALANCE); None when every example weighs 1."""
    balance = CLASS_BALANCE if balance is None else balance
    labels = np.asarray(labels)
    entries = np.unique(labels[labels != NONE])
    if balance <= 0 or len(entries) == 0:
        return None
    counts = {label: int((labels == label).sum()) for label in entries}
    median = float(np.median(list(counts.values())))
    weights = np.ones(len(labels))
    for label, count in counts.items():
        weights[labels == label] = max(1.0, (median / count) ** balance)
    return weights


class EntryClassifier:
    """Entry-or-NONE classifier on [sentence embedding | word tf-idf | char tf-idf]."""

    def fit(self, texts: Sequence[str], vectors: np.ndarray, labels: np.ndarray,
            weights: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> "EntryClassifier":
        """`weights`: the (coef_, intercept_) a fit of the same texts, vectors and labels found before
        (actions/kb_fit_cache.py); the n-gram vocabularies are learnt again (cheap and deterministic), the
        logistic regression is not (most of the time of a knowledge-base load)."""
        normalised = [_normalised(t) for t in texts]
        # A tiny knowledge base (tests, a new brand) has too few texts to leave rare n-grams out.
        min_df = MIN_DOCUMENT_FREQUENCY if len(texts) >= 20 * MIN_DOCUMENT_FREQUENCY else 1
        self.vectorizers = [
            TfidfVectorizer(ngram_range=WORD_NGRAMS, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b", min_df=min_df),
            TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, min_df=min_df),
        ]
        for vectorizer in self.vectorizers:
            vectorizer.fit(normalised)
        self.classes = np.unique(labels)
        self.vectors, self.labels = vectors, np.asarray(labels)
        self._examples_of = {label: np.flatnonzero(self.labels == label) for label in self.classes}
        self._near_vectors = vectors[self.labels == NONE]  # near_miss's (copied once, not per question)
        self.model = None
        if len(self.classes) > 1:  # a single class needs no model: its probability is 1
            self.model = LogisticRegression(C=CLASSIFIER_C, tol=TOLERANCE, max_iter=2000)
            if weights is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    self.model.fit(self._inputs(normalised, vectors), self.labels,
                                   sample_weight=balance_weights(self.labels))
            else:
                coef, intercept = weights
                width = vectors.shape[1] + sum(len(v.vocabulary_) for v in self.vectorizers)
                if coef.shape != ((len(self.classes), width) if len(self.classes) > 2 else (1, width)):
                    raise ValueError(f"stored weights {coef.shape} do not fit {len(self.classes)} classes and {width} inputs")
                self.model.classes_, self.model.coef_, self.model.intercept_ = self.classes, coef, intercept
                self.model.n_features_in_ = width
            self._one_text = [(v.build_analyzer(), v.vocabulary_, v.idf_) for v in self.vectorizers]
            self._weights = np.ascontiguousarray(self.model.coef_.T)
        return self

    def _inputs(self, normalised: Sequence[str], vectors: np.ndarray) -> sp.csr_matrix:
        blocks = [sp.csr_matrix(vectors)] + [v.transform(normalised) for v in self.vectorizers]
        return sp.hstack(blocks, format="csr")

    def probabilities(self, texts: Sequence[str], vectors: np.ndarray, batch: bool = False) -> np.ndarray:
        """(n, len(self.classes)) class probabilities. One text (the action server's case) takes
        _text_probabilities unless `batch`; several texts, and `batch`, take sklearn's path."""
        if self.model is None:
            return np.ones((len(texts), 1))
        if len(texts) == 1 and len(self.classes) > 2 and not batch:
            return self._text_probabilities(texts[0], vectors)
        return self.model.predict_proba(self._inputs([_normalised(t) for t in texts], vectors))

    def _text_probabilities(self, text: str, vectors: np.ndarray) -> np.ndarray:
        """predict_proba of one text without sklearn's and scipy's per-call overhead (validation, the idf
        diagonal rebuilt, sparse matrices built and stacked: half the CPU of a KB lookup), with the same
        arithmetic in the same order, so the result is the same bit for bit (tests/actions/test_kb_fast_path.py):
        tf-idf as TfidfTransformer makes it (1 + log count, times idf, divided by the l2 norm summed in the
        row's order); a row's n-grams in the order scipy leaves them (`X * idf diagonal` reverses the sorted
        columns); the scores summed one non-zero after another as scipy's csr @ dense does; sklearn's softmax.
        Multinomial models only (3+ classes): a binary model takes sklearn's path."""
        columns, values = [np.flatnonzero(vectors[0])], [vectors[0][vectors[0] != 0]]
        offset, normalised = vectors.shape[1], _normalised(text)
        for analyze, vocabulary, idf in self._one_text:
            counts: dict = {}
            for gram in analyze(normalised):
                column = vocabulary.get(gram)
                if column is not None:
                    counts[column] = counts.get(column, 0) + 1
            if counts:
                found = np.array(sorted(counts, reverse=True))
                weights = (np.log(np.array([counts[c] for c in found], dtype=np.float64)) + 1) * idf[found]
                weights /= np.sqrt(np.add.accumulate(weights * weights)[-1])
                columns.append(found + offset)
                values.append(weights)
            offset += len(vocabulary)
        columns, values = np.concatenate(columns), np.concatenate(values).astype(np.float64)
        scores = np.zeros((1, self._weights.shape[1]))
        if len(columns):
            scores = np.add.accumulate(values[:, None] * self._weights[columns], axis=0)[-1:]
        return softmax(scores + self.model.intercept_, copy=False)

    def entry_probabilities(self, texts: Sequence[str], vectors: np.ndarray, n_entries: int) -> Tuple[np.ndarray, np.ndarray]:
        """(n, n_entries) probability of each entry (0 for an entry the classifier never saw) and
        (n,) the probability of NONE."""
        found = self.probabilities(texts, vectors)
        entries = np.zeros((len(texts), n_entries))
        none = np.zeros(len(texts))
        for column, label in enumerate(self.classes):
            if label == NONE:
                none = found[:, column]
            else:
                entries[:, label] = found[:, column]
        return entries, none

    def neighbours(self, vectors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Mean cosine similarity of each vector with the NEIGHBOURS nearest examples of its candidate
        (a single vector goes with every candidate)."""
        similarities = vectors @ self.vectors.T
        result = np.zeros(len(candidates))
        if len(vectors) == 1:  # one question (the action server's case): the same partition and mean per
            # candidate as below, bit for bit, without np.unique, flatnonzero and np.ix_ (a quarter of a lookup's CPU)
            for row, candidate in enumerate(candidates):
                examples = self._examples_of.get(candidate)
                if examples is not None:
                    k = min(NEIGHBOURS, len(examples))
                    result[row] = np.partition(similarities[0, examples], len(examples) - k)[-k:].mean()
            return result
        for candidate in np.unique(candidates):
            rows, examples = np.flatnonzero(candidates == candidate), self._examples_of.get(candidate)
            if examples is None:
                continue
            own = similarities[np.ix_(rows if len(vectors) > 1 else np.zeros(len(rows), dtype=int), examples)]
            k = min(NEIGHBOURS, own.shape[1])
            result[rows] = np.partition(own, own.shape[1] - k, axis=1)[:, -k:].mean(axis=1)
        return result

    def near_miss(self, vectors: np.ndarray) -> np.ndarray:
        """Best cosine similarity of each vector with a near-miss example."""
        near = self._near_vectors
        return (vectors @ near.T).max(axis=1) if len(near) else np.zeros(len(vectors))


_WORD = re.compile(r"[^\W\d_]+")


def stems(text: str) -> List[str]:
    """The words of `text` (letters only, lower case), each cut to its first STEM letters."""
    return [word[:STEM] for word in _WORD.findall(text.lower())]


def topic_words(texts: Sequence[str], labels: np.ndarray, n_entries: int) -> dict:
    """{word stem: entry label} for the words that name an entry's topic ("cod", "excha", "coupo",
    "shipp"): used by at least TOPIC_MIN_EXAMPLES of the entry's example texts, by fewer than
    FUNCTION_SHARE of the entries, and TOPIC_DOMINANCE times as often as by any other entry. Learnt from
    the entries' texts only (NONE examples are skipped), so some are accidents of the data: "koi" and
    "alag" come out as pricing words ("koi offer hai?", "gst alag se?")."""
    labels = np.asarray(labels)
    counts = np.zeros(n_entries)
    used = {}
    for text, label in zip(texts, labels):
        if label == NONE:
            continue
        counts[label] += 1
        for stem in set(stems(_normalised(text))):
            used.setdefault(stem, np.zeros(n_entries))[label] += 1
    result = {}
    present = int((counts > 0).sum())
    for stem, per_entry in used.items():
        if (per_entry > 0).sum() >= max(2, FUNCTION_SHARE * present):
            continue  # "hai", "the", "kya": used by many entries, whatever their share
        rates = per_entry / np.maximum(counts, 1)
        best = int(rates.argmax())
        others = np.delete(rates, best)
        if per_entry[best] >= TOPIC_MIN_EXAMPLES and rates[best] >= TOPIC_DOMINANCE * others.max(initial=0.0):
            result[stem] = best
    return result


def feature_matrix(
    classifier: EntryClassifier, entries: np.ndarray, none: np.ndarray, vectors: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """One row of FEATURES per question, for entry `candidates[i]` of question i.

    entries, none: the classifier's entry probabilities (n, entries) and NONE probability (n,) of the
    questions (EntryClassifier.entry_probabilities); vectors: their embeddings (or one, for all rows).
    """
    rows = np.arange(len(candidates))
    chosen = np.log(np.maximum(entries[rows, candidates], _FLOOR))
    others = entries.copy()
    others[rows, candidates] = 0.0
    runner_up = np.log(np.maximum(others.max(axis=1), _FLOOR)) if entries.shape[1] > 1 else np.zeros(len(rows))
    neighbours = classifier.neighbours(vectors, candidates)
    near_miss = np.broadcast_to(classifier.near_miss(vectors), neighbours.shape)
    return np.column_stack([
        chosen, chosen - runner_up, np.log(np.maximum(none, _FLOOR)), neighbours, near_miss, neighbours - near_miss,
    ])


@dataclass
class AnswerCalibration:
    """Logistic regression from FEATURES to P(the entry answers the question)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    examples: Tuple[int, int]  # (answerable, not answerable) held-out examples it was fitted on

    @classmethod
    def fit(cls, features: np.ndarray, answerable: np.ndarray) -> "AnswerCalibration":
        answerable = np.asarray(answerable, dtype=bool)
        positives, negatives = int(answerable.sum()), int((~answerable).sum())
        if positives == 0 or negatives == 0:
            raise CalibrationError(
                "cannot fit the answer probability: it needs example questions an entry answers "
                f"(found {positives}) and near misses no entry answers (found {negatives}). "
                "Add `not_covered:` questions to an entry or a `near_misses:` file."
            )
        mean = features.mean(axis=0)
        scale = np.maximum(features.std(axis=0), 1e-6)
        model = LogisticRegression(C=CALIBRATION_C, class_weight="balanced", max_iter=1000)
        model.fit((features - mean) / scale, answerable)
        return cls(mean, scale, model.coef_[0], float(model.intercept_[0]), (positives, negatives))

    def probability(self, features: np.ndarray) -> np.ndarray:
        logits = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))


def _folds(labels: np.ndarray) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Stratified (train, held-out) splits; classes with fewer examples than folds are spread thin."""
    smallest = np.bincount(np.unique(labels, return_inverse=True)[1]).min()
    splits = max(2, min(FOLDS, int(smallest)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only n members"
        return list(StratifiedKFold(splits, shuffle=True, random_state=0).split(np.zeros(len(labels)), labels))


# What a fit learns that is expensive to learn again: the entry classifier's weights and the calibration.
FittedWeights = Tuple[np.ndarray, np.ndarray, AnswerCalibration]


def fit_answerability(
    texts: Sequence[str], vectors: np.ndarray, labels: np.ndarray, is_question: np.ndarray, n_entries: int,
    stored: Optional[Callable[[], Optional[FittedWeights]]] = None,
    store: Optional[Callable[[FittedWeights], None]] = None,
) -> Tuple[EntryClassifier, AnswerCalibration]:
    """The entry classifier on all examples and the answer probability fitted on held-out ones.

    texts/vectors/labels: every example (label = entry index, or NONE for a near miss); is_question:
    which of them are customer-style questions (entry questions and near misses; titles and answer
    sentences train the classifier but are not examples of a customer's question).
    `stored` / `store`: a cache of the result for exactly these inputs (actions/kb_fit_cache.py): what
    `stored()` returns is used instead of fitting (None: fit); a fresh fit is handed to `store`.
    """
    labels = np.asarray(labels)
    if not (labels == NONE).any():
        raise CalibrationError(
            "cannot fit the answer probability: it needs example questions an entry answers and near "
            "misses no entry answers (found 0). Add `not_covered:` questions to an entry or a `near_misses:` file."
        )
    found = stored() if stored is not None else None
    if found is not None:
        coef, intercept, calibration = found
        try:
            return EntryClassifier().fit(texts, vectors, labels, weights=(coef, intercept)), calibration
        except ValueError:  # weights of another shape: not this fit after all, so fit as if none were stored
            pass
    features = np.zeros((len(texts), len(FEATURES)))
    answerable = np.zeros(len(texts), dtype=bool)
    folds = _folds(labels)

    def fit(rows: Optional[np.ndarray]) -> EntryClassifier:  # None: every example (the classifier kept)
        if rows is None:
            return EntryClassifier().fit(texts, vectors, labels)
        return EntryClassifier().fit([texts[i] for i in rows], vectors[rows], labels[rows])

    with ThreadPoolExecutor(max_workers=FIT_THREADS) as pool:
        fitted = list(pool.map(fit, [None] + [train for train, _ in folds]))  # the longest fit first
    classifier = fitted[0]
    for fold, (_, held_out) in zip(fitted[1:], folds):
        entries, none = fold.entry_probabilities([texts[i] for i in held_out], vectors[held_out], n_entries)
        candidates = entries.argmax(axis=1)
        features[held_out] = feature_matrix(fold, entries, none, vectors[held_out], candidates)
        answerable[held_out] = candidates == labels[held_out]
    calibration = AnswerCalibration.fit(features[is_question], answerable[is_question])
    if store is not None and classifier.model is not None:
        store((classifier.model.coef_, classifier.model.intercept_, calibration))
    return classifier, calibration
