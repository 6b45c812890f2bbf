"""``probe``: the encoder stays frozen; only the head trains (the same head as ``mirkit probe``)."""

from __future__ import annotations

from mirkit.tune.methods.base import MethodConfig, MethodSpec, register_method


def apply(encoder, config: MethodConfig, state) -> None:
    """Nothing to add: :func:`~mirkit.tune.methods.base.apply_method` has frozen the encoder."""


SPEC = register_method(MethodSpec(
    name="probe", family="probe", trains="nothing (frozen encoder, same head as `mirkit probe`)",
    applies_to="every encoder", learning_rate=0.0, config_cls=MethodConfig, apply=apply))
