"""``dora``: weight-decomposed low-rank adaptation through peft (Liu et al. 2024, DoRA): LoRA's
low-rank update of the direction plus a learned magnitude per output unit. Same targets and
settings as ``lora``; mergeable like it."""

from __future__ import annotations

from torch import nn

from mirkit.tune.methods.base import MethodSpec, register_method
from mirkit.tune.methods.lora import LoraConfig, inject_lora, merge_lora


def apply(encoder: nn.Module, config: LoraConfig, state) -> None:
    inject_lora(encoder, config, method="dora", use_dora=True)


SPEC = register_method(MethodSpec(
    name="dora", family="reparameterisation",
    trains="low-rank direction updates and per-unit magnitudes of linear and convolution weights (peft DoRA)",
    applies_to="every encoder with Linear/Conv layers", learning_rate=1e-3, config_cls=LoraConfig, apply=apply,
    merge=merge_lora))
