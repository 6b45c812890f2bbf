"""What ``mirkit pretrain`` trains (``--arch``): one interface over two backbones.

- :class:`MelBackbone` (``--arch mel``): mirkit's mel transformer; its own standardised log-mel
  tokens are the BEST-RQ / k-means input, its statistics are fitted on the corpus.
- :class:`MertBackbone` (``--arch mert``): transformers' ``HubertModel`` in MERT's published layout
  (waveform convolution front-end at 75 Hz for 24 kHz input; presets ``tiny``, ``small`` and
  ``95m`` = MERT-v1-95M), masked through its own ``masked_spec_embed``; the targets read a separate
  log-mel at the same 75 Hz frame rate. ``--init mert-v1-95m --weights DIR`` continues from a
  published checkpoint. The result is saved with ``save_pretrained`` (the positional convolution
  keeps its weight-norm parametrisation), so it loads in plain ``HubertModel.from_pretrained`` with
  no missing or unexpected keys, and in mirkit as an encoder folder.

Each backbone gives: ``sample_rate``, ``token_hop`` (samples per token, for the CQT teacher),
``dim``, ``frames`` (the object whose ``tokens``/``log_mel`` feed the quantizers), ``encode_masked``
and ``save``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from mirkit.encoders.hf import normalize_waveforms
from mirkit.encoders.mel_config import (
    FORMAT_VERSION,
    MEL_PRESETS,
    SPEC_FILE,
    MelTransformerConfig,
    mel_spec,
)
from mirkit.encoders.mel_transformer import LogMelFrontend, MelTransformer, save_encoder_folder
from mirkit.errors import ConfigError

#: ``--arch mert`` shapes: overrides of MERT-v1-95M's published config (``95m`` is that config).
MERT_PRESETS: dict[str, dict[str, object]] = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=[16] * 7,
                 num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                  conv_dim=[128] * 7, num_conv_pos_embeddings=64, num_conv_pos_embedding_groups=16),
    "95m": {},
}
#: the log-mel that MERT backbones' targets read: 24 kHz, hop 320 (75 Hz, the conv front-end's rate)
MERT_FRAMES = MelTransformerConfig(sample_rate=24000, n_fft=1024, hop=320, n_mels=80, stack=1)


#: the dropout probabilities of a HubertModel config that ``--dropout`` sets
MERT_DROPOUTS = ("hidden_dropout", "attention_dropout", "activation_dropout", "feat_proj_dropout")


class MelBackbone(nn.Module):
    def __init__(self, preset: str, *, dropout: float | None = None) -> None:
        super().__init__()
        if preset not in MEL_PRESETS:
            raise ConfigError(f"--arch mel has presets {', '.join(MEL_PRESETS)}, not {preset!r}.")
        arch = MEL_PRESETS[preset] if dropout is None else replace(MEL_PRESETS[preset], dropout=dropout)
        self.encoder = MelTransformer(mel_spec("mirkit-pretrain", arch, source="", licence="", description=""), arch)
        self.sample_rate, self.token_hop, self.dim = arch.sample_rate, arch.hop * arch.stack, arch.dim

    @property
    def frames(self) -> MelTransformer:
        """The encoder itself: its own tokens feed the quantizers, its statistics are its input's."""
        return self.encoder

    def encode_masked(self, waves, lengths, mask):
        return self.encoder.encode_masked(waves, lengths, mask)

    def save(self, folder: Path, *, name: str, source: str, licence: str, description: str, extra: dict) -> Path:
        return save_encoder_folder(self.encoder, folder, name=name, source=source, licence=licence,
                                   description=description, extra=extra)


class MertBackbone(nn.Module):
    def __init__(self, preset: str, *, init: str | None = None, weights: str | None = None,
                 dropout: float | None = None) -> None:
        from transformers import HubertModel

        from mirkit.encoders import mert
        from mirkit.encoders.hf import quiet_transformers

        super().__init__()
        if init is not None:
            if not init.startswith("mert-") or not weights:
                raise ConfigError(f"--init {init!r}: continued pretraining starts from a published MERT checkpoint; "
                                  "pass --init mert-v1-95m (or mert-v1-330m) and --weights DIR with its files.")
            raw = mert.read_config(Path(weights))
        elif preset in MERT_PRESETS:
            raw = mert.mert_config_dict("mert-v1-95m", MERT_PRESETS[preset])
        else:
            raise ConfigError(f"--arch mert has presets {', '.join(MERT_PRESETS)}, not {preset!r}.")
        overrides = dict.fromkeys(MERT_DROPOUTS, dropout) if dropout is not None else {}
        config = mert.hubert_config_from_mert({**raw, "layerdrop": 0.0, "mask_time_prob": 0.05, **overrides})
        with quiet_transformers():
            self.model = HubertModel(config)
        self.model.config.mask_time_prob = 0.0  # masks come from mirkit's span masking, never at random
        if init is not None:
            state = mert.read_state_dict(Path(weights))
            self.model.load_state_dict(mert.weight_norm_state(state, self.model), strict=True)
        self.sample_rate = int(raw.get("sample_rate", 24000))
        self.token_hop = int(torch.prod(torch.tensor(config.conv_stride)))
        if (self.sample_rate, self.token_hop) != (MERT_FRAMES.sample_rate, MERT_FRAMES.hop):
            raise ConfigError(f"MERT backbones here run at 24 kHz with a 320-sample stride; this config has "
                              f"{self.sample_rate} Hz and {self.token_hop}.")
        self.dim = config.hidden_size
        self.frames = LogMelFrontend(MERT_FRAMES)

    def encode_masked(self, waves, lengths, mask):
        """All hidden states and the valid frames; ``mask`` covers the target frames (it is cut or padded
        to the conv front-end's frame count)."""
        valid = self.model._get_feat_extract_output_lengths(lengths).long()
        frames = int(self.model._get_feat_extract_output_lengths(torch.tensor(waves.shape[1])))
        full = torch.zeros(waves.shape[0], frames, dtype=torch.bool, device=waves.device)
        if mask is not None:
            count = min(frames, mask.shape[1])
            full[:, :count] = mask[:, :count]
        keep = torch.arange(waves.shape[1], device=waves.device)[None] < lengths[:, None]
        x = normalize_waveforms(waves, lengths)  # what MERT's feature extractor does (as mirkit's loader)
        attention = keep.long() if getattr(self.model.config, "feat_extract_norm", "group") == "layer" else None
        out = self.model(x, attention_mask=attention, mask_time_indices=full if mask is not None else None,
                         output_hidden_states=True)
        return list(out.hidden_states), valid.clamp(max=frames)

    def save(self, folder: Path, *, name: str, source: str, licence: str, description: str, extra: dict) -> Path:
        from mirkit.encoders.hf import quiet_transformers
        from mirkit.files import atomic_write_json

        folder.mkdir(parents=True, exist_ok=True)
        # the published config value (HubertModel creates masked_spec_embed only when it is > 0), so that the
        # saved config and weights load together; mirkit's loaders switch random masking off again
        self.model.config.mask_time_prob = 0.05
        try:
            with quiet_transformers():
                self.model.save_pretrained(str(folder), safe_serialization=True)
        finally:
            self.model.config.mask_time_prob = 0.0
        atomic_write_json(folder / "preprocessor_config.json", {
            "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, "sampling_rate": self.sample_rate,
            "padding_value": 0.0, "do_normalize": True, "return_attention_mask": True})
        atomic_write_json(folder / SPEC_FILE, {"format_version": FORMAT_VERSION, "family": "hf-mert", "name": name,
                                               "source": source, "licence": licence, "description": description,
                                               **extra})
        return folder


def build_backbone(arch: str, preset: str, *, init: str | None = None, weights: str | None = None,
                   dropout: float | None = None) -> nn.Module:
    """The backbone of ``--arch``; ``dropout`` replaces the preset's (or the checkpoint's) dropout."""
    if arch == "mel":
        if init is not None:
            raise ConfigError("--init continues a published MERT checkpoint; it needs --arch mert.")
        return MelBackbone(preset, dropout=dropout)
    return MertBackbone(preset, init=init, weights=weights, dropout=dropout)


__all__ = ["MERT_PRESETS", "MelBackbone", "MertBackbone", "build_backbone"]
