"""Hugging Face family on tiny random configs built in code: nothing downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mirkit.encoders import load_encoder, mert
from mirkit.encoders.hf import init_random_checkpoint
from mirkit.errors import CheckpointError, ConfigError, WeightsNotFoundError
from tests.unit.test_encoders import assert_padded_equals_single

# key/size list of the published MERT-v1-95M checkpoint (copied from ../shared/fixtures so the tests stand alone)
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mert-v1-95m-state-dict.json"
_CONV = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=[16] * 7,
             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
TINY = {
    "mert-v1-95m": _CONV,
    "mert-v1-330m": _CONV,
    "hubert-base": _CONV,
    "wav2vec2-base": {**_CONV, "codevector_dim": 16, "proj_codevector_dim": 16},
    "wavlm-base-plus": _CONV,
    "data2vec-audio-base": {**_CONV, "conv_pos_kernel_size": 5, "num_conv_pos_embedding_layers": 1},
    "whisper-base": dict(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                         decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64),
    "ast": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "clap-htsat": dict(depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1], patch_embeds_hidden_size=16,
                       hidden_size=128, projection_dim=32),
    "encodec-24khz": dict(num_filters=4, hidden_size=16, num_residual_layers=1),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {name: init_random_checkpoint(name, out_dir=root / name, config_overrides=over) for name, over in TINY.items()}


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_checkpoint_loads_and_matches_its_spec(checkpoints, name):
    encoder = load_encoder(name, weights_dir=checkpoints[name])
    assert encoder.weights_revision.startswith("sha256:")
    rate = encoder.spec.sample_rate
    with torch.inference_mode():
        out = encoder(torch.randn(1, int(rate * 1.5)) * 0.1)
    assert sorted(out.hidden) == list(range(encoder.spec.num_layers))
    for layer, hidden in out.hidden.items():
        assert hidden.shape[-1] == encoder.spec.layers[layer].dim
        assert torch.isfinite(hidden).all()
        n = int(out.lengths[layer][0])
        assert 1 <= n <= hidden.shape[1]
        if encoder.spec.layers[layer].frame_rate_hz >= 10:  # time-resolved layers follow the declared rate
            assert abs(n - 1.5 * encoder.spec.layers[layer].frame_rate_hz) <= 2


@pytest.mark.parametrize("name", ["whisper-base", "ast", "clap-htsat"])
def test_spectrogram_models_batch_items_independently(checkpoints, name):
    assert_padded_equals_single(load_encoder(name, weights_dir=checkpoints[name]), seconds=(2.0, 1.3), atol=1e-4)


def test_mert_published_layout_matches_the_fixture_exactly():
    import transformers

    assert FIXTURE.is_file(), f"fixture missing at {FIXTURE}"
    want = {entry["key"]: entry["numel"] for entry in json.loads(FIXTURE.read_text())["keys"]}
    with torch.device("meta"):
        model = transformers.HubertModel(mert.hubert_config_from_mert(mert.mert_config_dict("mert-v1-95m")))
    mert.remove_weight_norm(model)
    got = {key: tensor.numel() for key, tensor in model.state_dict().items()}
    assert got == want


def _g_v(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return weight.norm(dim=(0, 1), keepdim=True), weight * 3.0  # v's scale must not matter


def test_mert_loads_all_three_pos_conv_layouts_identically(checkpoints, tmp_path):
    from safetensors.torch import load_file, save_file

    source = checkpoints["mert-v1-95m"]
    folded = load_file(str(source / "model.safetensors"))
    key = f"{mert.POS_CONV}.weight"
    g, v = _g_v(folded[key])
    variants = {
        "weight_g_v": {**{k: t for k, t in folded.items() if k != key}, f"{mert.POS_CONV}.weight_g": g,
                       f"{mert.POS_CONV}.weight_v": v},
        "parametrizations": {**{k: t for k, t in folded.items() if k != key},
                             f"{mert.POS_CONV}.parametrizations.weight.original0": g,
                             f"{mert.POS_CONV}.parametrizations.weight.original1": v},
    }
    x = torch.randn(1, 24000) * 0.1
    with torch.inference_mode():
        reference = load_encoder("mert-v1-95m", weights_dir=source)(x).hidden
    for label, state in variants.items():
        folder = tmp_path / label
        folder.mkdir()
        for name in ("config.json", "preprocessor_config.json"):
            (folder / name).write_text((source / name).read_text())
        if label == "weight_g_v":  # the original MERT file is a pickled state dict
            torch.save({f"hubert.{k}": t for k, t in state.items()}, folder / "pytorch_model.bin")
        else:
            save_file({k: t.contiguous() for k, t in state.items()}, str(folder / "model.safetensors"))
        with torch.inference_mode():
            hidden = load_encoder("mert-v1-95m", weights_dir=folder)(x).hidden
        for layer in reference:
            torch.testing.assert_close(hidden[layer], reference[layer], atol=1e-5, rtol=1e-4)


def test_mert_layout_comparison_detects_a_changed_weight(checkpoints, tmp_path):
    from safetensors.torch import load_file, save_file

    source = checkpoints["mert-v1-95m"]
    state = load_file(str(source / "model.safetensors"))
    weight = state["encoder.layers.0.attention.q_proj.weight"]  # (a constant shift would vanish after LayerNorm)
    state["encoder.layers.0.attention.q_proj.weight"] = weight + torch.randn(weight.shape, generator=torch.Generator().manual_seed(0))
    folder = tmp_path / "changed"
    folder.mkdir()
    (folder / "config.json").write_text((source / "config.json").read_text())
    save_file(state, str(folder / "model.safetensors"))
    x = torch.randn(1, 24000) * 0.1
    with torch.inference_mode():
        a = load_encoder("mert-v1-95m", weights_dir=source)(x).hidden[2]
        b = load_encoder("mert-v1-95m", weights_dir=folder)(x).hidden[2]
    assert not torch.allclose(a, b, atol=1e-3)


def test_mert_rejects_wrong_keys_and_remote_code_options(checkpoints, tmp_path):
    from safetensors.torch import load_file, save_file

    source = checkpoints["mert-v1-95m"]
    state = load_file(str(source / "model.safetensors"))
    state.pop("encoder.layer_norm.weight")
    state["extra.weight"] = torch.zeros(1)
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_text((source / "config.json").read_text())
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing \['encoder.layer_norm.weight'\].*unexpected \['extra.weight'\]"):
        load_encoder("mert-v1-95m", weights_dir=folder)
    config = json.loads((source / "config.json").read_text())
    with pytest.raises(ConfigError, match="deepnorm=true"):
        mert.hubert_config_from_mert({**config, "deepnorm": True})
    with pytest.raises(ConfigError, match="feature_extractor_cqt=true"):
        mert.hubert_config_from_mert({**config, "feature_extractor_cqt": True})


def test_random_twin_has_the_published_shape_without_weights():
    twin = load_encoder("random:hubert-base")
    assert twin.weights_revision == "random-seed0" and twin.spec.num_layers == 13
    assert sum(p.numel() for p in twin.parameters()) > 90e6


def test_missing_hub_weights_say_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(WeightsNotFoundError, match=r"random:mert-v1-95m.*encoders init mert-v1-95m --random"):
        load_encoder("mert-v1-95m")
    with pytest.raises(WeightsNotFoundError, match="has no config.json"):
        load_encoder("mert-v1-95m", weights_dir=tmp_path)


def test_init_refuses_non_hf_encoders(tmp_path):
    with pytest.raises(ConfigError, match="writes Hugging Face family checkpoints"):
        init_random_checkpoint("musicnn-mtt", out_dir=tmp_path)



@pytest.mark.parametrize("name", ["mert-v1-95m", "hubert-base", "wav2vec2-base", "whisper-base"])
def test_training_mode_keeps_every_layer_and_masks_nothing(checkpoints, name):
    """LayerDrop (on by default in these configs) would drop blocks in train mode, as fine-tuning uses;
    SpecAugment masking would give fine-tuning alone an input augmentation."""
    encoder = load_encoder(name, weights_dir=str(checkpoints[name]))
    encoder.train()
    x = torch.randn(2, encoder.spec.sample_rate) * 0.1
    torch.manual_seed(0)
    for _ in range(25):
        assert sorted(encoder(x).hidden) == list(range(len(encoder.spec.layers)))
    config = encoder.model.config
    assert getattr(config, "layerdrop", 0.0) == getattr(config, "encoder_layerdrop", 0.0) == 0.0
    assert not getattr(config, "apply_spec_augment", False)


def test_building_an_encoder_leaves_global_state_alone():
    """Random twins draw the same weights every build without reseeding torch's global RNG, and
    loading does not change transformers' logging level."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_warning()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = load_encoder("random:hubert-base")
    assert torch.equal(torch.get_rng_state(), before)
    assert hf_logging.get_verbosity() == hf_logging.WARNING
    second = load_encoder("random:hubert-base")
    a, b = first.state_dict(), second.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_another_shape_gets_its_own_spec_and_the_zoo_is_untouched(checkpoints):
    from mirkit.encoders.zoo import get_spec

    published = get_spec("hubert-base")
    encoder = load_encoder("hubert-base", weights_dir=checkpoints["hubert-base"])
    assert encoder.spec.num_layers == 3 and encoder.spec.layers[-1].dim == 32
    assert get_spec("hubert-base") == published and published.num_layers == 13
