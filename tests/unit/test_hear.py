"""The HEAR API over registered encoders."""

from __future__ import annotations

import pytest
import torch

from mirkit import hear
from mirkit.errors import ConfigError
from tests.conftest import requires_package


def test_hear_api_shapes_and_scene_is_mean_of_timestamps():
    model = hear.load_model("tiny-test")
    assert model.sample_rate == 8000 and model.scene_embedding_size == 16 + 16 + 8
    audio = torch.randn(3, 8000 * 2) * 0.1
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    assert emb.shape == (3, 250, 40) and ts.shape == (3, 250)
    assert torch.all(ts[:, 1:] > ts[:, :-1]) and abs(float(ts[0, 1] - ts[0, 0]) - 8.0) < 1e-4
    scene = hear.get_scene_embeddings(audio, model)
    torch.testing.assert_close(scene, emb.mean(dim=1))


@requires_package("musicnn")
def test_hear_mixes_frame_and_patch_layers():
    model = hear.load_model("musicnn-mtt")
    emb, ts = hear.get_timestamp_embeddings(torch.randn(1, 16000 * 6) * 0.1, model)
    assert emb.shape == (1, 374, model.timestamp_embedding_size)
    # patch-level layer 7 is constant within each 3 s patch and changes between them
    tags = emb[0, :, -50:]
    assert torch.allclose(tags[0], tags[186]) and not torch.allclose(tags[186], tags[187])
    one = hear.load_model("musicnn-mtt", layer=6)
    assert hear.get_scene_embeddings(torch.randn(2, 16000 * 3) * 0.1, one).shape == (2, 200)


def test_hear_errors():
    with pytest.raises(ConfigError, match="needs an encoder name"):
        hear.load_model()
    with pytest.raises(ConfigError, match="layer=9 does not exist"):
        hear.load_model("tiny-test", layer=9)
    with pytest.raises(ConfigError, match=r"\(n_sounds, n_samples\)"):
        hear.get_scene_embeddings(torch.zeros(8000), hear.load_model("tiny-test"))
