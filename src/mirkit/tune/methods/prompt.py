"""``prompt``: gated prefix tokens in the first (shallow) or every (deep) attention layer
(prefix tuning, Li & Liang 2021, with LLaMA-Adapter's zero-initialised gate)."""

from __future__ import annotations

from dataclasses import dataclass

from mirkit.errors import ConfigError
from mirkit.options import option
from mirkit.tune.methods.adapter import TARGETS_HELP
from mirkit.tune.methods.base import (
    MethodConfig,
    MethodSpec,
    family_targets,
    register_method,
)
from mirkit.tune.methods.hooks import add_prefixes, matching_modules


@dataclass(frozen=True)
class PromptConfig(MethodConfig):
    prompt_tokens: int = option(16, "prefix tokens per attention layer")
    prompt_depth: str = option("deep", "first attention layer only (shallow) or every one (deep)",
                               choices=("shallow", "deep"))
    targets: str | None = option(None, TARGETS_HELP)

    def validate(self, method: str) -> None:
        super().validate(method)
        if self.prompt_tokens < 1:
            raise ConfigError(f"prompt tokens {self.prompt_tokens} must be at least 1.")


def apply(encoder, config: PromptConfig, state) -> None:
    pattern = family_targets(encoder, "prompt", method="prompt", override=config.targets)
    targets = matching_modules(encoder, pattern, what="prompt", encoder=encoder.spec.name)
    if config.prompt_depth == "shallow":
        targets = targets[:1]
    state.handles += add_prefixes(targets, tokens=config.prompt_tokens, store=state.added)


SPEC = register_method(MethodSpec(
    name="prompt", family="prompt", trains="gated prefix tokens in the first (shallow) or every (deep) attention layer",
    applies_to="transformer encoders with q_proj/out_proj attention (wav2vec2 family, MERT, Whisper, mirkit-mel)",
    learning_rate=1e-3, config_cls=PromptConfig, apply=apply))
