"""The learning-rate schedule and the optimizer step shared by ``mirkit tune`` and ``mirkit pretrain``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def warmup_cosine(optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int):
    """Linear warm-up over ``warmup_steps`` (at least 1), then cosine decay to zero at ``total_steps``."""
    warmup = max(1, warmup_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def clipped_step(optimizer: torch.optim.Optimizer, scheduler, parameters: Iterable[torch.Tensor], *,
                 grad_clip: float, finite: bool) -> bool:
    """Clip the gradient norm to ``grad_clip`` and step optimizer and scheduler, unless the loss
    (``finite``) or the gradient norm is not finite; returns whether the step was taken."""
    if finite:
        finite = bool(torch.isfinite(torch.nn.utils.clip_grad_norm_(list(parameters), grad_clip)))
    if finite:
        optimizer.step()
        scheduler.step()
    return finite
