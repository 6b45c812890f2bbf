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


class StackedFrameHeads(nn.Module):
    """``copies`` independent per-frame heads (linear or MLP) trained in one pass over the same frames:
    each copy has its own parameters (so its own learning rate as an optimiser group), initialised as a
    :class:`FrameHead` under its own seed. ``forward`` maps ``(1, layers, frames, dim)`` to
    ``(copies, frames, outputs)``; :meth:`head` returns copy ``k`` as a plain :class:`FrameHead`."""

    def __init__(self, *, seeds: list[int], layers: int, dim: int, outputs: int, head: str, hidden: int = 512,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if head not in ("linear", "mlp"):
            raise ConfigError(f"head={head!r}: only per-frame heads (linear, mlp) stack; train a tcn head alone.")
        self.head_kind, self.dims, self.dropout = head, (layers, dim, outputs, hidden), dropout
        self.copies = nn.ModuleList()
        for seed in seeds:
            torch.manual_seed(seed)
            self.copies.append(FrameHead(layers=layers, dim=dim, outputs=outputs, head=head, hidden=hidden,
                                         dropout=dropout))

    def copy_parameters(self, k: int) -> list[nn.Parameter]:
        return list(self.copies[k].parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers, _, outputs, hidden_size = self.dims
        k = len(self.copies)
        first = [c.net if self.head_kind == "linear" else c.net[0] for c in self.copies]
        w1 = torch.cat([m.weight for m in first])  # (copies * width, dim)
        b1 = torch.cat([m.bias for m in first])
        width = outputs if self.head_kind == "linear" else hidden_size
        if layers > 1:  # each copy mixes the layers its own way: one (frames, dim) input per copy
            mix = torch.softmax(torch.stack([c.layer_logits for c in self.copies]), -1)
            h = torch.einsum("lfd,kl->kfd", x[0], mix)
            out = torch.einsum("kfd,kwd->kfw", h, w1.view(k, width, -1)) + b1.view(k, 1, width)
        else:  # one shared input: a single matrix product for every copy
            out = (x[0, 0] @ w1.T + b1).view(-1, k, width).transpose(0, 1)
        if self.head_kind == "linear":
            return out
        hidden = nn.functional.dropout(torch.relu(out), self.dropout, self.training)
        w2 = torch.stack([c.net[3].weight for c in self.copies])
        b2 = torch.stack([c.net[3].bias for c in self.copies])
        return torch.einsum("kfh,koh->kfo", hidden, w2) + b2[:, None]

    def head(self, k: int) -> FrameHead:
        return self.copies[k]


__all__ = ["FrameHead", "HEADS", "StackedFrameHeads"]
