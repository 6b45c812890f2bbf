"""Injection of frozen foundation-model features into a task model (SoniDo, arXiv 2411.01135).

:class:`Injector`: the chosen layers of a frozen encoder (already resampled to the task model's frame
times and standardised) -> one linear projection per layer to a common width -> a learned softmax
weighting over the layers -> optional "token-out" (whole frames of the injected features dropped in
training, SoniDo's augmentation for tagging).

:class:`Fusion`: where the injected features meet the task model's hidden frames ``h``, always through
a gate initialised at zero, so that a boosted model computes exactly its baseline's function at
step 0 (tested):

- ``concat``: ``h + g * W f``, which is concatenating ``f`` to ``h`` before the next linear map
  (SoniDo's choice for transcription: features beside the spectrogram, then a shallow layer);
- ``film``: ``h * (1 + g * gamma(f)) + g * beta(f)`` (feature-wise linear modulation);
- ``xattn``: ``h + g * Attention(query=h, key=value=f)`` (cross-attention over the clip's feature frames).
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
    """

    def __init__(self, dims: list[int], *, width: int = INJECT_WIDTH, token_out: float = 0.0) -> None:
        super().__init__()
        if not dims:
            raise ConfigError("no encoder layer to inject; choose --layers weighted or a layer index.")
        if not 0 <= token_out < 1:
            raise ConfigError(f"token_out={token_out}: a drop probability in [0, 1).")
        self.projections = nn.ModuleList(nn.Linear(d, width) for d in dims)
        self.layer_logits = nn.Parameter(torch.zeros(len(dims)))
        self.token_out = token_out
        self.width = width

    def layer_weights(self) -> list[float]:
        return torch.softmax(self.layer_logits.detach(), 0).tolist()

    def forward(self, layers: list[torch.Tensor]) -> torch.Tensor:
        weights = torch.softmax(self.layer_logits, 0)
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
    ``h (batch, frames, width)`` (see the module docstring); ``gate`` starts at zero."""

    def __init__(self, kind: str, *, width: int, feature_width: int = INJECT_WIDTH, heads: int = 4) -> None:
        super().__init__()
        if kind not in FUSIONS:
            raise ConfigError(f"fusion={kind!r} must be one of {', '.join(FUSIONS)}.")
        self.kind = kind
        self.gate = nn.Parameter(torch.zeros(()))
        if kind == "concat":
            self.proj = nn.Linear(feature_width, width)
        elif kind == "film":
            self.proj = nn.Linear(feature_width, 2 * width)
        else:
            if width % heads:
                raise ConfigError(f"cross-attention needs a hidden width divisible by {heads} heads, got {width}.")
            self.attention = nn.MultiheadAttention(width, heads, kdim=feature_width, vdim=feature_width,
                                                   batch_first=True)

    def forward(self, h: torch.Tensor, f: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: ``(batch, frames)`` True where a frame is real (padding is not attended to)."""
        if self.kind == "concat":
            return h + self.gate * self.proj(f)
        if self.kind == "film":
            gamma, beta = self.proj(f).chunk(2, dim=-1)
            return h * (1 + self.gate * gamma) + self.gate * beta
        padding = None if mask is None else ~mask
        attended, _ = self.attention(h, f, f, key_padding_mask=padding, need_weights=False)
        return h + self.gate * attended


__all__ = ["AttentionPool", "FUSIONS", "Fusion", "INJECT_WIDTH", "Injector"]
