"""Intent classifier plus a conformally calibrated "is this in scope?" confidence (numpy/sklearn).

This module has no Rasa dependency; `components.calibrated_confidence` wraps it as a graph
component. Inputs are feature matrices:

* `dense`: one row per message, e.g. a sentence-transformers embedding (any dense sentence features);
  or a list of such matrices, one per sentence encoder ("views", see below);
* `sparse_blocks`: zero or more sparse count matrices (e.g. word and char n-gram counts), one per
  featurizer.

What is learned, only from the labelled in-scope examples:

1. A multinomial logistic regression on [dense | tf-idf weighted sparse blocks] gives the intent
   ranking (the "raw" confidence is its probability). A temperature fitted on held-out folds makes
   those probabilities calibrated relative to each other (the regularised regression is
   under-confident), which is what FallbackClassifier's ambiguity check compares.
2. Four kinds of evidence that a message belongs to its predicted intent: the classifier's top
   probability, the mean cosine similarity to the nearest training examples of that intent, the
   (negative) Mahalanobis distance to the nearest intent centroid in the dense space, and the
   classifier's energy (log-sum-exp of its logits; Liu et al. 2020, "Energy-based Out-of-distribution
   Detection"), which keeps the logits' scale that the softmax throws away.
With several views (e.g. two different sentence encoders), each view gets its own classifier
(on [view | sparse blocks]) and its own evidence. The intent ranking is the geometric mean of the
views' probabilities, and every view scores the four kinds of evidence for that joint top intent, so
the average also drops when the encoders disagree. One view is exactly the single-encoder model.

3. Calibration: every training example is scored by models that never saw it (k-fold
   cross-fitting). Evidence is z-normalised with those held-out statistics and averaged into one
   in-scope score, and the held-out scores form the reference distribution. A new message's
   percentile in that distribution is mapped to a confidence such that the percentile
   `1 - in_scope_coverage` lands exactly on `threshold`: under the usual exchangeability
   assumption about `in_scope_coverage` of new in-scope messages score at or above the threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp
from sklearn.covariance import LedoitWolf
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression

EVIDENCE_KINDS = ("classifier", "neighbours", "mahalanobis", "energy")


def view_kind(kind: str, view: int) -> str:
    """Name of one view's evidence: the first view keeps the plain name (single-view models)."""
    return kind if view == 0 else f"{kind}@view{view + 1}"


DenseViews = Union[np.ndarray, Sequence[np.ndarray]]
# One message's row of one sparse block: (column indices, float64 values) of its non-zeros in CSR order, and the
# block's width.
SparseRow = Tuple[np.ndarray, np.ndarray, int]


def sparse_row(matrix: sp.spmatrix) -> SparseRow:
    """The `SparseRow` of a (1, width) sparse matrix: exactly the indices and values `sp.csr_matrix(matrix,
    dtype=np.float64)` holds, in the same order. A COO row whose columns are strictly increasing (what Rasa's
    featurizers give) is read as it is; anything else goes through scipy's own conversion."""
    if matrix.shape[0] != 1:
        raise ValueError(f"one row expected, got shape {matrix.shape}")
    if sp.isspmatrix_coo(matrix):
        columns = matrix.col
        if len(columns) < 2 or bool((columns[1:] > columns[:-1]).all()):
            return columns, np.asarray(matrix.data, dtype=np.float64), matrix.shape[1]
    row = sp.csr_matrix(matrix, dtype=np.float64)
    return row.indices, row.data, row.shape[1]


def _as_views(dense: DenseViews) -> List[np.ndarray]:
    """One matrix or a list of them -> list of L2-normalised float64 matrices."""
    views = [dense] if isinstance(dense, np.ndarray) else list(dense)
    if not views:
        raise ValueError("at least one dense feature matrix is needed")
    return [_l2_normalise_rows(np.asarray(view, dtype=np.float64)) for view in views]


def _l2_normalise_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def _l2_normalise_sparse_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix


def _logsumexp(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """`scipy.special.logsumexp(a, axis=axis, keepdims=keepdims)` for a float array: scipy's own steps in its
    order, so the same bits, without its input validation (its overhead dwarfs the arithmetic at one message
    per call)."""
    a_max = np.amax(a, axis=axis, keepdims=True)
    a_max[~np.isfinite(a_max)] = 0
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - a_max), axis=axis, keepdims=keepdims))
    if not keepdims:
        a_max = np.squeeze(a_max, axis=axis)
    out += a_max
    return out


def _add_rows(target: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """`np.add.at(target, rows, values)`. For a single target row (one served message) the values are added with
    `np.add.accumulate`, which adds them one after another in the same order as `np.add.at` does (so the same
    bits), about ten times faster on numpy 1.23."""
    if target.shape[0] == 1:
        target[0] = np.add.accumulate(np.concatenate([target, values]), axis=0)[-1]
    else:
        np.add.at(target, rows, values)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def confidence_from_percentile(
    percentile: np.ndarray, in_scope_coverage: float, threshold: float
) -> np.ndarray:
    """Piecewise-linear, increasing map [0, 1] -> [0, 1] that sends `1 - coverage` to `threshold`."""
    miss_rate = 1.0 - in_scope_coverage
    percentile = np.clip(percentile, 0.0, 1.0)
    below = threshold * percentile / miss_rate
    above = threshold + (1.0 - threshold) * (percentile - miss_rate) / (1.0 - miss_rate)
    return np.where(percentile < miss_rate, below, above)


@dataclass
class Evidence:
    """What one fitted model says about a batch of messages."""

    probabilities: np.ndarray  # (n, n_intents) classifier probabilities
    scores: Dict[str, np.ndarray]  # evidence kind -> (n,) values for the top intent


@dataclass
class Prediction:
    """The model's answer for a batch of messages."""

    raw_probabilities: np.ndarray  # (n, n_intents) logistic regression output
    intent_probabilities: np.ndarray  # (n, n_intents) temperature-calibrated version of the above
    confidence: np.ndarray  # (n,) calibrated in-scope confidence of the top intent
    in_scope_percentile: np.ndarray  # (n,) share of held-out in-scope messages that scored lower


def _tempered(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    return _softmax(np.log(np.maximum(probabilities, 1e-300)) / temperature)


def _fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the held-out negative log-likelihood (1.0 = leave as is)."""
    if probabilities.shape[1] < 2:
        return 1.0

    def negative_log_likelihood(log_temperature: float) -> float:
        tempered = _tempered(probabilities, float(np.exp(log_temperature)))
        return float(-np.log(np.maximum(tempered[np.arange(len(labels)), labels], 1e-300)).mean())

    result = minimize_scalar(negative_log_likelihood, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


class _SingleFit:
    """Classifier + evidence models fitted on one set of examples (no calibration)."""

    def __init__(self, n_intents: int, neighbours: int, regularisation_c: float) -> None:
        self.n_intents = n_intents
        self.neighbours = neighbours
        self.regularisation_c = regularisation_c
        self.idf: List[np.ndarray] = []
        self.coef = np.zeros((0, 0))
        self.intercept = np.zeros(0)
        self.train_dense = np.zeros((0, 0))
        self.train_labels = np.zeros(0, dtype=int)
        self.whitening = np.zeros((0, 0))
        self.white_centroids = np.zeros((0, 0))

    # --- features -------------------------------------------------------------------------
    def _weighted_sparse(self, blocks: Sequence[sp.spmatrix]) -> List[sp.csr_matrix]:
        # Sublinear tf-idf, each block normalised on its own so every featurizer weighs the same.
        weighted = []
        for block, idf in zip(blocks, self.idf):
            block = sp.csr_matrix(block, dtype=np.float64)
            block.data = np.log1p(np.abs(block.data))
            weighted.append(_l2_normalise_sparse_rows(block @ sp.diags(idf)))
        return weighted

    def _classifier_input(self, dense: np.ndarray, blocks: Sequence[sp.spmatrix]) -> sp.csr_matrix:
        return sp.hstack([sp.csr_matrix(dense)] + self._weighted_sparse(blocks)).tocsr()

    # --- fitting --------------------------------------------------------------------------
    def fit(self, dense: np.ndarray, blocks: Sequence[sp.spmatrix], labels: np.ndarray) -> "_SingleFit":
        n = dense.shape[0]
        self.idf = []
        for block in blocks:
            document_frequency = np.asarray((sp.csr_matrix(block) != 0).sum(axis=0)).ravel()
            self.idf.append(np.log((1.0 + n) / (1.0 + document_frequency)) + 1.0)
        self._fit_classifier(self._classifier_input(dense, blocks), labels)
        self.train_dense = dense
        self.train_labels = labels
        self._fit_mahalanobis(dense, labels)
        return self

    def _fit_classifier(self, inputs: sp.csr_matrix, labels: np.ndarray) -> None:
        self.coef = np.zeros((self.n_intents, inputs.shape[1]))
        self.intercept = np.zeros(self.n_intents)
        if self.n_intents == 1:  # nothing to choose between: probability 1
            return
        model = LogisticRegression(C=self.regularisation_c, max_iter=2000)
        model.fit(inputs, labels)
        if self.n_intents == 2:  # sklearn stores a single row for the binary case
            self.coef[1] = model.coef_[0]
            self.intercept[1] = model.intercept_[0]
        else:
            self.coef = model.coef_
            self.intercept = model.intercept_

    def _fit_mahalanobis(self, dense: np.ndarray, labels: np.ndarray) -> None:
        # Every intent is present in every fit: folds never hold out an intent's last example.
        centroids = np.stack([dense[labels == intent].mean(axis=0) for intent in range(self.n_intents)])
        residuals = dense - centroids[labels]
        # Ledoit-Wolf shrinkage: hundreds of examples cannot pin down a 384-d covariance alone.
        covariance = LedoitWolf(assume_centered=True).fit(residuals).covariance_
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        self.whitening = eigenvectors / np.sqrt(np.maximum(eigenvalues, 1e-12))
        self.white_centroids = centroids @ self.whitening

    # --- evidence -------------------------------------------------------------------------
    def logits(self, dense: np.ndarray, blocks: Sequence[sp.spmatrix]) -> np.ndarray:
        """Classifier logits; the same as `_classifier_input(...) @ coef.T + intercept`.

        Written out with plain numpy on the non-zero entries: at one message per call (serving),
        building and stacking scipy matrices cost several times more than the arithmetic.
        """
        logits = dense @ self.coef[:, : dense.shape[1]].T + self.intercept
        offset = dense.shape[1]
        for block, idf in zip(blocks, self.idf):
            block = sp.csr_matrix(block, dtype=np.float64)
            rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
            self._add_sparse(logits, rows, block.indices, block.data, idf, offset)
            offset += block.shape[1]
        return logits

    def row_logits(self, dense: np.ndarray, rows: Sequence[SparseRow]) -> np.ndarray:
        """`logits` of one message (`dense` of shape (1, dim)) whose sparse blocks are given as their non-zeros
        (`SparseRow`: column indices and values, as the block's CSR row holds them): the same arithmetic on the
        same numbers, without any scipy matrix."""
        logits = dense @ self.coef[:, : dense.shape[1]].T + self.intercept
        offset = dense.shape[1]
        for (indices, data, width), idf in zip(rows, self.idf):
            self._add_sparse(logits, np.zeros(len(indices), dtype=np.intp), indices, data, idf, offset)
            offset += width
        return logits

    def _add_sparse(self, logits: np.ndarray, rows: np.ndarray, indices: np.ndarray, data: np.ndarray,
                    idf: np.ndarray, offset: int) -> None:
        """Adds one sparse block's share (sublinear tf-idf, L2-normalised per row) to `logits` in place."""
        weights = np.log1p(np.abs(data)) * idf[indices]
        norms = np.sqrt(np.bincount(rows, weights**2, minlength=logits.shape[0]))
        weights = weights / np.maximum(norms, 1e-12)[rows]
        _add_rows(logits, rows, weights[:, None] * self.coef[:, offset + indices].T)

    def _examples_of(self, intent: int) -> np.ndarray:
        """The training vectors of one intent, grouped once per training set: a served message is compared
        with its top intent's examples only, not with every example (about half the evidence's time)."""
        if getattr(self, "_grouped_from", None) is not self.train_dense:
            self._grouped = {int(label): self.train_dense[self.train_labels == label] for label in np.unique(self.train_labels)}
            self._grouped_from = self.train_dense
        return self._grouped.get(int(intent), self.train_dense[:0])

    def scores_for(self, dense: np.ndarray, logits: np.ndarray, top: np.ndarray) -> Dict[str, np.ndarray]:
        """The four kinds of evidence that each message belongs to intent `top` (one per message)."""
        rows = np.arange(len(dense))
        neighbour_scores = np.empty(len(dense))
        for row, intent in enumerate(top):
            same_intent = self._examples_of(intent) @ dense[row]
            k = min(self.neighbours, len(same_intent))
            neighbour_scores[row] = np.sort(same_intent)[-k:].mean()

        white = dense @ self.whitening
        squared_distances = (
            (white**2).sum(axis=1, keepdims=True)
            - 2 * white @ self.white_centroids.T
            + (self.white_centroids**2).sum(axis=1)
        )
        return {
            "classifier": _softmax(logits)[rows, top],
            "neighbours": neighbour_scores,
            "mahalanobis": -squared_distances.min(axis=1),
            "energy": _logsumexp(logits, axis=1),
        }


class _ViewsFit:
    """One `_SingleFit` per dense view; joint ranking, every view's evidence for the joint top intent."""

    def __init__(self, n_intents: int, n_views: int, neighbours: int, regularisation_c: float) -> None:
        self.views = [_SingleFit(n_intents, neighbours, regularisation_c) for _ in range(n_views)]

    def fit(self, views: Sequence[np.ndarray], blocks: Sequence[sp.spmatrix], labels: np.ndarray) -> "_ViewsFit":
        for fit, dense in zip(self.views, views):
            fit.fit(dense, blocks, labels)
        return self

    def evidence(self, views: Sequence[np.ndarray], blocks: Sequence[sp.spmatrix]) -> Evidence:
        if len(views) != len(self.views):
            raise ValueError(f"the model was trained on {len(self.views)} dense views, got {len(views)}")
        return self._evidence(views, [fit.logits(dense, blocks) for fit, dense in zip(self.views, views)])

    def row_evidence(self, views: Sequence[np.ndarray], rows: Sequence[SparseRow]) -> Evidence:
        """`evidence` of one message whose sparse blocks are given as `SparseRow`s (see `_SingleFit.row_logits`)."""
        if len(views) != len(self.views):
            raise ValueError(f"the model was trained on {len(self.views)} dense views, got {len(views)}")
        return self._evidence(views, [fit.row_logits(dense, rows) for fit, dense in zip(self.views, views)])

    def _evidence(self, views: Sequence[np.ndarray], logits: List[np.ndarray]) -> Evidence:
        # Geometric mean of the views' probabilities (one view: its own softmax).
        log_probabilities = [view_logits - _logsumexp(view_logits, axis=1, keepdims=True) for view_logits in logits]
        probabilities = _softmax(np.mean(log_probabilities, axis=0))
        top = probabilities.argmax(axis=1)
        scores: Dict[str, np.ndarray] = {}
        for index, (fit, dense, view_logits) in enumerate(zip(self.views, views, logits)):
            for kind, values in fit.scores_for(dense, view_logits, top).items():
                scores[view_kind(kind, index)] = values
        return Evidence(probabilities=probabilities, scores=scores)


def _fold_ids(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Stratified fold of each example; -1 = never held out (intents with a single example)."""
    rng = np.random.RandomState(seed)
    fold_of = np.full(len(labels), -1)
    for intent in np.unique(labels):
        members = np.flatnonzero(labels == intent)
        if len(members) < 2:
            continue
        # A random start spreads small intents over different folds.
        fold_of[rng.permutation(members)] = (np.arange(len(members)) + rng.randint(folds)) % folds
    return fold_of


class CalibratedIntentModel:
    """Intent ranking with raw probabilities and calibrated in-scope confidences.

    Args:
        threshold: the confidence the calibrated boundary maps to (the FallbackClassifier threshold).
        in_scope_coverage: share of (held-out) in-scope messages that should score at or above it.
        neighbours: how many nearest training examples of the predicted intent are averaged.
        folds: number of cross-fitting folds used to collect held-out in-scope scores.
        regularisation_c: inverse L2 strength of the logistic regression.
        evidence: which evidence kinds to average (subset of EVIDENCE_KINDS).
        seed: seed of the fold assignment.
    """

    def __init__(
        self,
        threshold: float = 0.6,
        in_scope_coverage: float = 0.96,
        neighbours: int = 5,
        folds: int = 10,
        regularisation_c: float = 10.0,
        evidence: Sequence[str] = EVIDENCE_KINDS,
        seed: int = 0,
    ) -> None:
        unknown = set(evidence) - set(EVIDENCE_KINDS)
        if unknown or not evidence:
            raise ValueError(f"`evidence` must be a non-empty subset of {EVIDENCE_KINDS}, got {evidence}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"`threshold` must be between 0 and 1, got {threshold}")
        if not 0.5 <= in_scope_coverage < 1.0:
            raise ValueError(f"`in_scope_coverage` must be in [0.5, 1), got {in_scope_coverage}")
        if folds < 2:
            raise ValueError(f"`folds` must be at least 2, got {folds}")
        self.threshold = threshold
        self.in_scope_coverage = in_scope_coverage
        self.neighbours = neighbours
        self.folds = folds
        self.regularisation_c = regularisation_c
        self.evidence_kinds = tuple(evidence)
        self.seed = seed
        self.intents: List[str] = []
        self.n_views = 1
        self.fitted: Optional[_ViewsFit] = None
        self.evidence_mean: Dict[str, float] = {}
        self.evidence_std: Dict[str, float] = {}
        self.reference_scores = np.zeros(0)  # sorted held-out in-scope scores
        self.temperature = 1.0

    # --- training -------------------------------------------------------------------------
    def fit(
        self, dense: DenseViews, sparse_blocks: Sequence[sp.spmatrix], intents: Sequence[str]
    ) -> "CalibratedIntentModel":
        """Fits the classifier and calibrates the confidence on held-out folds of the same data."""
        views = _as_views(dense)
        self.n_views = len(views)
        sparse_blocks = [sp.csr_matrix(block) for block in sparse_blocks]
        self.intents = sorted(set(intents))
        labels = np.array([self.intents.index(intent) for intent in intents])

        held_out, held_out_probabilities, held_out_labels = self._held_out_evidence(
            views, sparse_blocks, labels
        )
        self.temperature = _fit_temperature(held_out_probabilities, held_out_labels)
        for kind in self.scored_kinds():
            values = held_out[kind]
            self.evidence_mean[kind] = float(values.mean())
            self.evidence_std[kind] = float(values.std())
        self.reference_scores = np.sort(self._combine(held_out))
        self.fitted = self._new_fit().fit(views, sparse_blocks, labels)
        return self

    def scored_kinds(self) -> List[str]:
        """The configured evidence kinds of every view, as averaged into the in-scope score."""
        return [view_kind(kind, view) for view in range(self.n_views) for kind in self.evidence_kinds]

    def _new_fit(self) -> _ViewsFit:
        return _ViewsFit(len(self.intents), self.n_views, self.neighbours, self.regularisation_c)

    def _held_out_evidence(
        self, views: List[np.ndarray], blocks: List[sp.csr_matrix], labels: np.ndarray
    ) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Evidence and probabilities for every example that was held out, and their labels."""
        fold_of = _fold_ids(labels, self.folds, self.seed)
        if not (fold_of >= 0).any():
            raise ValueError("Calibration needs at least one intent with two or more examples.")
        scores: Dict[str, np.ndarray] = {}
        probabilities = np.zeros((len(labels), len(self.intents)))
        for fold in range(self.folds):
            test = fold_of == fold
            if not test.any():
                continue
            train = ~test
            model = self._new_fit().fit([view[train] for view in views], [b[train] for b in blocks], labels[train])
            evidence = model.evidence([view[test] for view in views], [b[test] for b in blocks])
            probabilities[test] = evidence.probabilities
            for kind, values in evidence.scores.items():
                scores.setdefault(kind, np.full(len(labels), np.nan))[test] = values
        measured = fold_of >= 0
        return (
            {kind: values[measured] for kind, values in scores.items()},
            probabilities[measured],
            labels[measured],
        )

    def _combine(self, scores: Dict[str, np.ndarray]) -> np.ndarray:
        # Evidence that never varied on held-out data carries no information: skip it.
        used = [kind for kind in self.scored_kinds() if self.evidence_std[kind] > 1e-12]
        if not used:
            return np.zeros(len(next(iter(scores.values()))))
        return np.mean(
            [(scores[kind] - self.evidence_mean[kind]) / self.evidence_std[kind] for kind in used],
            axis=0,
        )

    # --- prediction -----------------------------------------------------------------------
    def in_scope_percentile(self, scores: np.ndarray) -> np.ndarray:
        """Share of held-out in-scope messages that scored lower, smoothly extended below the lowest."""
        reference = self.reference_scores
        n = len(reference)
        percentile = np.interp(scores, reference, (np.arange(n) + 0.5) / n)
        # Below every reference score keep decreasing (instead of flattening) so that far-off
        # messages still rank below near misses.
        if getattr(self, "_spread_of", None) is not reference:  # computed once per reference distribution
            self._spread, self._spread_of = max(float(reference.std()), 1e-6), reference
        spread = self._spread
        below = scores < reference[0]
        percentile[below] = (0.5 / n) * np.exp((scores[below] - reference[0]) / spread)
        return percentile

    def predict(self, dense: DenseViews, sparse_blocks: Sequence[sp.spmatrix]) -> Prediction:
        """Intent probabilities and calibrated confidence for each message (row of the views)."""
        if self.fitted is None:
            raise RuntimeError("CalibratedIntentModel.predict called before fit/load")
        return self._prediction(self.fitted.evidence(_as_views(dense), [sp.csr_matrix(b) for b in sparse_blocks]))

    def predict_row(self, dense: DenseViews, sparse_rows: Sequence[SparseRow]) -> Prediction:
        """`predict` for one message (views of one row) whose sparse blocks are given by their non-zeros, one
        `SparseRow` per block (`sparse_row` makes one): the same numbers as `predict` on the equivalent
        (1, width) matrices, without building scipy matrices (at one message per call, building them cost
        more than the arithmetic)."""
        if self.fitted is None:
            raise RuntimeError("CalibratedIntentModel.predict_row called before fit/load")
        return self._prediction(self.fitted.row_evidence(_as_views(dense), sparse_rows))

    def _prediction(self, evidence: Evidence) -> Prediction:
        percentile = self.in_scope_percentile(self._combine(evidence.scores))
        return Prediction(
            raw_probabilities=evidence.probabilities,
            intent_probabilities=_tempered(evidence.probabilities, self.temperature),
            confidence=confidence_from_percentile(percentile, self.in_scope_coverage, self.threshold),
            in_scope_percentile=percentile,
        )

    # --- persistence ----------------------------------------------------------------------
    def to_arrays(self) -> Tuple[Dict[str, np.ndarray], Dict]:
        """Plain arrays + JSON-able metadata (no pickling)."""
        arrays = {"reference_scores": self.reference_scores}
        for view, fitted in enumerate(self.fitted.views):
            arrays.update({f"view{view}_{name}": getattr(fitted, name) for name in _FITTED_ARRAYS})
            for index, idf in enumerate(fitted.idf):
                arrays[f"view{view}_idf_{index}"] = idf
        metadata = {
            "intents": self.intents,
            "views": self.n_views,
            "sparse_blocks": len(self.fitted.views[0].idf),
            "threshold": self.threshold,
            "in_scope_coverage": self.in_scope_coverage,
            "neighbours": self.neighbours,
            "folds": self.folds,
            "regularisation_c": self.regularisation_c,
            "evidence": list(self.evidence_kinds),
            "seed": self.seed,
            "evidence_mean": self.evidence_mean,
            "evidence_std": self.evidence_std,
            "temperature": self.temperature,
        }
        return arrays, metadata

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray], metadata: Dict) -> "CalibratedIntentModel":
        """Inverse of `to_arrays`."""
        model = cls(
            threshold=metadata["threshold"],
            in_scope_coverage=metadata["in_scope_coverage"],
            neighbours=metadata["neighbours"],
            folds=metadata["folds"],
            regularisation_c=metadata["regularisation_c"],
            evidence=metadata["evidence"],
            seed=metadata["seed"],
        )
        model.intents = list(metadata["intents"])
        model.n_views = int(metadata["views"])
        model.evidence_mean = dict(metadata["evidence_mean"])
        model.evidence_std = dict(metadata["evidence_std"])
        model.reference_scores = arrays["reference_scores"]
        model.temperature = float(metadata["temperature"])
        model.fitted = model._new_fit()
        for view, fitted in enumerate(model.fitted.views):
            for name in _FITTED_ARRAYS:
                setattr(fitted, name, arrays[f"view{view}_{name}"])
            fitted.idf = [arrays[f"view{view}_idf_{i}"] for i in range(metadata["sparse_blocks"])]
        return model


# What a fitted view stores, besides its idf vectors.
_FITTED_ARRAYS = ("coef", "intercept", "train_dense", "train_labels", "whitening", "white_centroids")
