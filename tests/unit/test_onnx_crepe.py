"""CREPE through ONNX Runtime: changed weights fall back to PyTorch (see also test_onnx_nets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mirkit.encoders import load_encoder

pytest.importorskip("onnxruntime", reason="onnxruntime is a mirkit dependency; install it with `pip install onnxruntime`")


def test_changed_weights_fall_back_to_torch(tmp_path: Path):
    encoder = load_encoder("random:crepe-tiny")
    assert encoder.use_onnx_runtime(cache_dir=tmp_path) is None
    with torch.no_grad():
        encoder.net.classifier.bias.add_(1.0)
    assert encoder.runtime == "torch"
    reference = load_encoder("random:crepe-tiny")  # same seed, same change, never given a session
    with torch.no_grad():
        reference.net.classifier.bias.add_(1.0)
    waveform = 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        out = encoder(waveform, layers=[6]).hidden[6]
        want = reference(waveform, layers=[6]).hidden[6]
    assert out.shape == (1, 51, 360)
    torch.testing.assert_close(out, want, atol=0, rtol=0)  # PyTorch ran, with the new weights
