"""An on-disk cache of the knowledge base's sentence embeddings, so that an action-server start-up
does not embed the same ~1,200 texts again (4.3 s of CPU of the ~8 s the KB took to load).

One file per encoder, `<directory>/<model>-<encoder class>.npz`, holding a SHA-256 digest of each text
and its normalised embedding. A text whose digest is not in the file (a new or edited question) is
embedded and added; a missing, unreadable or corrupt file is ignored (everything is embedded again and
the file rewritten). Vectors are stored exactly as the encoder returned them (float32), so a cached
knowledge base gives the same answers as a fresh one.

The directory is `build/kb_embeddings/` (git-ignored). KB_EMBEDDING_CACHE=<directory> puts it
elsewhere; KB_EMBEDDING_CACHE=off turns the cache off.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from actions.atomic_npz import write_npz
from actions.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

CACHE_ENV = "KB_EMBEDDING_CACHE"
DEFAULT_DIRECTORY = PROJECT_ROOT / "build" / "kb_embeddings"
# Texts of earlier versions of the KB (and of other KB files) are kept up to this many rows in all,
# newest first, so that switching between two versions does not embed everything again.
MAX_ROWS = 20_000
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def caches_turned_off() -> bool:
    """KB_EMBEDDING_CACHE=off (or 0, false, no): no embedding cache is read or written (also the second opinion's)."""
    return os.environ.get(CACHE_ENV, "").strip().lower() in ("off", "0", "false", "no")


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeddings of texts by one encoder, read from and written to `directory`."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    @classmethod
    def from_environment(cls) -> Optional["EmbeddingCache"]:
        """The cache KB_EMBEDDING_CACHE asks for: build/kb_embeddings by default, none when "off"."""
        if caches_turned_off():
            return None
        setting = os.environ.get(CACHE_ENV, "").strip()
        return cls(Path(setting) if setting else DEFAULT_DIRECTORY)

    def path(self, model: str, encoder: object) -> Path:
        # The encoder's class is part of the name: ONNX and torch embeddings are equal only to ~1e-6.
        # So is an int8 graph's precision: its vectors differ from float ones at the 1 % level.
        precision = getattr(encoder, "precision", "float")
        variant = "" if precision == "float" else f"-{precision}"
        name = _UNSAFE.sub("_", f"{model}-{type(encoder).__name__}{variant}").strip("_.")
        return self.directory / f"{name}.npz"

    def embed(
        self, texts: Sequence[str], model: str, encoder: object, compute: Callable[[Sequence[str]], np.ndarray]
    ) -> np.ndarray:
        """Embeddings of `texts` (one row each): cached rows as stored, the others from `compute`."""
        path = self.path(model, encoder)
        stored = self._read(path)
        keys = [text_key(text) for text in texts]
        missing = list(dict.fromkeys(key for key in keys if key not in stored))
        if missing:
            text_of = dict(zip(keys, texts))
            computed = np.asarray(compute([text_of[key] for key in missing]), dtype=np.float32)
            if stored and computed.shape[1:] != next(iter(stored.values())).shape:
                stored = {}  # another dimension: the model behind the name changed
            fresh = dict(zip(missing, computed))
            self._write(path, {**fresh, **{k: v for k, v in stored.items() if k not in fresh}})
            stored.update(fresh)
        return np.stack([stored[key] for key in keys]) if keys else np.zeros((0, 0), dtype=np.float32)

    @staticmethod
    def _read(path: Path) -> Dict[str, np.ndarray]:
        if not path.exists():
            return {}
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
            if vectors.ndim != 2 or len(keys) != len(vectors) or vectors.dtype != np.float32:
                raise ValueError(f"keys {keys.shape} and vectors {vectors.shape} {vectors.dtype} do not match")
            return {str(key): vector for key, vector in zip(keys, vectors)}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            logger.warning("KB embedding cache %s unreadable (%s): embedding again", path, error)
            return {}

    @staticmethod
    def _write(path: Path, rows: Dict[str, np.ndarray]) -> None:
        keys: List[str] = list(rows)[:MAX_ROWS]
        try:
            write_npz(path, keys=np.array(keys), vectors=np.stack([rows[k] for k in keys]))
        except OSError as error:
            logger.warning("KB embedding cache %s not written (%s): the next start-up embeds again", path, error)
