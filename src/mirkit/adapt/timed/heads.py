"""Frame-level heads (MARBLE protocol): on one layer or a learned softmax-weighted sum of layers,
a linear map or one 512-unit hidden layer applied to every frame, or a small dilated temporal
convolution network (TCN) over the frozen frames for context the frame alone does not have."""

from __future__ import annotations

import torch
from torch import nn

from mirkit.errors import ConfigError

HEADS = ("linear", "mlp", "tcn")
TCN_CHANNELS = 64
TCN_DILATIONS = (1, 2, 4, 8, 16)


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(torch.relu(self.conv(x)))


class FrameHead(nn.Module):
    """``(batch, layers, frames, dim)`` frozen features -> ``(batch, frames, outputs)`` logits.

    Args:
        layers: how many layers come in (more than one: a learned softmax weighting mixes them).
        dim: feature width; outputs: logits per frame; head: ``linear``, ``mlp`` or ``tcn``.
    """

    def __init__(self, *, layers: int, dim: int, outputs: int, head: str = "linear", hidden: int = 512,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if head not in HEADS:
            raise ConfigError(f"head={head!r} must be one of {', '.join(HEADS)}.")
        self.head = head
        self.layer_logits = nn.Parameter(torch.zeros(layers)) if layers > 1 else None
        if head == "linear":
            self.net = nn.Linear(dim, outputs)
        elif head == "mlp":
            self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, outputs))
        else:
            self.inp = nn.Conv1d(dim, TCN_CHANNELS, 1)
            self.blocks = nn.Sequential(*(_Residual(TCN_CHANNELS, d, dropout) for d in TCN_DILATIONS))
            self.out = nn.Conv1d(TCN_CHANNELS, outputs, 1)

    def layer_weights(self) -> list[float]:
        return [] if self.layer_logits is None else torch.softmax(self.layer_logits, 0).tolist()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer_logits is not None:
            x = torch.einsum("blfd,l->bfd", x, torch.softmax(self.layer_logits, 0))
        else:
            x = x[:, 0]
        if self.head != "tcn":
            return self.net(x)
        return self.out(self.blocks(self.inp(x.transpose(1, 2)))).transpose(1, 2)


__all__ = ["FrameHead", "HEADS"]
