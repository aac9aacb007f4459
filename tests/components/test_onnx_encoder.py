"""The ONNX Runtime encoder gives the same embeddings as sentence-transformers on torch."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from components import onnx_encoder, sentence_encoder
from components.sentence_encoder import DEFAULT_MODEL, EncoderNotAvailable, resolve_model_path

TEXTS = [
    "what is your return policy?",
    "mera order kab aayega #2840",
    "Do you sell human hair extensions?",
    "I was charged twice for order no 2812, please refund ₹1,499 right now!!",
    "hi",
    "kurta size M fits 36\" chest? " * 40,  # longer than the model's 256-token limit: truncated alike
]


def loads_onnx() -> bool:
    """What load_encoder picks now (the fresh cache each test sets makes it decide again)."""
    return isinstance(sentence_encoder.load_encoder(DEFAULT_MODEL), onnx_encoder.OnnxSentenceEncoder)


def edit_json(path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.fixture(scope="module")
def model_dir():
    return resolve_model_path(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def exported(model_dir):
    path = onnx_encoder.export_path(model_dir)
    if not path.exists():  # scripts/setup.sh exports it; a bare checkout exports here
        onnx_encoder.export(model_dir, path)
    return path


@pytest.fixture(scope="module")
def torch_encoder(model_dir):
    return sentence_encoder._load_torch(model_dir)


@pytest.fixture(scope="module")
def onnx(model_dir, exported):
    return onnx_encoder.OnnxSentenceEncoder(model_dir, exported)


def test_same_embeddings_as_torch(onnx, torch_encoder):
    expected = torch_encoder.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    got = onnx.encode(TEXTS, normalize_embeddings=True)
    assert got.shape == expected.shape == (len(TEXTS), 384)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batches_and_single_messages_agree(onnx):
    batched = onnx.encode(TEXTS, batch_size=4)
    one_by_one = np.vstack([onnx.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert onnx.encode([]).shape == (0, 384)
    assert onnx.get_sentence_embedding_dimension() == 384


def test_load_encoder_prefers_onnx_and_can_be_told_to_use_torch(monkeypatch, exported):
    monkeypatch.setattr(sentence_encoder, "_cache", {})
    monkeypatch.delenv(sentence_encoder.BACKEND_ENV, raising=False)
    assert loads_onnx()
    monkeypatch.setenv(sentence_encoder.BACKEND_ENV, "torch")
    assert not loads_onnx()
    monkeypatch.setenv(sentence_encoder.BACKEND_ENV, "gpu")
    with pytest.raises(EncoderNotAvailable, match="SENTENCE_ENCODER_BACKEND"):
        sentence_encoder.load_encoder(DEFAULT_MODEL)


def test_without_an_export_auto_falls_back_to_torch_and_onnx_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(sentence_encoder, "_cache", {})
    monkeypatch.setenv(onnx_encoder.EXPORT_DIR_ENV, str(tmp_path / "nothing-exported"))
    monkeypatch.setenv(sentence_encoder.BACKEND_ENV, "auto")
    assert not loads_onnx()
    monkeypatch.setenv(sentence_encoder.BACKEND_ENV, "onnx")
    with pytest.raises(EncoderNotAvailable, match="not exported yet"):
        sentence_encoder.load_encoder(DEFAULT_MODEL)


def test_models_onnx_cannot_serve_are_refused_clearly(model_dir, tmp_path):
    copy = tmp_path / "cls-pooling-model"
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    edit_json(copy / "1_Pooling" / "config.json", pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    with pytest.raises(onnx_encoder.UnsupportedModel, match="mean pooling"):
        onnx_encoder.check_supported(copy)


def test_a_changed_model_gets_a_new_export_path(model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    assert onnx_encoder.export_path(copy) == onnx_encoder.export_path(model_dir)
    edit_json(copy / "config.json", hidden_dropout_prob=0.2)
    assert onnx_encoder.export_path(copy) != onnx_encoder.export_path(model_dir)
