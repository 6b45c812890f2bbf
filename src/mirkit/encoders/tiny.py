"""A tiny deterministic conv encoder for tests and smoke runs (no weights to download).

Three strided 1-D conv layers over the raw waveform at 8 kHz (frame rate 8000/64 = 125 Hz);
layer 0 is the first conv's output. Weights come from a fixed seed, so every build is identical.
Frames are computed from each item's own samples, so zero padding never changes valid frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mirkit.encoders.base import Encoder
from mirkit.encoders.spec import EncoderSpec

SAMPLE_RATE = 8000
HOP = 64


class TinyEncoder(Encoder):
    def __init__(self, spec: EncoderSpec, *, seed: int) -> None:
        super().__init__(spec)
        generator = torch.Generator().manual_seed(seed)
        self.conv0 = nn.Conv1d(1, 16, 64, stride=64)
        self.conv1 = nn.Conv1d(16, 16, 3, padding=1)
        self.conv2 = nn.Conv1d(16, 8, 3, padding=1)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
        self.weights_revision = f"seed{seed}"

    def encode(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        frames = lengths // HOP
        x = waveform[:, : (waveform.shape[1] // HOP) * HOP][:, None].float()
        mask = (torch.arange(x.shape[-1] // HOP, device=x.device)[None] < frames[:, None]).float()[:, None]
        h0 = torch.tanh(self.conv0(x)) * mask
        h1 = torch.tanh(self.conv1(h0)) * mask
        h2 = F.relu(self.conv2(h1)) * mask
        return [h.transpose(1, 2) for h in (h0, h1, h2)], [frames.long()] * 3


def build(spec: EncoderSpec, *, weights_dir: str | None = None) -> TinyEncoder:
    return TinyEncoder(spec, seed=1 if spec.is_random else 0)
