"""CREPE through ONNX Runtime: same layers as PyTorch for CPU inference, PyTorch for training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mirkit.encoders import load_encoder

pytest.importorskip("onnxruntime", reason="onnxruntime is a mirkit dependency; install it with `pip install onnxruntime`")


def _waveforms() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    lengths = torch.tensor([16000 * 4, 16000 * 3])  # 401 + 301 frames at 100 Hz: several ONNX chunks of 256
    return 0.1 * torch.randn(2, int(lengths.max()), generator=generator), lengths


def test_onnx_layers_match_torch_and_torch_stays_for_training(tmp_path: Path, monkeypatch):
    encoder = load_encoder("random:crepe-tiny")
    waveform, lengths = _waveforms()
    with torch.inference_mode():
        expected = encoder(waveform, lengths)
    assert encoder.runtime == "torch"
    assert encoder.use_onnx_runtime(cache_dir=tmp_path) is None and encoder.runtime == "onnxruntime"
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    with torch.inference_mode():
        got = encoder(waveform, lengths)
    for layer, hidden in expected.hidden.items():
        assert torch.equal(got.lengths[layer], expected.lengths[layer])
        scale = 1.0 + float(hidden.abs().max())
        torch.testing.assert_close(got.hidden[layer], hidden, atol=1e-4 * scale, rtol=0)
    assert not torch.equal(got.hidden[6], expected.hidden[6])  # a different engine really ran
    with torch.enable_grad():  # gradients (tuning) go through PyTorch
        assert encoder(waveform[:1, :16000]).hidden[6].requires_grad

    def no_torch(*args, **kwargs):
        raise AssertionError("the PyTorch network ran although ONNX Runtime is active")

    monkeypatch.setattr(encoder.net, "forward", no_torch)
    with torch.inference_mode():
        encoder(waveform[:1, :16000])


def test_changed_weights_fall_back_to_torch(tmp_path: Path):
    encoder = load_encoder("random:crepe-tiny")
    assert encoder.use_onnx_runtime(cache_dir=tmp_path) is None
    with torch.no_grad():
        encoder.net.classifier.bias.add_(1.0)
    assert encoder.runtime == "torch"
    reference = load_encoder("random:crepe-tiny")  # same seed, same change, never given a session
    with torch.no_grad():
        reference.net.classifier.bias.add_(1.0)
    waveform = _waveforms()[0][:1, :8000]
    with torch.inference_mode():
        out = encoder(waveform, layers=[6]).hidden[6]
        want = reference(waveform, layers=[6]).hidden[6]
    assert out.shape == (1, 51, 360)
    torch.testing.assert_close(out, want, atol=0, rtol=0)  # PyTorch ran, with the new weights
