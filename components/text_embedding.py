"""The NLU's sentence embedding of a message, carried to the action server in the parse data (issue 16).

The knowledge-base search in the action server (actions/knowledge_base.py) embeds the customer's question with
all-MiniLM-L6-v2, the encoder the NLU has just run on the same text in the Rasa server
(components/sentence_featurizer.py): measured under the capacity benchmark, that second encode was ~58 % of the
action server's time per knowledge-base question. With `carry_embedding: true` the featurizer puts what it computed
into the parse data,

    "text_embedding": {"text": "what is your return policy?",        # the text it encoded
                       "encoder": "all-MiniLM-L6-v2:1f0c9a...",       # `encoder_identity` below
                       "vector": "<base64 of the little-endian float32 vector>"}

and the knowledge base uses that vector instead of encoding only when the text it is about to encode is exactly
that text and its own encoder identity is exactly that identity (`carried_vector`); anything else, including a
malformed value, is ignored and the text is encoded as before. Both sides encode with `embed` below, one text at a
time, so a reused vector is bit for bit the vector the knowledge base would compute: same answers, same
probabilities. KB_REUSE_NLU_EMBEDDING=0 makes the action server ignore carried vectors (to measure the saving).

The vector is needed within the turn only: the project's tracker store and RabbitMQ broker leave the key out of
what they write (connectors/event_filter.py `lean_event`). Rasa's own SQL tracker store and SQL event broker keep
it (about 2.2 kB per user event).

Numpy and the standard library only (no Rasa): the action server imports it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

# The parse-data key (connectors/event_filter.py TURN_ONLY_PARSE_DATA_KEYS lists it too: it has no imports).
KEY = "text_embedding"
REUSE_ENV = "KB_REUSE_NLU_EMBEDDING"  # "0": the action server encodes every question itself
# A carried vector must have unit length (both sides normalise); a looser check would let a broken one through.
_NORM_TOLERANCE = 1e-3
_ENCODERS = {  # the encoder classes whose vectors are reproducible from the identity's parts (module prefix, name)
    ("components.onnx_encoder", "OnnxSentenceEncoder"),
    ("sentence_transformers", "SentenceTransformer"),
    ("components.use_encoder", "UniversalSentenceEncoder"),
}
_PACKAGES = ("onnxruntime", "tokenizers", "torch", "sentence-transformers", "transformers", "numpy")

_identities: Dict[Tuple[str, str, int], Optional[str]] = {}
_lock = threading.Lock()


def embed(encoder: Any, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """L2-normalised float32 embeddings of `texts`, one row each: how the NLU and the knowledge base both encode."""
    vectors = encoder.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _known(encoder: Any) -> bool:
    kind = type(encoder)
    return any(kind.__module__.startswith(module) and kind.__name__ == name for module, name in _ENCODERS)


def encoder_identity(model_name: str, encoder: Any) -> Optional[str]:
    """`model_name` plus a digest of everything that decides the vector `embed(encoder, [text])` returns: the
    encoder class, the content of every model file (and of the ONNX graph when ONNX Runtime runs it), the code that
    turns text into a vector, the versions of the libraries doing it and the thread count. Equal identities in the
    Rasa server and the action server mean equal vectors for equal texts. None for an encoder this module does not
    know (a test double, another library): its vectors are never carried nor reused. Computed once per process
    and encoder (it reads the model files: ~0.2 s)."""
    if not _known(encoder):
        return None
    key = (model_name, type(encoder).__name__, id(encoder))
    with _lock:
        if key not in _identities:
            _identities[key] = _compute_identity(model_name, encoder)
        return _identities[key]


def _compute_identity(model_name: str, encoder: Any) -> str:
    from components import onnx_encoder, sentence_encoder, use_encoder

    model_dir = sentence_encoder.resolve_model_path(model_name)
    parts: Dict[str, Any] = {
        "encoder": f"{type(encoder).__module__}.{type(encoder).__name__}",
        "files": sorted((str(path.relative_to(model_dir)), _file_digest(path))
                        for path in model_dir.rglob("*") if path.is_file()),
        "code": [Path(module.__file__).read_text(encoding="utf-8")
                 for module in (sentence_encoder, onnx_encoder, use_encoder)] + [Path(__file__).read_text("utf-8")],
        "packages": {package: _version(package) for package in _PACKAGES},
        "threads": os.environ.get("ENCODER_TORCH_THREADS", "1"),
    }
    precision = getattr(encoder, "precision", "float")
    if isinstance(encoder, onnx_encoder.OnnxSentenceEncoder):
        parts["onnx"] = _file_digest(encoder.onnx_path)
        parts["precision"] = precision
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:20]
    return f"{model_name}{'@int8' if precision == 'int8' else ''}:{digest}"


def carried_value(text: str, identity: str, vector: np.ndarray) -> Dict[str, str]:
    """The parse-data value for `vector`, the embedding of `text` by the encoder `identity` names."""
    raw = np.asarray(vector, dtype="<f4").reshape(-1).tobytes()
    return {"text": text, "encoder": identity, "vector": base64.b64encode(raw).decode("ascii")}


def reuse_enabled() -> bool:
    return os.environ.get(REUSE_ENV, "1").strip() != "0"


def carried_vector(carried: Any, text: str, identity: Optional[str], dimension: int) -> Optional[np.ndarray]:
    """The carried embedding as a (1, dimension) float32 row when it is the embedding of exactly `text` by exactly
    the encoder `identity` names, else None (also for anything malformed: never an error)."""
    if identity is None or not isinstance(carried, dict) or not reuse_enabled():
        return None
    if carried.get("text") != text or carried.get("encoder") != identity:
        return None
    encoded = carried.get("vector")
    if not isinstance(encoded, str) or len(encoded) != 4 * ((4 * dimension + 2) // 3):
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 4 * dimension:
        return None
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(1, dimension)
    if not np.all(np.isfinite(vector)) or abs(float(np.linalg.norm(vector)) - 1.0) > _NORM_TOLERANCE:
        return None
    return vector
