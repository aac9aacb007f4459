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
from scipy.stats import rankdata

from features import LAB_OUT, load_split
from components.in_scope_model import (
    EVIDENCE_KINDS,
    CalibratedIntentModel,
    _fit_temperature,
    _fold_ids,
    _l2_normalise_rows,
    _tempered,
    confidence_from_percentile,
)

THRESHOLD, AMBIGUITY, COVERAGE = 0.6, 0.1, 0.96


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    ranks = rankdata(np.concatenate([positive, negative]))
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def shipped_evidence(index: int, folds: int = 10) -> Dict:
    """Held-out (cross-fitted) and test evidence of the shipped model on split `index` (cached)."""
    path = LAB_OUT / f"evidence{index}_{folds}.pkl"
    if path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)
    split = load_split(index)
    model = CalibratedIntentModel(folds=folds)
    dense = _l2_normalise_rows(split["train_dense"])
    blocks = [sp.csr_matrix(b) for b in split["train_blocks"]]
    model.intents = sorted(set(split["train_intents"]))
    labels = np.array([model.intents.index(intent) for intent in split["train_intents"]])
    fold_of = _fold_ids(labels, folds, model.seed)
    held_out = {kind: np.zeros(len(labels)) for kind in EVIDENCE_KINDS}
    held_out_probabilities = np.zeros((len(labels), len(model.intents)))
    for fold in range(folds):
        test = fold_of == fold
        fit = model._new_fit().fit(dense[~test], [b[~test] for b in blocks], labels[~test])
        evidence = fit.evidence(dense[test], [b[test] for b in blocks])
        held_out_probabilities[test] = evidence.probabilities
        for kind in EVIDENCE_KINDS:
            held_out[kind][test] = evidence.scores[kind]
    final = model._new_fit().fit(dense, blocks, labels).evidence(
        _l2_normalise_rows(split["test_dense"]), [sp.csr_matrix(b) for b in split["test_blocks"]]
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
