"""The model every method trains: encoder (as the method left it) -> layer selection -> mean over
valid frames -> standardisation -> the probe head of ``mirkit probe`` (optional learned layer weighting).
"""

from __future__ import annotations

import torch
from torch import nn

from mirkit.adapt.config import ProbeConfig
from mirkit.adapt.probe import ProbeHead
from mirkit.encoders.base import Encoder
from mirkit.encoders.spec import EncoderSpec
from mirkit.errors import ConfigError


def choose_layers(spec: EncoderSpec, layer: str) -> list[int]:
    """``auto``: a learned weighting of all layers when they share one width (transformers), else the
    deepest layer that is not an output of logits; ``weighted``: the largest equal-width group; or an index."""
    from mirkit.adapt.results import weighted_layers

    dims = {i: l.dim for i, l in enumerate(spec.layers)}
    if layer == "auto":
        if len(set(dims.values())) == 1 and len(dims) > 1:
            return list(dims)
        hidden = [i for i, l in enumerate(spec.layers) if not l.name.endswith("logits")]
        return [hidden[-1] if hidden else spec.num_layers - 1]
    if layer == "weighted":
        group = weighted_layers(dims)
        if not group:
            raise ConfigError(f"encoder {spec.name!r} has no two layers of equal width to weight; pass --layer N.")
        return group
    return [layer_index(spec, layer)]


def layer_index(spec: EncoderSpec, layer: str) -> int:
    """``--layer`` given as an index (negative counts from the end), checked against the encoder."""
    try:
        index = int(layer)
    except ValueError:
        raise ConfigError(f"--layer {layer!r} must be 'auto', 'weighted' or a layer index.") from None
    if not -spec.num_layers <= index < spec.num_layers:
        raise ConfigError(f"--layer {index}: encoder {spec.name!r} has layers 0..{spec.num_layers - 1}.")
    return index % spec.num_layers


def masked_mean(hidden: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames of ``(batch, frames, dim)`` (at least one frame per item)."""
    frames = torch.arange(hidden.shape[1], device=hidden.device)[None] < lengths.clamp(min=1)[:, None]
    weights = frames.to(hidden.dtype)[..., None]
    return (hidden * weights).sum(1) / weights.sum(1)


class TuneModel(nn.Module):
    """Encoder + head. ``norm_*``/``y_*`` buffers hold the standardisation fitted on training clips."""

    def __init__(self, encoder: Encoder, layers: list[int], *, output_dim: int, head: ProbeConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.layers = layers
        dims = {encoder.spec.layers[i].dim for i in layers}
        if len(dims) != 1:
            raise ConfigError(f"layers {layers} of {encoder.spec.name!r} differ in width ({sorted(dims)}); "
                              "a weighted head needs equal widths.")
        dim = dims.pop()
        self.head = ProbeHead(dim, output_dim, layers=len(layers), config=head)
        self.register_buffer("norm_mean", torch.zeros(len(layers), dim))
        self.register_buffer("norm_std", torch.ones(len(layers), dim))
        self.register_buffer("y_mean", torch.zeros(output_dim))
        self.register_buffer("y_std", torch.ones(output_dim))

    def features(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Pooled, unstandardised features ``(batch, layers, dim)``."""
        out = self.encoder(waveform, lengths, layers=self.layers)
        return torch.stack([masked_mean(out.hidden[i].float(), out.lengths[i]) for i in self.layers], dim=1)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = (self.features(waveform, lengths) - self.norm_mean) / self.norm_std
        return self.head(x)
