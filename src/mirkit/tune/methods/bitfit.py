"""``bitfit``: only the encoder's biases train, normalisation shifts included (Ben Zaken et al. 2022)."""

from __future__ import annotations

from mirkit.tune.methods.base import (
    MethodConfig,
    MethodSpec,
    register_method,
    unfreeze_matching,
)


def apply(encoder, config: MethodConfig, state) -> None:
    unfreeze_matching(encoder, r"\.bias$")


SPEC = register_method(MethodSpec(
    name="bitfit", family="reparameterisation", trains="biases only (including normalisation shifts)",
    applies_to="encoders with biases", learning_rate=1e-3, config_cls=MethodConfig, apply=apply))
