"""What a transfer method is: a settings dataclass, an ``apply`` function and the flags the training
loop, the run and the command line read (peft's ``register_peft_method`` is the model).

Adding a method is one new module in this package that defines its config, its ``apply`` and one
:func:`register_method` call, plus its import in ``__init__.py`` and its test. Nothing in the loop,
the run or the CLI names a method.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
from torch import nn

from mirkit.errors import ConfigError
from mirkit.options import check_choices
from mirkit.registry import Registry


@dataclass(frozen=True)
class MethodConfig:
    """Base class of every method's settings; subclasses declare fields with :func:`mirkit.options.option`."""

    def validate(self, method: str) -> None:
        """Raise :class:`ConfigError` naming a bad setting (choices are checked here; ranges by subclasses)."""
        check_choices(self, what=f"method {method!r}")

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> MethodConfig:
        """The config from a stored dict; keys of other methods' settings are ignored (runs written
        before settings were per method stored one flat dict)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


class MethodState(nn.Module):
    """What a method added to the encoder (adapters, prefixes) and which encoder parameters it trains."""

    def __init__(self) -> None:
        super().__init__()
        self.added = nn.ModuleDict()
        self.trained: list[str] = []  # encoder parameter names (peft layers included)
        self.inserted: list[str] = []  # encoder parameters the method created inside the encoder (peft layers)
        self.handles: list[torch.utils.hooks.RemovableHandle] = []


ApplyFn = Callable[[nn.Module, MethodConfig, MethodState], None]


@dataclass(frozen=True)
class MethodSpec:
    """One registered transfer method.

    Attributes:
        name: registry key and the ``--method`` value.
        family: ``probe``, ``full``, ``adapter``, ``prompt``, ``reparameterisation`` or ``scratch``.
        trains: what is trained besides the head, in words (``mirkit tune --list-methods``).
        applies_to: which encoders it works on, in words.
        learning_rate: default learning rate of the method's parameters (the head uses ``head_learning_rate``).
        config_cls: the method's settings.
        apply: called on the frozen encoder; adds modules to ``state.added`` and/or unfreezes parameters.
        trains_encoder: the encoder runs in train mode (batch norm, dropout) and its buffers are saved.
        merge: folds the method into the base weights for inference (``None``: not mergeable).
        build_encoder: the method brings its own encoder (``config, seed, device -> Encoder``); the
            ``--encoder`` option is then not needed.
        encoder_name: the name results carry when the method brings its own encoder.
        layer: a fixed layer choice that overrides ``--layer`` (``None``: the user's).
        standardise_features: fit the head's input standardisation on the initial encoder's features
            (off where those features are random and batch norm does the job).
        frozen_modules: encoder submodules (name prefixes) that neither train nor are saved.
    """

    name: str
    family: str
    trains: str
    applies_to: str
    learning_rate: float
    config_cls: type[MethodConfig]
    apply: ApplyFn
    trains_encoder: bool = False
    merge: Callable[[nn.Module], int] | None = None
    build_encoder: Callable[..., nn.Module] | None = None
    encoder_name: Callable[[MethodConfig], str] | None = None
    layer: str | None = None
    standardise_features: bool = True
    frozen_modules: tuple[str, ...] = ()

    @property
    def mergeable(self) -> bool:
        return self.merge is not None


METHODS: Registry[MethodSpec] = Registry("method", listing_hint="mirkit tune --list-methods")


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to :data:`METHODS` (once per name)."""
    return METHODS.register(spec.name, spec)


def get_method(name: str) -> MethodSpec:
    return METHODS.get(name)


def family_targets(encoder: nn.Module, key: str, *, method: str, override: str | None = None) -> str:
    """The module-name pattern ``key`` (``adapter``, ``lora``, ``frontend``...) that the encoder's spec names
    (:attr:`~mirkit.encoders.spec.EncoderSpec.tuning_targets`), unless ``override``."""
    if override:
        return override
    pattern = encoder.spec.tuning_target(key)
    if pattern is None:
        raise ConfigError(f"method {method!r} has no default targets for encoder {encoder.spec.name!r} (family "
                          f"{encoder.spec.family!r}); pass --targets REGEX naming its modules (see `mirkit tune "
                          f"--show-modules {encoder.spec.name}`).")
    return pattern


def apply_method(encoder: nn.Module, method: str, config: MethodConfig | None = None) -> MethodState:
    """Freeze ``encoder``, let ``method`` add its modules and unfreeze what it trains; returns what it did."""
    spec = get_method(method)
    config = config if config is not None else spec.config_cls()
    if not isinstance(config, spec.config_cls):
        raise ConfigError(f"method {method!r} takes a {spec.config_cls.__name__}, not a {type(config).__name__}.")
    config.validate(method)
    state = MethodState()
    for p in encoder.parameters():
        p.requires_grad_(False)
    existing = {id(p) for p in encoder.parameters()}
    spec.apply(encoder, config, state)
    # parameters the method created inside the encoder (peft's LoRA/DoRA/IA3 layers; the wrapped base
    # weights keep their identity) are its own: they train and are not counted as the encoder's
    state.inserted = [n for n, p in encoder.named_parameters() if id(p) not in existing]
    for n, p in encoder.named_parameters():
        if id(p) not in existing:
            p.requires_grad_(True)
    for prefix in spec.frozen_modules:
        for n, p in encoder.named_parameters():
            if n.startswith(prefix + "."):
                p.requires_grad_(False)
    state.trained = [n for n, p in encoder.named_parameters() if p.requires_grad]
    if spec.family != "probe" and not state.trained and not len(state.added):
        raise ConfigError(f"method {method!r} found nothing to train in encoder {encoder.spec.name!r}; check "
                          "--targets / --top-blocks, or use --method probe.")
    return state


def unfreeze_matching(encoder: nn.Module, pattern: str) -> None:
    """``requires_grad`` on every encoder parameter whose name matches ``pattern`` (``re.search``)."""
    regex = re.compile(pattern)
    for n, p in encoder.named_parameters():
        if regex.search(n):
            p.requires_grad_(True)
