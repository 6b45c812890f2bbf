"""Span masking of token sequences (HuBERT / MERT: mask probability 0.8, spans of 5 tokens).

Conventions:
    ``lengths`` ``(batch,)`` counts each item's valid tokens; the mask is ``(batch, tokens)`` bool,
    ``True`` = masked, never set on padding. For an item of ``n`` valid tokens, ``round(prob * n /
    span)`` span starts are drawn without replacement (at least one when ``n >= span``), so about
    ``prob`` of the tokens are covered before overlaps (HuBERT's ``compute_mask_indices``).
"""

from __future__ import annotations

import torch

from mirkit.errors import ConfigError


def span_mask(lengths: torch.Tensor, tokens: int, *, prob: float, span: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """A random span mask; deterministic for a seeded ``generator``."""
    if not 0 < prob <= 1:
        raise ConfigError(f"mask probability {prob} must be in (0, 1] (MERT: 0.8).")
    if span < 1:
        raise ConfigError(f"mask span {span} must be at least 1 token (MERT: 5).")
    mask = torch.zeros(len(lengths), tokens, dtype=torch.bool)
    for i, n in enumerate(lengths.tolist()):
        n = min(int(n), tokens)
        if n < 1:
            continue
        width = min(span, n)
        starts_possible = n - width + 1
        count = min(starts_possible, max(1, round(prob * n / span)))
        starts = torch.randperm(starts_possible, generator=generator)[:count]
        for start in starts.tolist():
            mask[i, start : start + width] = True
    return mask
