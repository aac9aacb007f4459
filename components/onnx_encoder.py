"""The sentence encoder run by ONNX Runtime instead of torch: same embeddings, 3× less CPU; or its int8 version.

We embed one short WhatsApp message at a time, twice per turn (NLU in the Rasa server, knowledge-base
search in the action server). For such tiny inputs torch spends most of its time in per-operator
overhead: all-MiniLM-L6-v2 took p50 14.9 ms per message with torch and 4.7 ms with ONNX Runtime on
our 2-core machine under load (one thread each), and the embeddings differed by at most 2e-7.

The ONNX graph is exported from the installed sentence-transformers model once, at set-up time
(`scripts/export_sentence_encoder.py`, run by `scripts/setup.sh`), into `build/encoders/`. It holds the
transformer only; tokenisation (the model's own `tokenizer.json`), mean pooling and L2 normalisation
are done here exactly as the model's sentence-transformers modules describe them. Models with other
module layouts (CLS pooling, dense heads, ...) are reported as unsupported, and
`components.sentence_encoder.load_encoder` uses torch for them.

Precision `int8` (issue 16; `precision:` of the featurizer in config.yml and of the knowledge base in
escalation.yml) runs a copy of the graph with int8 weights made by ONNX Runtime's dynamic quantisation
(`quantize`): about a third of the float graph's CPU per short message, embeddings at cosine ~0.99 to the
float ones (bench/README_cluster.md, "Session 14: int8 encoder" and "Session 20"). Dynamic quantisation picks
one activation scale per call over the whole batch and its padding, so the same text would get a slightly
different vector in a batch than alone: the int8 encoder therefore encodes one text per call, in training as
when serving, and a text always gets the same vector.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXPORT_DIR_ENV = "SENTENCE_ENCODER_ONNX_DIR"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"
PRECISIONS = ("float", "int8")
# How the int8 graph is made; part of its file name, so a changed recipe makes a new file (and new identities).
# Per-channel weights keep the embeddings at cosine ~0.99 to float (per tensor: ~0.96); reduce_range (7-bit
# weights) avoids the u8 x s8 kernels' saturation on CPUs without VNNI, so every machine computes the same vectors.
QUANTIZATION_RECIPE = "qint8-perchannel-rr1"


class UnsupportedModel(ValueError):
    """The model's sentence-transformers modules are not transformer + mean pooling (+ normalise)."""


def export_dir() -> Path:
    return Path(os.environ.get(EXPORT_DIR_ENV) or PROJECT_ROOT / "build" / "encoders")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def check_supported(model_dir: Path) -> bool:
    """Whether the model is transformer → mean pooling (→ normalise); raises UnsupportedModel if not.

    Returns whether the model normalises its embeddings."""
    modules_path = model_dir / "modules.json"
    if not modules_path.exists():
        raise UnsupportedModel(f"{model_dir} has no modules.json (not a sentence-transformers model)")
    modules = _read_json(modules_path)
    types = [module["type"] for module in modules]
    if types[:2] != [TRANSFORMER, POOLING] or types[2:] not in ([], [NORMALIZE]):
        raise UnsupportedModel(f"{model_dir}: modules {types} (only Transformer, mean Pooling, Normalize)")
    pooling = _read_json(model_dir / modules[1]["path"] / "config.json")
    modes = [key for key, value in pooling.items() if key.startswith("pooling_mode") and value]
    if modes != ["pooling_mode_mean_tokens"]:
        raise UnsupportedModel(f"{model_dir}: pooling {modes} (only mean pooling)")
    if not (model_dir / "tokenizer.json").exists():
        raise UnsupportedModel(f"{model_dir} has no tokenizer.json (fast tokenizer needed)")
    return types[2:] == [NORMALIZE]


def model_fingerprint(model_dir: Path) -> str:
    """Changes when the model's weights, config or tokenizer change (then the export is redone)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(model_dir)):
        path = model_dir / name
        if path.is_file() and (path.suffix in {".json", ".safetensors", ".bin", ".txt"}):
            digest.update(name.encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def export_path(model_dir: Path) -> Path:
    """Where the ONNX graph of this exact model version lives."""
    return export_dir() / f"{model_dir.name}-{model_fingerprint(model_dir)}" / "model.onnx"


def quantized_path(model_dir: Path) -> Path:
    """Where the int8 graph of this exact model version lives (next to the float one)."""
    return export_path(model_dir).with_name(f"model.int8-{QUANTIZATION_RECIPE}.onnx")


def quantize(float_path: Path, destination: Path) -> Path:
    """Writes the int8 graph made from the float export (ONNX Runtime's dynamic quantisation, ~2 s, 23 MB)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial.onnx")
    quantize_dynamic(
        model_input=str(float_path), model_output=str(partial),
        per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
    )
    partial.replace(destination)  # never leave a half-written graph where loaders look
    return destination


def export(model_dir: Path, destination: Path) -> Path:
    """Exports the model's transformer to ONNX (needs torch and the `onnx` package)."""
    check_supported(model_dir)
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    sample = tokenizer(["where is my order #2840"], return_tensors="pt")

    class LastHiddenState(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".partial")
    dynamic = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(model),
            tuple(sample[name] for name in MODEL_INPUTS),
            str(partial),
            input_names=list(MODEL_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={name: dynamic for name in (*MODEL_INPUTS, "last_hidden_state")},
            opset_version=17,
            dynamo=False,
        )
    partial.replace(destination)  # never leave a half-written graph where loaders look
    return destination


class OnnxSentenceEncoder:
    """The subset of SentenceTransformer's interface this project uses, on ONNX Runtime."""

    def __init__(self, model_dir: Path, onnx_path: Path, threads: int = 1, precision: str = "float") -> None:
        import onnxruntime

        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self.onnx_path = Path(onnx_path)
        from tokenizers import Tokenizer

        self.normalises = check_supported(model_dir)
        max_length = int(_read_json(model_dir / "sentence_bert_config.json").get("max_seq_length", 256))
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_length)
        pad_token = _read_json(model_dir / "tokenizer_config.json").get("pad_token", "[PAD]")
        pad_token = pad_token.get("content") if isinstance(pad_token, dict) else pad_token
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id(pad_token), pad_token=pad_token)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._dimension = int(_read_json(model_dir / "config.json")["hidden_size"])

    def get_sentence_embedding_dimension(self) -> int:
        return self._dimension

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        feeds: Dict[str, np.ndarray] = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = self._session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        return (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        **_ignored: Any,  # convert_to_numpy, show_progress_bar: always numpy, never a bar
    ) -> np.ndarray:
        texts: List[str] = list(sentences)
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if self.precision == "int8":
            batch_size = 1  # one activation scale per text: a text's vector never depends on its batch
        # Similar lengths together: less padding (sentence-transformers does the same).
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            vectors[rows] = self._encode_batch([texts[i] for i in rows])
        if self.normalises or normalize_embeddings:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
