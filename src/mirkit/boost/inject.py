"""Injection of frozen foundation-model features into a task model (SoniDo, arXiv 2411.01135).

:class:`Injector`: the chosen layers of a frozen encoder (already resampled to the task model's frame
times and standardised) -> one linear projection per layer to a common width -> a learned softmax
weighting over the layers -> optional "token-out" (whole frames of the injected features dropped in
training, SoniDo's augmentation for tagging). Optional feature dropout (``feature_dropout``: units of each
standardised layer dropped in training before its projection) regularises the injected path, which
otherwise lets a boosted model fit a few training clips faster than its baseline does.

:class:`Fusion`: where the injected features meet the task model's hidden frames ``h``, always through
a zero-initialised gate, so that a boosted model computes exactly its baseline's function at step 0
(tested). The gate is the fusion's output map, initialised at zero (ControlNet's "zero convolution"):
it gets a full gradient at once, whereas a zero scalar in front of a random projection leaves that
projection without gradient until the scalar moves (measured: after up to 600 steps of the beat
model on the quick suite the scalar was below 0.1 in magnitude in each of the 5 boosted cells run).

- ``concat``: ``h + G f``, which is concatenating ``f`` to ``h`` before the next linear map (SoniDo's
  choice for transcription: features beside the spectrogram, then a shallow layer);
- ``film``: ``h * (1 + G_gamma f) + G_beta f`` (feature-wise linear modulation);
- ``xattn``: ``h + G Attention(query=h, key=value=f)`` (cross-attention over the clip's feature frames).

:meth:`Fusion.gate_norm` (the Frobenius norm of ``G``) says how much a trained model uses the features.
"""

from __future__ import annotations

import torch
from torch import nn

from mirkit.errors import ConfigError

FUSIONS = ("concat", "film", "xattn")
INJECT_WIDTH = 128


class Injector(nn.Module):
    """``[(batch, frames, dim_l)]`` standardised layer features -> ``(batch, frames, width)``.

    Args:
        dims: the width of each injected layer.
        width: the common projection width.
        token_out: probability of dropping a whole injected frame in training (0: off).
        feature_dropout: probability of dropping each unit of the injected layers in training (0: off).
    """

    def __init__(self, dims: list[int], *, width: int = INJECT_WIDTH, token_out: float = 0.0,
                 feature_dropout: float = 0.0) -> None:
        super().__init__()
        if not dims:
            raise ConfigError("no encoder layer to inject; choose --layers weighted or a layer index.")
        if not 0 <= token_out < 1:
            raise ConfigError(f"token_out={token_out}: a drop probability in [0, 1).")
        if not 0 <= feature_dropout < 1:
            raise ConfigError(f"feature_dropout={feature_dropout}: a drop probability in [0, 1).")
        self.projections = nn.ModuleList(nn.Linear(d, width) for d in dims)
        self.layer_logits = nn.Parameter(torch.zeros(len(dims)))
        self.token_out = token_out
        self.feature_dropout = feature_dropout
        self.width = width

    def layer_weights(self) -> list[float]:
        return torch.softmax(self.layer_logits.detach(), 0).tolist()

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        weights = torch.softmax(self.layer_logits, 0)
        if self.training and self.feature_dropout > 0:  # off: no random draw, so runs without it are unchanged
            layers = [nn.functional.dropout(x, self.feature_dropout) for x in layers]
        out = sum(w * proj(x) for w, proj, x in zip(weights, self.projections, layers))
        if self.training and self.token_out > 0:
            keep = torch.rand(out.shape[:2], device=out.device) >= self.token_out
            out = out * keep[..., None].to(out.dtype)
        return out  # type: ignore[return-value]


class AttentionPool(nn.Module):
    """SoniDo's attention aggregation for clip-level tasks: a learned score per injected frame, a softmax
    over the clip's real frames, their weighted sum: ``(batch, frames, width)`` -> ``(batch, 1, width)``."""

    def __init__(self, width: int = INJECT_WIDTH) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.score(tokens)[..., 0]
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return (torch.softmax(scores, dim=1)[..., None] * tokens).sum(dim=1, keepdim=True)


class Fusion(nn.Module):
    """Gated fusion of injected features ``f (batch, frames, width_f)`` into hidden frames
    ``h (batch, frames, width)`` (see the module docstring); the gate ``G`` starts at zero."""

    def __init__(self, kind: str, *, width: int, feature_width: int = INJECT_WIDTH, heads: int = 4) -> None:
        super().__init__()
        if kind not in FUSIONS:
            raise ConfigError(f"fusion={kind!r} must be one of {', '.join(FUSIONS)}.")
        self.kind = kind
        if kind == "xattn":
            if width % heads:
                raise ConfigError(f"cross-attention needs a hidden width divisible by {heads} heads, got {width}.")
            self.attention = nn.MultiheadAttention(width, heads, kdim=feature_width, vdim=feature_width,
                                                   batch_first=True)
            self.gate = self.attention.out_proj
        else:
            self.gate = nn.Linear(feature_width, width if kind == "concat" else 2 * width)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def gate_norm(self) -> float:
        """How far the gate has moved from zero (Frobenius norm of its weight)."""
        return float(self.gate.weight.detach().norm())

    def forward(self, h: torch.Tensor, f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: ``(batch, frames)`` True where a frame is real (padding is not attended to)."""
        if self.kind == "concat":
            return h + self.gate(f)
        if self.kind == "film":
            gamma, beta = self.gate(f).chunk(2, dim=-1)
            return h * (1 + gamma) + beta
        padding = None if mask is None else ~mask
        attended, _ = self.attention(h, f, f, key_padding_mask=padding, need_weights=False)
        return h + attended


__all__ = ["AttentionPool", "FUSIONS", "Fusion", "INJECT_WIDTH", "Injector"]
