"""``finetune``: every encoder weight trains (optionally with the front-end frozen, or only the top N blocks)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from mirkit.errors import ConfigError
from mirkit.options import option
from mirkit.tune.methods.base import (
    MethodConfig,
    MethodSpec,
    family_targets,
    register_method,
)


@dataclass(frozen=True)
class FinetuneConfig(MethodConfig):
    freeze_frontend: bool = option(False, "keep the front-end frozen")
    top_blocks: int | None = option(None, "train only the top N blocks")


def top_blocks(encoder: nn.Module, count: int) -> set[str]:
    """Parameter names of the last ``count`` blocks (the family's ``blocks`` pattern numbers them)."""
    pattern = re.compile(family_targets(encoder, "blocks", method="finetune"))
    blocks: dict[str, list[str]] = {}
    for n, _ in encoder.named_parameters():
        found = pattern.search(n)
        if found:
            blocks.setdefault(found.group(1), []).append(n)
    order = sorted(blocks, key=int)
    if not 1 <= count <= len(order):
        raise ConfigError(f"--top-blocks {count}: encoder {encoder.spec.name!r} has {len(order)} blocks; "
                          f"choose 1..{len(order)}.")
    return {n for block in order[-count:] for n in blocks[block]}


def apply(encoder: nn.Module, config: FinetuneConfig, state) -> None:
    params = dict(encoder.named_parameters())
    if not params:
        raise ConfigError(f"encoder {encoder.spec.name!r} has no weights to fine-tune; use a learned encoder or "
                          "--method scratch.")
    chosen = set(params)
    if config.freeze_frontend:
        frontend = re.compile(family_targets(encoder, "frontend", method="finetune"))
        chosen = {n for n in chosen if not frontend.search(n)}
    if config.top_blocks is not None:
        chosen &= top_blocks(encoder, config.top_blocks)
    for n in chosen:
        params[n].requires_grad_(True)


SPEC = register_method(MethodSpec(
    name="finetune", family="full",
    trains="all encoder weights (options: freeze the front-end, train only the top N blocks)",
    applies_to="every encoder with weights", learning_rate=1e-4, config_cls=FinetuneConfig, apply=apply,
    trains_encoder=True))
