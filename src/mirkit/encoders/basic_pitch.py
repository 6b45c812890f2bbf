"""basic-pitch (Bittner et al., ICASSP 2022; Apache-2.0) as an encoder: its note and onset posteriors.

The ONNX model inside the ``basic-pitch`` wheel, run by :mod:`mirkit.kinds.basic_pitch` (no
TensorFlow). Layers: ``note`` and ``onset``, each 88 piano keys (A0..C8) at 22,050 / 256 frames per
second. As an encoder it goes through the feature store like any other, which is how
``mirkit pretrain --distill basic-pitch`` computes its targets once per corpus file.
"""

from __future__ import annotations

import numpy as np
import torch

from mirkit.encoders.base import Encoder, file_digest
from mirkit.encoders.spec import EncoderSpec
from mirkit.errors import ConfigError


class BasicPitchEncoder(Encoder):
    def __init__(self, spec: EncoderSpec) -> None:
        from mirkit.kinds.basic_pitch import model_path

        super().__init__(spec)
        self.weights_revision = "sha256:" + file_digest([model_path()])

    def encode(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        from mirkit.kinds.basic_pitch import posteriors

        audio = waveform.detach().float().cpu().numpy()
        items = [posteriors(audio[i, : int(n)]) for i, n in enumerate(lengths.tolist())]
        frames = max(len(note) for note, _ in items)
        out = np.zeros((2, len(items), frames, 88), dtype=np.float32)
        for i, (note, onset) in enumerate(items):
            out[0, i, : len(note)], out[1, i, : len(onset)] = note, onset
        counts = torch.tensor([len(note) for note, _ in items], dtype=torch.long, device=waveform.device)
        return [torch.from_numpy(out[0]).to(waveform.device), torch.from_numpy(out[1]).to(waveform.device)], [counts, counts]


def build(spec: EncoderSpec, *, weights_dir: str | None = None) -> BasicPitchEncoder:
    if spec.is_random:
        raise ConfigError("basic-pitch is a teacher and a peer, not a backbone: it has no random twin.")
    return BasicPitchEncoder(spec)
