"""MERT's in-batch noise mixing: with probability ``prob`` a clip gets 1-``max_segments`` segments of
``min_s``-``max_s`` seconds cut from other clips of the batch, added at volume 1.0. Targets are
computed from the clean audio before mixing, so the model learns to predict the clip under the
interference (MERT: 50 %, 1-3 segments of 0.5-1.0 s)."""

from __future__ import annotations

import torch

from mirkit.errors import ConfigError


def mix_in_batch(waves: torch.Tensor, lengths: torch.Tensor, *, sample_rate: int, prob: float = 0.5,
                 max_segments: int = 3, min_s: float = 0.5, max_s: float = 1.0,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """``waves`` ``(batch, samples)`` with segments of other clips added; returns it and the segment count."""
    if not 0 <= prob <= 1 or max_segments < 1 or not 0 < min_s <= max_s:
        raise ConfigError(f"mixing settings out of range: prob={prob}, max_segments={max_segments}, "
                          f"min_s={min_s}, max_s={max_s}.")
    batch = waves.shape[0]
    if batch < 2 or prob == 0:
        return waves, 0
    mixed = waves.clone()
    added = 0

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    for i in range(batch):
        if float(torch.rand((), generator=generator)) >= prob:
            continue
        for _ in range(int(torch.randint(1, max_segments + 1, (), generator=generator))):
            j = int(torch.randint(0, batch - 1, (), generator=generator))
            j += j >= i  # another clip
            size = min(int(uniform(min_s, max_s) * sample_rate), int(lengths[i]), int(lengths[j]))
            if size < 1:
                continue
            src = int(torch.randint(0, int(lengths[j]) - size + 1, (), generator=generator))
            dst = int(torch.randint(0, int(lengths[i]) - size + 1, (), generator=generator))
            mixed[i, dst : dst + size] += waves[j, src : src + size]
            added += 1
    return mixed, added
