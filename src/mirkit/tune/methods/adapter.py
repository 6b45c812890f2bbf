"""``adapter``: bottleneck adapters after (sequential) or beside (parallel) target blocks (Houlsby et al. 2019)."""

from __future__ import annotations

from dataclasses import dataclass

from mirkit.errors import ConfigError
from mirkit.options import option
from mirkit.tune.methods.base import (
    MethodConfig,
    MethodSpec,
    family_targets,
    register_method,
)
from mirkit.tune.methods.hooks import add_adapters, matching_modules

TARGETS_HELP = "module-name regex overriding the method's default targets"


@dataclass(frozen=True)
class AdapterConfig(MethodConfig):
    adapter_size: int = option(64, "bottleneck units per adapter")
    adapter_mode: str = option("sequential", "after the block (sequential) or beside it (parallel)",
                               choices=("sequential", "parallel"))
    targets: str | None = option(None, TARGETS_HELP)

    def validate(self, method: str) -> None:
        super().validate(method)
        if self.adapter_size < 1:
            raise ConfigError(f"adapter size {self.adapter_size} must be a positive number of bottleneck units.")


def apply(encoder, config: AdapterConfig, state) -> None:
    pattern = family_targets(encoder, "adapter", method="adapter", override=config.targets)
    targets = matching_modules(encoder, pattern, what="adapter", encoder=encoder.spec.name)
    state.handles += add_adapters(encoder, targets, size=config.adapter_size, mode=config.adapter_mode,
                                  store=state.added)


SPEC = register_method(MethodSpec(
    name="adapter", family="adapter", trains="bottleneck adapters after (sequential) or beside (parallel) target blocks",
    applies_to="transformers (attention + feed-forward), musicnn and CREPE (conv blocks); others with --targets",
    learning_rate=1e-3, config_cls=AdapterConfig, apply=apply))
