"""The answer probability of a knowledge-base match: "does this entry answer this question?", fitted
from the knowledge base's own data each time it is loaded.

A raw cosine score is a poor thing to compare with a threshold: "what's the GST registration number
of your company?" scores 0.56 against the pricing entry ("prices already include GST") while some
real pricing questions score less. So, in the spirit of the NLU's calibrated confidence
(components/in_scope_model.py), the knowledge base turns each match into a probability learnt from
examples of both outcomes:

* answerable: every example question of every active entry, scored with that very question left out
  of the index (leave-one-out), so that it looks like a new customer wording. When the best remaining
  entry is not the question's own, the example counts as "must not answer": answering it would send
  the wrong entry.
* not answerable: every `not_covered` question of the entries and every question of the near-miss
  file, each compared with the other near misses only (never with itself).

A logistic regression over a few features of (question, best entry) maps them to a probability
(see FEATURES). `knowledge_base.answer_threshold` in escalation.yml is compared with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
from sklearn.linear_model import LogisticRegression

# What the probability is computed from, for a question and one candidate entry:
#   score:      the entry's blended similarity (best text 70 %, next two 30 %)
#   margin:     score minus the best other entry's score (a close runner-up means "not sure which")
#   near_miss:  the question's best cosine with any near-miss question (not_covered + near_misses)
#   contrast:   score minus near_miss: is the question closer to a known near miss than to the entry?
#               This is what makes a designer's `not_covered` example (and wordings close to it) stop
#               being answered.
# Tried on bench/data/kb_dev.yml and left out because they did not help there: the share of the question's (specificity-weighted) words found in
# the entry's texts, a tf-idf similarity blended into the score, and the USE multilingual encoder
# (alone or concatenated with MiniLM).
FEATURES = ("score", "margin", "near_miss", "contrast")

REGULARISATION_C = 1.0  # inverse L2 strength; a few hundred examples, four features


class CalibrationError(ValueError):
    """The knowledge base does not hold the examples the answer probability is fitted from."""


def feature_matrix(scores: np.ndarray, near_miss: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """One row of FEATURES per question, for the entry `candidate[i]` of question i.

    scores: (n, entries) blended entry scores; near_miss: (n,) best cosine with a near-miss question;
    candidate: (n,) entry index.
    """
    rows = np.arange(len(candidate))
    chosen = scores[rows, candidate]
    others = scores.copy()
    others[rows, candidate] = -np.inf
    runner_up = others.max(axis=1) if scores.shape[1] > 1 else np.zeros(len(rows))
    return np.column_stack([chosen, chosen - runner_up, near_miss, chosen - near_miss])


@dataclass
class AnswerCalibration:
    """Logistic regression from FEATURES to P(the entry answers the question)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    examples: Tuple[int, int]  # (answerable, not answerable) examples it was fitted on

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
        model = LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=1000)
        model.fit((features - mean) / scale, answerable)
        return cls(mean, scale, model.coef_[0], float(model.intercept_[0]), (positives, negatives))

    def probability(self, features: np.ndarray) -> np.ndarray:
        logits = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))
