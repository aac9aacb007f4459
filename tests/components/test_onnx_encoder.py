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


# --- precision int8 (issue 16): a third of the CPU, nearly the same vectors, never a silent fallback -------------

@pytest.fixture(scope="module")
def int8(model_dir, exported, tmp_path_factory):
    path = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    onnx_encoder.quantize(exported, path)
    return onnx_encoder.OnnxSentenceEncoder(model_dir, path, precision="int8")


def test_int8_vectors_stay_close_to_float_ones(int8, onnx):
    float_vectors = onnx.encode(TEXTS, normalize_embeddings=True)
    int8_vectors = int8.encode(TEXTS, normalize_embeddings=True)
    cosines = (float_vectors * int8_vectors).sum(axis=1)
    assert cosines.min() > 0.95 and cosines.mean() > 0.98, cosines
    assert not np.array_equal(float_vectors, int8_vectors)  # really the int8 graph
    # The nearest float vector of each int8 vector is its own text's.
    assert list((int8_vectors @ float_vectors.T).argmax(axis=1)) == list(range(len(TEXTS)))


def test_int8_gives_a_text_the_same_vector_alone_and_in_a_batch(int8):
    # Dynamic quantisation scales activations per call: batching would make a text's vector depend on its company.
    batched = int8.encode(TEXTS, batch_size=64, normalize_embeddings=True)
    alone = np.vstack([int8.encode([text], normalize_embeddings=True) for text in TEXTS])
    assert np.array_equal(batched, alone)


def test_quantising_twice_gives_the_same_graph(exported, tmp_path):
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    onnx_encoder.quantize(exported, first)
    onnx_encoder.quantize(exported, second)
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.glob("*partial*"))


def test_load_encoder_int8_makes_the_graph_on_first_use_and_keeps_float_apart(monkeypatch, tmp_path, model_dir, exported):
    monkeypatch.setattr(sentence_encoder, "_cache", {})
    monkeypatch.delenv(sentence_encoder.BACKEND_ENV, raising=False)
    export_root = tmp_path / "encoders"
    monkeypatch.setenv(onnx_encoder.EXPORT_DIR_ENV, str(export_root))
    float_path = onnx_encoder.export_path(model_dir)
    float_path.parent.mkdir(parents=True)
    shutil.copy(exported, float_path)
    int8_encoder = sentence_encoder.load_encoder(DEFAULT_MODEL, "int8")
    assert int8_encoder.precision == "int8" and int8_encoder.onnx_path == onnx_encoder.quantized_path(model_dir)
    assert int8_encoder.onnx_path.exists()
    float_encoder = sentence_encoder.load_encoder(DEFAULT_MODEL)
    assert float_encoder.precision == "float" and float_encoder is not int8_encoder
    assert sentence_encoder.load_encoder(DEFAULT_MODEL, "int8") is int8_encoder


def test_int8_never_falls_back_to_float_or_torch(monkeypatch, tmp_path):
    monkeypatch.setattr(sentence_encoder, "_cache", {})
    monkeypatch.setenv(onnx_encoder.EXPORT_DIR_ENV, str(tmp_path / "nothing-exported"))
    monkeypatch.delenv(sentence_encoder.BACKEND_ENV, raising=False)
    with pytest.raises(EncoderNotAvailable, match="int8 needs the model's ONNX export.*setup.sh"):
        sentence_encoder.load_encoder(DEFAULT_MODEL, "int8")
    monkeypatch.setenv(sentence_encoder.BACKEND_ENV, "torch")
    with pytest.raises(EncoderNotAvailable, match="ONNX Runtime only"):
        sentence_encoder.load_encoder(DEFAULT_MODEL, "int8")


def test_precisions_are_checked_by_name():
    with pytest.raises(EncoderNotAvailable, match="use one of float, int8"):
        sentence_encoder.load_encoder(DEFAULT_MODEL, "fp16")
    with pytest.raises(EncoderNotAvailable, match="no int8 version"):
        sentence_encoder.load_encoder("universal-sentence-encoder-multilingual-v3", "int8")
