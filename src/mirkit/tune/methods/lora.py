"""``lora``: low-rank updates of linear and convolution weights through peft (Hu et al. 2022)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mirkit.errors import ConfigError
from mirkit.options import option
from mirkit.tune.methods.adapter import TARGETS_HELP
from mirkit.tune.methods.base import (
    MethodConfig,
    MethodSpec,
    family_targets,
    register_method,
)
from mirkit.tune.methods.hooks import matching_modules

#: module kinds peft's LoRA layers wrap here
LORA_KINDS = (nn.Linear, nn.Conv1d, nn.Conv2d)


@dataclass(frozen=True)
class LoraConfig(MethodConfig):
    lora_rank: int = option(8, "rank of the low-rank update")
    lora_alpha: float = option(16.0, "LoRA scaling numerator (the update is scaled by alpha / rank)")
    targets: str | None = option(None, TARGETS_HELP)

    def validate(self, method: str) -> None:
        super().validate(method)
        if self.lora_rank < 1:
            raise ConfigError(f"LoRA rank {self.lora_rank} must be at least 1.")


def target_names(encoder: nn.Module, *, method: str, key: str, override: str | None,
                 kinds: tuple[type, ...]) -> list[str]:
    """Dotted names of the encoder modules a peft method wraps (the family default or ``override``)."""
    pattern = family_targets(encoder, key, method=method, override=override)
    return [n for n, _ in matching_modules(encoder, pattern, what=method, encoder=encoder.spec.name, kinds=kinds)]


def inject_lora(encoder: nn.Module, config: LoraConfig, *, method: str, use_dora: bool) -> None:
    import peft

    names = target_names(encoder, method=method, key="lora", override=config.targets, kinds=LORA_KINDS)
    peft.inject_adapter_in_model(peft.LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha,
                                                 target_modules=names, lora_dropout=0.0, use_dora=use_dora), encoder)


def apply(encoder: nn.Module, config: LoraConfig, state) -> None:
    inject_lora(encoder, config, method="lora", use_dora=False)


def merge_lora(encoder: nn.Module) -> int:
    """Fold LoRA (and DoRA) updates into the base weights and drop the peft layers; returns how many were merged."""
    from peft.tuners.lora import LoraLayer

    merged = 0
    for name, module in list(encoder.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = encoder.get_submodule(parent_name) if parent_name else encoder
            setattr(parent, child, module.get_base_layer())
            merged += 1
    return merged


SPEC = register_method(MethodSpec(
    name="lora", family="reparameterisation", trains="low-rank updates of linear and convolution weights (peft LoRA)",
    applies_to="every encoder with Linear/Conv layers", learning_rate=1e-3, config_cls=LoraConfig, apply=apply,
    merge=merge_lora))
