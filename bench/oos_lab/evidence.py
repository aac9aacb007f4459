"""The shipped model's evidence on dumped features, and the benchmark's figures, for offline work.

`shipped_evidence(i)` cross-fits `components.in_scope_model` exactly as training does (10 folds,
same seed) and caches held-out and test evidence, so that an experiment can add a kind of evidence
and re-calibrate without re-fitting anything. `figures` computes what bench/oos_benchmark.py
reports (in-scope accuracy after the fallback, top-1, OOS recall at 0.6, AUROC), including the
ambiguity check, so numbers here match the benchmark's for the shipped model.
"""
from __future__ import annotations

import pickle
from typing import Dict, Sequence

import numpy as np
import scipy.sparse as sp

from features import LAB_OUT, load_split, read_result
from oos_benchmark import auroc
from components.in_scope_model import (
    EVIDENCE_KINDS,
    CalibratedIntentModel,
    DenseViews,
    _as_views,
    _fit_temperature,
    _tempered,
    confidence_from_percentile,
)

THRESHOLD, AMBIGUITY, COVERAGE = 0.6, 0.1, 0.96


def shipped_evidence(index: int, folds: int = 10) -> Dict:
    """Held-out (cross-fitted) and test evidence of the shipped model on split `index` (cached)."""
    split = load_split(index)
    return model_evidence(index, "", split["train_dense"], split["test_dense"], folds)


def model_evidence(index: int, name: str, train_dense: DenseViews, test_dense: DenseViews, folds: int = 10) -> Dict:
    """Held-out and test evidence of `components.in_scope_model` on split `index` with the split's
    sparse features and the given dense ones, one matrix or a list of views (cached under `name`;
    "" = the shipped features)."""
    path = LAB_OUT / f"evidence{name}{index}_{folds}.pkl"
    if path.exists():
        return read_result(path, "bench/oos_lab/evidence.py")
    split = load_split(index)
    model = CalibratedIntentModel(folds=folds)
    views = _as_views(train_dense)
    model.n_views = len(views)
    blocks = [sp.csr_matrix(b) for b in split["train_blocks"]]
    model.intents = sorted(set(split["train_intents"]))
    labels = np.array([model.intents.index(intent) for intent in split["train_intents"]])
    # The same cross-fitting training runs; every HWU64 intent has many examples, so every one is held out once.
    held_out, held_out_probabilities, held_out_labels = model._held_out_evidence(views, blocks, labels)
    if len(held_out_labels) != len(labels):
        raise RuntimeError("some training examples were never held out; the lab assumes all are")
    final = model._new_fit().fit(views, blocks, labels).evidence(
        _as_views(test_dense), [sp.csr_matrix(b) for b in split["test_blocks"]]
    )
    result = {
        "intents": model.intents,
        "labels": labels,
        "held_out": held_out,
        "held_out_probabilities": held_out_probabilities,
        "test": final.scores,
        "test_probabilities": final.probabilities,
    }
    with path.open("wb") as handle:
        pickle.dump(result, handle)
    return result


def combine(held_out: Dict[str, np.ndarray], test: Dict[str, np.ndarray], kinds: Sequence[str]):
    """Equal-weight mean of z-scores (scales from held-out data), as the shipped model does."""
    def z(values, kind):
        return (values - held_out[kind].mean()) / held_out[kind].std()

    return (np.mean([z(held_out[k], k) for k in kinds], axis=0), np.mean([z(test[k], k) for k in kinds], axis=0))


def calibrated_confidence(held_out_score: np.ndarray, test_score: np.ndarray, coverage: float = COVERAGE) -> np.ndarray:
    model = CalibratedIntentModel(in_scope_coverage=coverage)
    model.reference_scores = np.sort(held_out_score)
    return confidence_from_percentile(model.in_scope_percentile(test_score), coverage, THRESHOLD)


def figures(split: Dict, evidence: Dict, confidence: np.ndarray) -> Dict[str, float]:
    """The benchmark's figures for one split, given the calibrated confidence of every test message."""
    relative = _tempered(evidence["test_probabilities"], _fit_temperature(evidence["held_out_probabilities"], evidence["labels"]))
    in_scope = np.array([gold is not None for gold in split["test_gold"]])
    ordered = np.sort(relative, axis=1)
    margin = np.minimum(ordered[:, -1] - ordered[:, -2], confidence)  # ranking entries are floored at 0
    predicted = np.array(evidence["intents"])[relative.argmax(axis=1)]
    correct = np.array([p == gold for p, gold in zip(predicted, split["test_gold"])])
    accepted = (confidence >= THRESHOLD) & (margin >= AMBIGUITY)
    return {
        "accuracy": float((correct & accepted)[in_scope].mean()),
        "top1": float(correct[in_scope].mean()),
        "oos_recall": float((~accepted)[~in_scope].mean()),
        "auroc": auroc(confidence[in_scope], confidence[~in_scope]),
    }


def mean_figures(rows: Sequence[Dict[str, float]]) -> Dict[str, float]:
    return {key: round(float(np.mean([row[key] for row in rows])), 4) for key in rows[0]}
