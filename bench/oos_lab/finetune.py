"""Fine-tuned second view of the encoder: tuned-space nearest-neighbour evidence, cross-fitted.

all-MiniLM-L6-v2 is fine-tuned on a split's in-scope training data (cross-entropy on a cosine
classifier + supervised contrastive loss, 3 epochs, lr 4e-5, batch 64). The evidence is the mean
cosine similarity of a message to its 5 nearest training examples (any intent) in the tuned space.
For calibration every training example needs that score from a model that never saw it, so the
encoder is fine-tuned once per fold (5 folds) and once on everything for the test messages.

    .venv/bin/python bench/oos_lab/finetune.py 0 1 2 3 4     # 6-12 min per split on 2 cores
"""
from __future__ import annotations

import pickle
import sys
import time
from pathlib import Path
from typing import List, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import LAB_OUT, load_split, read_result  # noqa: E402

FOLDS, NEIGHBOURS = 5, 5


def model_dir() -> str:
    from components.sentence_encoder import resolve_model_path

    return str(resolve_model_path("all-MiniLM-L6-v2"))


class TunedEncoder:
    def __init__(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(2)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir())
        self.model = AutoModel.from_pretrained(model_dir())

    def _embed(self, texts: Sequence[str]):
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=64, return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return self.torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.model.eval()
        with self.torch.no_grad():
            return np.vstack([self._embed(texts[s : s + 128]).numpy() for s in range(0, len(texts), 128)])

    def fit(self, texts: List[str], labels: np.ndarray, n_intents: int, epochs: int = 3,
            batch_size: int = 64, learning_rate: float = 4e-5, temperature: float = 0.1, seed: int = 0) -> "TunedEncoder":
        torch, functional = self.torch, self.torch.nn.functional
        torch.manual_seed(seed)
        prototypes = torch.nn.Parameter(torch.randn(n_intents, self.model.config.hidden_size) * 0.01)
        optimiser = torch.optim.AdamW(list(self.model.parameters()) + [prototypes], lr=learning_rate, weight_decay=0.01)
        targets = torch.tensor(np.asarray(labels))
        for epoch in range(epochs):
            self.model.train()
            order = np.random.RandomState(seed + epoch).permutation(len(texts))
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                embeddings, batch_targets = self._embed([texts[r] for r in rows]), targets[rows]
                cross_entropy = functional.cross_entropy(
                    embeddings @ functional.normalize(prototypes, dim=-1).T * 20, batch_targets
                )
                self_mask = torch.eye(len(rows), dtype=torch.bool)
                positives = (batch_targets[:, None] == batch_targets[None, :]) & ~self_mask
                log_probability = (embeddings @ embeddings.T / temperature).masked_fill(self_mask, -1e9).log_softmax(1)
                has_positive = positives.sum(1) > 0
                contrastive = (
                    -(log_probability * positives).sum(1)[has_positive] / positives.sum(1)[has_positive]
                ).mean()
                optimiser.zero_grad()
                (cross_entropy + contrastive).backward()
                optimiser.step()
        return self


def nearest_similarity(queries: np.ndarray, references: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    return np.sort(queries @ references.T, axis=1)[:, -k:].mean(axis=1)


def tuned_evidence_path(index: int) -> Path:
    return LAB_OUT / f"tuned{index}.pkl"


def tuned_evidence(index: int) -> dict:
    """{'held_out': (n_train,), 'test': (n_test,), 'seconds_total', 'seconds_final'}: tuned-space
    neighbour similarity of split `index`."""
    return read_result(tuned_evidence_path(index), f".venv/bin/python bench/oos_lab/finetune.py {index}")


def run(index: int) -> None:
    from components.in_scope_model import _fold_ids

    split = load_split(index)
    texts = list(split["train_texts"])
    intents = sorted(set(split["train_intents"]))
    labels = np.array([intents.index(intent) for intent in split["train_intents"]])
    started = time.perf_counter()
    held_out = np.zeros(len(texts))
    fold_of = _fold_ids(labels, FOLDS, 0)
    for fold in range(FOLDS):
        train = np.flatnonzero(fold_of != fold)
        test = np.flatnonzero(fold_of == fold)
        encoder = TunedEncoder().fit([texts[i] for i in train], labels[train], len(intents))
        held_out[test] = nearest_similarity(encoder.encode([texts[i] for i in test]), encoder.encode([texts[i] for i in train]))
    final_started = time.perf_counter()
    encoder = TunedEncoder().fit(texts, labels, len(intents))
    test = nearest_similarity(encoder.encode(list(split["test_texts"])), encoder.encode(texts))
    result = {"held_out": held_out, "test": test,
              "seconds_total": time.perf_counter() - started, "seconds_final": time.perf_counter() - final_started}
    with tuned_evidence_path(index).open("wb") as handle:
        pickle.dump(result, handle)
    print(f"split {index}: {FOLDS} fold fine-tunes + final in {result['seconds_total']:.0f} s "
          f"(final {result['seconds_final']:.0f} s)", flush=True)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["0", "1", "2", "3", "4"]:
        run(int(arg))
