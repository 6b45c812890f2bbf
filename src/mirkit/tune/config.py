"""``TuneConfig``: everything that defines a tuning run (stored with its checkpoints and results).

The command line is generated from these fields (``mirkit.cli.options``), so each default is
written once, here; method settings live in each method's config (``mirkit.tune.methods``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from mirkit.errors import ConfigError
from mirkit.options import check_choices, option
from mirkit.tune.methods import DEFAULT_METHOD, MethodConfig, get_method


@dataclass(frozen=True)
class TuneConfig:
    """Training settings of ``mirkit tune``; ``options`` holds the method's own config."""

    method: str = option(DEFAULT_METHOD, cli=False)
    options: MethodConfig | None = option(None, cli=False)  # None: the method's defaults (see method_options)
    head: str = option("linear", "the head of `mirkit probe` to train (tcn: the temporal head, time-resolved tasks only)",
                       choices=("linear", "mlp", "tcn"))
    layer: str = option("auto", "auto | weighted | a layer index (what the head reads)")
    learning_rate: float | None = option(None, "learning rate of the method's parameters (default per method: "
                                         "finetune 1e-4, others 1e-3)", flag="lr")
    head_learning_rate: float = option(1e-3, "learning rate of the head", flag="head-lr")
    weight_decay: float = option(0.01, "AdamW weight decay")
    batch_size: int = option(16, "clips per batch")
    accumulate: int = option(1, "gradient accumulation steps")
    max_epochs: int = option(30, "at most; early stopping on validation", flag="epochs")
    patience: int = option(5, "epochs without a better validation score before stopping")
    warmup_ratio: float = option(0.1, "fraction of steps with linear warmup", flag="warmup")
    grad_clip: float = option(1.0, "gradient-norm clipping threshold")
    crop_s: float = option(5.0, "training crop; evaluation averages non-overlapping windows of this length")
    seed: int = option(0, cli=False)
    checkpoint_every: int = option(50, "optimizer steps between checkpoints (one is also written every epoch)")
    max_bad_steps: int = option(5, "optimizer steps in a row with a non-finite loss before the run aborts")
    frame_rate_hz: float | None = option(None, "for encoders with a free hop (CREPE)")
    augment: str = option("none", "augmentation of training crops: none, or a comma list of gain, eq, room, noise "
                          "(label-preserving) and pitch, stretch (labels follow by rule: key/pitch transposed, tempo "
                          "scaled), each applied with probability 0.5")
    loudness: str = option("none", "level policy applied to every clip before the encoder sees it (training, "
                           "evaluation, predict, robustness): none, peak (-1 dBFS) or lufs (-23 LUFS, BS.1770); "
                           "augmented training crops are levelled again after their augmentations",
                           choices=("none", "peak", "lufs"))

    def validate(self) -> None:
        spec = get_method(self.method)
        checks = {"batch_size": self.batch_size >= 2, "accumulate": self.accumulate >= 1,
                  "max_epochs": self.max_epochs >= 1, "patience": self.patience >= 1, "crop_s": self.crop_s > 0,
                  "head_learning_rate": self.head_learning_rate > 0, "grad_clip": self.grad_clip > 0,
                  "warmup_ratio": 0 <= self.warmup_ratio < 1, "checkpoint_every": self.checkpoint_every >= 1,
                  "max_bad_steps": self.max_bad_steps >= 1,
                  "learning_rate": self.learning_rate is None or self.learning_rate > 0}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"tune settings out of range: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)} "
                              "(batch_size >= 2, accumulate/max_epochs/patience/checkpoint_every/max_bad_steps "
                              ">= 1, positive rates and crop, 0 <= warmup_ratio < 1).")
        check_choices(self, what="mirkit tune")
        from mirkit.audio.augment import parse_augment

        parse_augment(self.augment)  # unknown names fail before any work
        options = self.method_options
        if not isinstance(options, spec.config_cls):
            raise ConfigError(f"method {self.method!r} takes options of type {spec.config_cls.__name__}, not "
                              f"{type(options).__name__}; build them with that class or leave options=None.")
        options.validate(self.method)

    @property
    def method_options(self) -> MethodConfig:
        """``options``, or the method's defaults when it is ``None`` (so ``replace(config, method=...)``
        without options gets the new method's defaults)."""
        return self.options if self.options is not None else get_method(self.method).config_cls()

    @property
    def encoder_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else get_method(self.method).learning_rate

    def to_dict(self) -> dict[str, object]:
        """Plain data with the method options resolved (``None`` and explicit defaults store alike)."""
        return {**asdict(self), "options": asdict(self.method_options)}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> TuneConfig:
        """Inverse of :meth:`to_dict` (also reads runs written when method options were one flat dict)."""
        raw = dict(raw)
        options = raw.pop("options", None) or {}
        config = cls(**raw)
        return replace(config, options=get_method(config.method).config_cls.from_dict(options))  # type: ignore[arg-type]
