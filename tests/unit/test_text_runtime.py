"""ONNX Runtime for query encoding: same embeddings as PyTorch, cached export, falls back when weights change."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mirkit.encoders import onnx_runtime
from mirkit.encoders.text import tiny_text_encoder
from mirkit.errors import ConfigError

pytest.importorskip("onnxruntime", reason="onnxruntime is a mirkit dependency; install it with `pip install onnxruntime`")
pytest.importorskip("onnx", reason="onnx is a mirkit dependency (export); install it with `pip install onnx`")

TEXTS = ["calm solo piano", "fast swing with brass", "dark", "epic battle theme with strings and drums by alpha"]


def test_onnx_runtime_matches_torch_and_is_used(tmp_path: Path, monkeypatch):
    encoder = tiny_text_encoder(seed=3)
    expected = encoder.encode(TEXTS)
    encoder.clear_memo()
    assert encoder.runtime == "torch"
    assert encoder.use_onnx_runtime(cache_dir=tmp_path) is None
    assert encoder.runtime == "onnxruntime" and len(list(tmp_path.glob("*.onnx"))) == 1

    def no_torch(texts):
        raise AssertionError("PyTorch was used although ONNX Runtime is active")

    monkeypatch.setattr(encoder, "_embed_torch", no_torch)
    got = encoder.encode(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(got[0], got[1])  # real, distinct embeddings
    batch = encoder.encode(["epic battle", "a"] * 5)  # batch of mixed lengths (padding)
    np.testing.assert_allclose(batch[0], batch[2])


def test_export_is_cached_by_weights(tmp_path: Path, monkeypatch):
    assert tiny_text_encoder(seed=4).use_onnx_runtime(cache_dir=tmp_path) is None

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_runtime, "export_onnx", no_export)
    same = tiny_text_encoder(seed=4)
    assert same.use_onnx_runtime(cache_dir=tmp_path) is None and same.runtime == "onnxruntime"
    other = tiny_text_encoder(seed=5)  # other weights need their own export
    reason = other.use_onnx_runtime(cache_dir=tmp_path)
    assert reason is not None and "exported again" in reason and other.runtime == "torch"


def test_changed_weights_fall_back_to_torch(tmp_path: Path):
    encoder = tiny_text_encoder(seed=3)
    assert encoder.use_onnx_runtime(cache_dir=tmp_path) is None
    before = encoder.encode(TEXTS)
    with torch.no_grad():
        encoder.model.encoder.layer[0].output.dense.weight.mul_(3.0)
    assert encoder.runtime == "torch"
    encoder.clear_memo()
    after = encoder.encode(TEXTS)
    assert not np.allclose(after, before, atol=1e-3)
    with torch.no_grad():
        np.testing.assert_allclose(after, encoder(TEXTS).numpy(), atol=1e-6)


def test_lora_text_tower_is_exported_merged(tmp_path: Path):
    from mirkit.retrieval.model import apply_text_lora

    encoder = apply_text_lora(tiny_text_encoder(seed=3), 2)
    with torch.no_grad():
        for name, param in encoder.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # B starts at zero; make the adapter change the output
        expected = encoder(TEXTS).numpy()
    assert encoder.use_onnx_runtime(cache_dir=tmp_path) is None
    np.testing.assert_allclose(encoder.encode(TEXTS), expected, atol=1e-5)
    plain = tiny_text_encoder(seed=3).encode(TEXTS)
    assert not np.allclose(plain, expected, atol=1e-3)


def test_a_session_that_disagrees_is_refused(tmp_path: Path, monkeypatch):
    original = onnx_runtime.OnnxSession.run
    monkeypatch.setattr(onnx_runtime.OnnxSession, "run", lambda self, feeds: [x * 1.5 + 0.1 for x in original(self, feeds)])
    encoder = tiny_text_encoder(seed=3)
    reason = encoder.use_onnx_runtime(cache_dir=tmp_path)
    assert reason is not None and "differs from PyTorch" in reason and encoder.runtime == "torch"


@pytest.fixture(scope="module")
def small_index(tmp_path_factory) -> Path:
    from mirkit.retrieval.index import index_library
    from tests.unit.test_retrieval import CONFIG, make_library

    db = tmp_path_factory.mktemp("index") / "lib"
    library = make_library(tmp_path_factory.mktemp("library"), n=3)
    index_library(library, db=db, config=CONFIG, progress=False, text_encoder=tiny_text_encoder())
    return db


def test_search_engine_text_runtime_option(small_index: Path, monkeypatch):
    from mirkit.retrieval.search import SearchEngine

    engine = SearchEngine(small_index, text_encoder=tiny_text_encoder(), text_runtime="auto")
    assert engine.text_encoder.runtime == "onnxruntime"
    hits = engine.search("Tone Song 1", k=3)
    assert hits[0].title == "Tone Song 1"
    torch_engine = SearchEngine(small_index, text_encoder=tiny_text_encoder(), text_runtime="torch")
    assert torch_engine.text_encoder.runtime == "torch"
    assert torch_engine.search("Tone Song 1", k=3)[0].id == hits[0].id
    # near-ties may order differently (embeddings agree to ~1e-7, not bit for bit)
    np.testing.assert_allclose(engine.embed_query("calm tone"), torch_engine.embed_query("calm tone"), atol=1e-5)
    with pytest.raises(ConfigError, match="text_runtime='fast'"):
        SearchEngine(small_index, text_encoder=tiny_text_encoder(), text_runtime="fast")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # the import fails as if it were not installed
    with pytest.raises(ConfigError, match="ONNX Runtime cannot encode queries"):
        SearchEngine(small_index, text_encoder=tiny_text_encoder(), text_runtime="onnxruntime")
    fallback = SearchEngine(small_index, text_encoder=tiny_text_encoder(), text_runtime="auto")
    assert fallback.text_encoder.runtime == "torch" and fallback.search("Tone Song 1", k=3)[0].title == "Tone Song 1"
