"""musicnn and CREPE through ONNX Runtime (``OnnxNetMixin``): the same layers as PyTorch for CPU
inference, a different engine really running, and PyTorch kept for gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mirkit.encoders import load_encoder
from tests.conftest import requires_package

pytest.importorskip("onnxruntime", reason="onnxruntime is a mirkit dependency; install it with `pip install onnxruntime`")

# (encoder, lengths in samples at 16 kHz: more than one ONNX chunk, a layer whose values must differ in the last bits)
CASES = [
    pytest.param("random:musicnn-mtt", (16000 * 30, 16000 * 25), 6, marks=requires_package("musicnn"), id="musicnn"),
    pytest.param("random:crepe-tiny", (16000 * 4, 16000 * 3), 6, id="crepe"),  # 401 + 301 frames, chunks of 256
]


@pytest.mark.parametrize(("name", "sizes", "layer"), CASES)
def test_onnx_layers_match_torch_and_torch_stays_for_training(name: str, sizes: tuple[int, int], layer: int,
                                                              tmp_path: Path, monkeypatch):
    encoder = load_encoder(name)
    lengths = torch.tensor(sizes)
    waveform = 0.1 * torch.randn(2, int(lengths.max()), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = encoder(waveform, lengths)
    assert encoder.runtime == "torch"
    assert encoder.use_onnx_runtime(cache_dir=tmp_path) is None and encoder.runtime == "onnxruntime"
    assert len(list(tmp_path.glob("*.onnx"))) == 1
    with torch.inference_mode():
        got = encoder(waveform, lengths)
    for index, hidden in expected.hidden.items():
        assert torch.equal(got.lengths[index], expected.lengths[index])
        scale = 1.0 + float(hidden.abs().max())
        torch.testing.assert_close(got.hidden[index], hidden, atol=1e-4 * scale, rtol=0)
    assert not torch.equal(got.hidden[layer], expected.hidden[layer])  # a different engine really ran
    short = waveform[:1, :48000]
    with torch.enable_grad():  # gradients (tuning) go through PyTorch
        assert encoder(short).hidden[layer].requires_grad

    def no_torch(*args, **kwargs):
        raise AssertionError("the PyTorch network ran although ONNX Runtime is active")

    monkeypatch.setattr(encoder.net, "forward", no_torch)
    with torch.inference_mode():
        encoder(short)
