"""musicnn through ONNX Runtime: falls back to PyTorch when weights change, recorded in the recipe (see also test_onnx_nets.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mirkit.encoders import load_encoder
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from tests.conftest import requires_package

pytest.importorskip("onnxruntime", reason="onnxruntime is a mirkit dependency; install it with `pip install onnxruntime`")
pytestmark = requires_package("musicnn")


def _waveforms() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([16000 * 30, 16000 * 25])  # 10 + 8 patches: more than one ONNX chunk
    return 0.1 * torch.randn(2, int(lengths.max()), generator=generator), lengths


def test_changed_weights_fall_back_to_torch(tmp_path: Path):
    encoder = load_encoder("random:musicnn-mtt")
    assert encoder.use_onnx_runtime(cache_dir=tmp_path) is None
    with torch.no_grad():
        encoder.net.logits.bias.add_(1.0)
    assert encoder.runtime == "torch"
    waveform = _waveforms()[0][:1, :48000]
    fresh = load_encoder("random:musicnn-mtt")
    assert fresh.use_onnx_runtime(cache_dir=tmp_path) is None
    fresh.train()
    fresh(_waveforms()[0][:1, :16000 * 6])  # a training-mode pass (2 patches) updates the batch-norm statistics in place
    assert fresh.runtime == "torch"
    with torch.inference_mode():
        out = encoder(waveform, layers=[7]).hidden[7]
        reference = encoder.net(encoder.log_mel(waveform)[:, :187])[7]
    torch.testing.assert_close(out[0], reference, atol=0, rtol=0)


def test_extract_records_the_runtime_in_the_recipe(tmp_path: Path):
    folder = tmp_path / "audio"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        sf.write(folder / f"{i}.wav", (0.1 * rng.standard_normal(22050 * 7)).astype(np.float32), 22050)
    store = FeatureStore(tmp_path / "store")
    runs = {}
    for runtime in ("torch", "auto"):
        config = ExtractConfig(encoder="random:musicnn-mtt", layers="5,6", num_workers=0, runtime=runtime)
        report = extract(folder, store=store, config=config, progress=False)
        assert report.computed == 2, report.summary()
        runs[runtime] = report
    assert runs["torch"].recipe.runtime is None and runs["auto"].recipe.runtime == "onnxruntime"
    assert runs["torch"].recipe_id != runs["auto"].recipe_id  # cached PyTorch features are not mixed in
    for path, item in runs["torch"].item_ids.items():
        want = store.recipe(runs["torch"].recipe).read(item)[0]
        have = store.recipe(runs["auto"].recipe).read(runs["auto"].item_ids[path])[0]
        for key in ("pooled_5", "pooled_6"):
            np.testing.assert_allclose(have[key], want[key], atol=1e-4 * (1 + np.abs(want[key]).max()))
    with pytest.raises(ConfigError, match="ONNX Runtime cannot run encoder 'logmel'"):
        extract(folder, store=store, config=ExtractConfig(encoder="logmel", num_workers=0, runtime="onnxruntime"),
                progress=False)
    logmel = extract(folder, store=store, config=ExtractConfig(encoder="logmel", num_workers=0), progress=False)
    assert logmel.recipe.runtime is None and "runtime" not in logmel.recipe.to_dict()  # ids of old stores hold
    with pytest.raises(ConfigError, match="runtime='fast'"):
        ExtractConfig(encoder="logmel", runtime="fast").validate()
