"""Hugging Face family encoders, loaded from the hub cache or a local directory, never with
``trust_remote_code``.

Kinds: self-supervised wav2vec2-style models (HuBERT, wav2vec 2.0, WavLM, data2vec-audio and
MERT through :mod:`mirkit.encoders.mert`): raw waveform in, ``hidden_states`` out (layer 0 =
feature projection); Whisper (encoder on 30 s log-mel); AST (patch tokens averaged over
frequency -> 10 Hz frames); CLAP HTSAT audio tower (one vector per window and stage); EnCodec
(encoder latents before quantisation, 75 Hz).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mirkit.encoders import mert
from mirkit.encoders.base import Encoder, file_digest, frames_to_lengths, seeded
from mirkit.encoders.spec import EncoderSpec, HFArch, LayerSpec, hub_cache_dir
from mirkit.errors import ConfigError, WeightsNotFoundError


@contextlib.contextmanager
def quiet_transformers():
    """transformers at error level and without progress bars while loading, restored afterwards
    (so mirkit leaves the library's global logging settings as it found them)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _transformers(name: str):
    import transformers

    return getattr(transformers, name)


def _arch(spec: EncoderSpec) -> HFArch:
    if spec.hf is None:
        raise ConfigError(f"encoder {spec.name!r} is not a Hugging Face family encoder (family {spec.family!r}).")
    return spec.hf


def normalize_waveforms(waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit variance per item over its valid samples, padding kept at zero
    (Wav2Vec2FeatureExtractor's ``do_normalize``)."""
    mask = torch.arange(waveform.shape[1], device=waveform.device)[None] < lengths[:, None]
    x = waveform.float()
    n = lengths.clamp(min=1)[:, None].float()
    mean = (x * mask).sum(1, keepdim=True) / n
    var = (((x - mean) * mask) ** 2).sum(1, keepdim=True) / n
    return (x - mean) / torch.sqrt(var + 1e-7) * mask


# --- encoders -----------------------------------------------------------------------------------
class SSLEncoder(Encoder):
    """wav2vec2-style models: waveform -> conv features -> transformer; all hidden states."""

    def __init__(self, spec: EncoderSpec, model: torch.nn.Module, *, normalize: bool) -> None:
        super().__init__(spec)
        self.model = model
        self.normalize = normalize
        # models trained with attention masks (layer-norm feature extractors) take one for padding
        self.use_mask = getattr(model.config, "feat_extract_norm", "group") == "layer"

    def encode(self, waveform, lengths):
        mask = torch.arange(waveform.shape[1], device=waveform.device)[None] < lengths[:, None]
        x = normalize_waveforms(waveform, lengths) if self.normalize else waveform.float()
        out = self.model(x, attention_mask=mask.long() if self.use_mask else None, output_hidden_states=True)
        hidden = [h for h in out.hidden_states]
        frames = frames_to_lengths(self.model._get_feat_extract_output_lengths(lengths), max_frames=hidden[0].shape[1])
        return hidden, [frames] * len(hidden)


class _FeatureExtractorEncoder(Encoder):
    """Models whose input is a spectrogram made by a transformers feature extractor (numpy)."""

    def __init__(self, spec: EncoderSpec, model: torch.nn.Module, feature_extractor) -> None:
        super().__init__(spec)
        self.model = model
        self.feature_extractor = feature_extractor

    def _inputs(self, waveform, lengths, key: str) -> torch.Tensor:
        audio = waveform.detach().float().cpu().numpy()
        items = [audio[i, : int(n)] for i, n in enumerate(lengths.tolist())]
        features = self.feature_extractor(items, sampling_rate=self.spec.sample_rate, return_tensors="pt")
        return features[key].to(waveform.device)


class WhisperEncoder(_FeatureExtractorEncoder):
    """Whisper's encoder on one 30 s log-mel window (the model's fixed input)."""

    def encode(self, waveform, lengths):
        features = self._inputs(waveform, lengths, "input_features")
        out = self.model(features.to(next(self.model.parameters()).dtype), output_hidden_states=True)
        hidden = list(out.hidden_states)
        frames = frames_to_lengths(torch.ceil(lengths / 320), max_frames=hidden[0].shape[1])  # hop 160, conv stride 2
        return hidden, [frames] * len(hidden)


class ASTEncoder(_FeatureExtractorEncoder):
    """AST: drop the 2 special tokens, average the patch grid over frequency -> (batch, time, dim)."""

    def encode(self, waveform, lengths):
        features = self._inputs(waveform, lengths, "input_values")
        out = self.model(features, output_hidden_states=True)
        f_dim, t_dim = self.model.embeddings.get_shape(self.model.config)
        hidden = [h[:, 2:].reshape(h.shape[0], f_dim, t_dim, -1).mean(dim=1) for h in out.hidden_states]
        stride_frames = self.model.config.time_stride  # 10 ms fbank frames per token step
        frames = frames_to_lengths(torch.ceil(lengths / 160 / stride_frames), max_frames=t_dim)
        return hidden, [frames.clamp(min=1)] * len(hidden)


class ClapEncoder(_FeatureExtractorEncoder):
    """CLAP HTSAT audio tower: every stage averaged over its token grid, plus the projected embedding."""

    def encode(self, waveform, lengths):
        features = self._inputs(waveform, lengths, "input_features")
        out = self.model.audio_model(input_features=features, output_hidden_states=True)
        stages = [h.mean(dim=(2, 3))[:, None] for h in out.hidden_states]  # (B, C, H, W) -> (B, 1, C)
        embed = self.model.audio_projection(out.pooler_output)[:, None]
        ones = torch.ones(len(lengths), dtype=torch.long, device=waveform.device)
        return stages + [embed], [ones] * (len(stages) + 1)


class EncodecEncoder(Encoder):
    """EnCodec's SEANet encoder output (continuous latents, before residual vector quantisation)."""

    def __init__(self, spec: EncoderSpec, model: torch.nn.Module) -> None:
        super().__init__(spec)
        self.model = model

    def encode(self, waveform, lengths):
        latents = self.model.encoder(waveform.float()[:, None]).transpose(1, 2)
        hop = int(np.prod(self.model.config.upsampling_ratios))
        frames = frames_to_lengths(torch.ceil(lengths / hop), max_frames=latents.shape[1])
        return [latents], [frames]


# --- loading ------------------------------------------------------------------------------------
def _resolve_dir(spec: EncoderSpec, weights_dir: str | None) -> Path:
    if not weights_dir and spec.weights_kind == "folder":  # an encoder folder written by `mirkit pretrain`
        weights_dir = spec.weights_ref
    if weights_dir:
        path = Path(weights_dir)
        if not (path / "config.json").is_file():
            raise WeightsNotFoundError(f"--weights {weights_dir!r} has no config.json; expected a Hugging Face checkpoint "
                                       f"folder for {spec.name!r} (config.json + model.safetensors).")
        return path
    cached = hub_cache_dir(spec.weights_ref)
    if cached is not None:
        return cached
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec.weights_ref, allow_patterns=["*.json", "*.safetensors", "pytorch_model.bin"]))
    except Exception as exc:
        raise WeightsNotFoundError(
            f"encoder {spec.name!r} needs the weights of {spec.weights_ref!r} from the Hugging Face hub, which are not in "
            f"the local cache and could not be downloaded ({type(exc).__name__}). Download them where you have internet "
            f"(`huggingface-cli download {spec.weights_ref}`) and pass --weights DIR, or try the pipeline with "
            f"random:{spec.name} / `mirkit encoders init {spec.name} --random --out DIR`."
        ) from None


def _weight_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file())


def _feature_extractor(arch: HFArch, directory: Path | None):
    classes = {"whisper": "WhisperFeatureExtractor", "ast": "ASTFeatureExtractor", "clap": "ClapFeatureExtractor"}
    if arch.kind not in classes:
        return None
    cls = _transformers(classes[arch.kind])
    with quiet_transformers():
        if directory is not None and (directory / "preprocessor_config.json").is_file():
            extractor = cls.from_pretrained(str(directory))
        else:
            extractor = cls(feature_size=80) if arch.kind == "whisper" else cls()
    if arch.kind == "clap":  # deterministic: windows never exceed 10 s, so no random crop happens
        extractor.truncation = "rand_trunc"
    return extractor


def _config(spec: EncoderSpec, directory: Path | None, overrides: dict[str, object] | None = None):
    """The model config: the published shape of ``spec`` (plus overrides), or the one in ``directory``."""
    arch = _arch(spec)
    if arch.kind == "mert":
        raw = mert.read_config(directory) if directory is not None else mert.mert_config_dict(spec, overrides)
        return mert.hubert_config_from_mert(raw, source=str(directory / "config.json") if directory else spec.name)
    config_cls = _transformers(arch.config_class)
    if directory is not None:
        return config_cls.from_pretrained(str(directory))
    return config_cls(**{**arch.config_dict(), **(overrides or {})})


def _build_model(spec: EncoderSpec, directory: Path | None, *, load_weights: bool):
    """The transformers model; random weights (from the current torch seed) unless ``load_weights``."""
    arch = _arch(spec)
    model_cls = _transformers(arch.model_class)
    with quiet_transformers():
        if load_weights and arch.kind != "mert":
            return model_cls.from_pretrained(str(directory))
        model = model_cls(_config(spec, directory))
    if arch.kind == "mert":
        mert.remove_weight_norm(model)
        if load_weights:
            mert.load_mert_state(model, mert.read_state_dict(directory), source=str(directory))
    return model


_WRAPPERS = {"mert": "ssl", "ssl": "ssl", "whisper": "whisper", "ast": "ast", "clap": "clap", "encodec": "encodec"}


def build(spec: EncoderSpec, *, weights_dir: str | None = None) -> Encoder:
    """Build a registered HF encoder (random twin when ``spec.is_random``)."""
    arch = _arch(spec)
    if spec.is_random and not weights_dir:
        # a twin of an encoder folder takes that folder's shape; a twin of a hub encoder the published one
        local = Path(spec.weights_ref) if spec.weights_ref else None
        directory = local if local is not None and (local / "config.json").is_file() else None
    else:
        directory = _resolve_dir(spec, weights_dir)
    if spec.is_random:  # the published shape (or the given checkpoint's), seeded random weights
        with seeded(0):
            model = _build_model(spec, directory, load_weights=False)
        revision = "random-seed0"
    else:
        model = _build_model(spec, directory, load_weights=True)
        revision = "sha256:" + file_digest(_weight_files(directory))
    _fixed_depth(model)
    model.eval()
    spec = spec_for_config(spec, model.config)
    normalize = arch.normalize
    if directory is not None and (directory / "preprocessor_config.json").is_file():
        normalize = bool(mert.read_config_file(directory / "preprocessor_config.json").get("do_normalize", normalize))
    kind = _WRAPPERS[arch.kind]
    if kind == "ssl":
        encoder: Encoder = SSLEncoder(spec, model, normalize=normalize)
    elif kind == "whisper":
        encoder = WhisperEncoder(spec, model.encoder, _feature_extractor(arch, directory))
    elif kind == "ast":
        encoder = ASTEncoder(spec, model, _feature_extractor(arch, directory))
    elif kind == "clap":
        encoder = ClapEncoder(spec, model, _feature_extractor(arch, directory))
    else:
        encoder = EncodecEncoder(spec, model)
    encoder.weights_revision = revision
    return encoder


def _fixed_depth(model: torch.nn.Module) -> None:
    """Turn off LayerDrop and SpecAugment masking, which act only in training mode.

    LayerDrop skips whole blocks at random, so a fine-tuned encoder would return fewer layers than
    its spec; masking would give full fine-tuning an input augmentation that the other methods (whose
    encoder stays in eval mode) never see. Inference is unchanged.
    """
    for config in {id(m.config): m.config for m in model.modules() if hasattr(m, "config")}.values():
        for key in ("layerdrop", "encoder_layerdrop", "mask_time_prob", "mask_feature_prob"):
            if isinstance(getattr(config, key, None), float):
                setattr(config, key, 0.0)
        if hasattr(config, "apply_spec_augment"):
            config.apply_spec_augment = False
    for module in model.modules():
        if isinstance(getattr(module, "layerdrop", None), float):
            module.layerdrop = 0.0


def spec_for_config(spec: EncoderSpec, config) -> EncoderSpec:
    """The spec of a checkpoint with this model config: the published one, or for another depth or
    width (e.g. a tiny test config) the same facts with its own layer list. Built before the encoder,
    so an encoder's spec never changes after construction."""
    if spec.family == "hf-clap":
        audio = config.audio_config if hasattr(config, "audio_config") else config
        dims = [audio.patch_embeds_hidden_size * 2 ** i for i in range(len(audio.depths))]
        dims = dims + [dims[-1], audio.projection_dim]
        return spec.with_layers(tuple(replace(layer, dim=d) for layer, d in zip(spec.layers, dims)))
    if spec.family == "hf-encodec":
        return spec.with_layers((replace(spec.layers[0], dim=config.hidden_size),))
    depth = config.encoder_layers if spec.family == "hf-whisper" else config.num_hidden_layers
    width = config.d_model if spec.family == "hf-whisper" else config.hidden_size
    if (depth + 1, width) == (spec.num_layers, spec.layers[-1].dim):
        return spec
    rate = spec.layers[0].frame_rate_hz
    return spec.with_layers((LayerSpec("projection", width, rate),)
                            + tuple(LayerSpec(f"layer{i}", width, rate) for i in range(1, depth + 1)))


def init_random_checkpoint(name: str, *, out_dir: str | Path, seed: int = 0,
                           config_overrides: dict[str, object] | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (+ ``preprocessor_config.json``) with random weights,
    in the layout the published checkpoint of ``name`` uses."""
    from safetensors.torch import save_file

    from mirkit.encoders.zoo import get_spec, list_specs

    spec = get_spec(name)
    if spec.hf is None:
        raise ConfigError(f"`encoders init` writes Hugging Face family checkpoints; {name!r} is not one of "
                          f"{sorted(s.name for s in list_specs() if s.hf is not None)}.")
    arch = spec.hf
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if arch.kind == "mert":
        config = mert.mert_config_dict(spec, config_overrides)
        with seeded(seed), quiet_transformers():
            model = _transformers("HubertModel")(mert.hubert_config_from_mert(config))
        mert.remove_weight_norm(model)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        mert.write_json(out / "config.json", config)
        mert.write_json(out / "preprocessor_config.json", {
            "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": spec.sample_rate,
            "padding_value": 0.0, "do_normalize": True, "return_attention_mask": True})
        return out
    with seeded(seed), quiet_transformers():
        model = _transformers(arch.model_class)(_config(spec, None, config_overrides))
    with quiet_transformers():
        model.save_pretrained(str(out), safe_serialization=True)
    extractor = _feature_extractor(arch, None)
    if extractor is not None:
        extractor.save_pretrained(str(out))
    return out
