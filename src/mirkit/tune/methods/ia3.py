"""``ia3``: learned rescaling of activations through peft (Liu et al. 2022): the input of feed-forward
output layers, the output of the others."""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from mirkit.options import option
from mirkit.tune.methods.adapter import TARGETS_HELP
from mirkit.tune.methods.base import (
    MethodConfig,
    MethodSpec,
    register_method,
)
from mirkit.tune.methods.lora import target_names


@dataclass(frozen=True)
class IA3Config(MethodConfig):
    targets: str | None = option(None, TARGETS_HELP)


def apply(encoder: nn.Module, config: IA3Config, state) -> None:
    import peft

    names = target_names(encoder, method="ia3", key="ia3", override=config.targets, kinds=(nn.Linear, nn.Conv2d))
    ff = None if config.targets else encoder.spec.tuning_target("ia3_ff")
    peft.inject_adapter_in_model(peft.IA3Config(target_modules=names,
                                                feedforward_modules=[n for n in names if ff and re.search(ff, n)]),
                                 encoder)


SPEC = register_method(MethodSpec(
    name="ia3", family="reparameterisation", trains="learned rescaling of activations (peft IA3)",
    applies_to="encoders with Linear/Conv2d layers", learning_rate=1e-3, config_cls=IA3Config, apply=apply))
