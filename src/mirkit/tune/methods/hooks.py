"""Modules that parameter-efficient methods put into a frozen encoder: bottleneck adapters and gated prefixes.

Both attach with forward hooks on existing submodules, so they work on any encoder whose module
names match the targets, and both start as the identity: the adapter's up-projection and the
prefix gate are zero at initialisation, so training starts from the frozen encoder's function
(Houlsby et al. 2019 for adapters; the zero-initialised gate is LLaMA-Adapter's, Zhang et al. 2023).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import nn

from mirkit.errors import ConfigError


def _primary(output: object) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output  # type: ignore[return-value,index]


def _replace_primary(output: object, value: torch.Tensor) -> object:
    return (value, *output[1:]) if isinstance(output, tuple) else value  # type: ignore[index]


def channel_dim(module: nn.Module) -> int:
    """Where a module's output keeps its features: dim 1 for convolutions, the last dim otherwise."""
    return 1 if isinstance(module, nn.modules.conv._ConvNd) else -1


class Bottleneck(nn.Module):
    """``up(act(down(x)))`` along ``dim``; ``up`` starts at zero, so the module starts as a no-op delta."""

    def __init__(self, in_features: int, size: int, out_features: int, *, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.down = nn.Linear(in_features, size)
        self.act = nn.GELU()
        self.up = nn.Linear(size, out_features)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dim != -1:
            x = x.movedim(self.dim, -1)
        y = self.up(self.act(self.down(x)))
        return y.movedim(-1, self.dim) if self.dim != -1 else y


class GatedPrefix(nn.Module):
    """Learned key/value vectors ("prefix") that every query of one attention module also attends to.

    The prefix attention is computed beside the module's own attention and added to its output
    through a per-head gate ``tanh(g)`` with ``g = 0`` at start (so the output is unchanged until
    training moves the gate). Needs an attention module with ``q_proj``/``out_proj`` and heads.
    """

    def __init__(self, attention: nn.Module, tokens: int) -> None:
        super().__init__()
        dim = attention.q_proj.out_features
        heads = int(getattr(attention, "num_heads", 0) or attention.config.num_attention_heads)
        self.heads, self.head_dim = heads, dim // heads
        self.key = nn.Parameter(torch.randn(tokens, dim) * 0.02)
        self.value = nn.Parameter(torch.randn(tokens, dim) * 0.02)
        self.gate = nn.Parameter(torch.zeros(heads))

    def forward(self, hidden: torch.Tensor, attention: nn.Module) -> torch.Tensor:
        b, t, _ = hidden.shape
        q = attention.q_proj(hidden).view(b, t, self.heads, self.head_dim)
        k = self.key.view(-1, self.heads, self.head_dim)
        v = self.value.view(-1, self.heads, self.head_dim)
        scores = torch.einsum("bthd,phd->bhtp", q, k) * self.head_dim ** -0.5
        context = torch.einsum("bhtp,phd->bthd", scores.softmax(dim=-1), v)
        context = context * torch.tanh(self.gate)[None, None, :, None]
        return nn.functional.linear(context.reshape(b, t, -1), attention.out_proj.weight)


def matching_modules(model: nn.Module, pattern: str, *, what: str, encoder: str,
                     kinds: tuple[type, ...] | None = None) -> list[tuple[str, nn.Module]]:
    """Submodules whose dotted name matches ``pattern`` (``re.search``); an error naming the options if none do."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{what} targets {pattern!r} is not a valid regular expression: {exc}.") from None
    found = [(name, m) for name, m in model.named_modules()
             if name and regex.search(name) and (kinds is None or isinstance(m, kinds))]
    if not found:
        names = [name for name, m in model.named_modules() if name and (kinds is None or isinstance(m, kinds))]
        raise ConfigError(f"{what} targets {pattern!r} match no module of encoder {encoder!r}; some of its modules: "
                          f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}. Pass a pattern that matches.")
    return found


def _key(name: str) -> str:
    return name.replace(".", "__")


def add_adapters(model: nn.Module, targets: Iterable[tuple[str, nn.Module]], *, size: int, mode: str,
                 store: nn.ModuleDict) -> list[torch.utils.hooks.RemovableHandle]:
    """Bottleneck adapters on each target's output: ``sequential`` (``y + A(y)``) or ``parallel`` (``y + A(x)``)."""
    if mode not in ("sequential", "parallel"):
        raise ConfigError(f"adapter mode {mode!r} must be 'sequential' or 'parallel'.")
    if size < 1:
        raise ConfigError(f"adapter size {size} must be a positive number of bottleneck units.")
    handles = []
    for name, module in targets:
        adapter = store[_key(name)] if _key(name) in store else None

        def hook(mod, args, kwargs, output, _name=name):
            primary = _primary(output)
            a = store[_key(_name)]
            if mode == "sequential":
                return _replace_primary(output, primary + a(primary))
            x = args[0] if args else kwargs["hidden_states"]
            delta = a(x)
            if delta.shape != primary.shape:
                raise ConfigError(f"parallel adapter on {_name!r}: the module maps {tuple(x.shape)} to "
                                  f"{tuple(primary.shape)}, so A(x) cannot be added to its output; use "
                                  "--adapter-mode sequential or targets whose output has their input's shape.")
            return _replace_primary(output, primary + delta)

        if adapter is None:
            dim = channel_dim(module)
            out_features = _width(module, output=True)
            in_features = _width(module, output=False) if mode == "parallel" else out_features
            store[_key(name)] = Bottleneck(in_features, size, out_features, dim=dim)
        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    return handles


def _width(module: nn.Module, *, output: bool) -> int:
    """Feature width of a module's output (or input), from its weights or its own projections."""
    if isinstance(module, nn.Linear):
        return module.out_features if output else module.in_features
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.out_channels if output else module.in_channels
    for attr in (("out_proj", "output_dense", "fc2", "dense") if output else ("q_proj", "intermediate_dense", "fc1")):
        sub = getattr(module, attr, None)
        if isinstance(sub, nn.Linear):
            return sub.out_features if output else sub.in_features
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"cannot tell the feature width of a {type(module).__name__}; target Linear/Conv layers "
                          "or attention/feed-forward blocks instead.")
    return linears[-1].out_features if output else linears[0].in_features


def add_prefixes(targets: Iterable[tuple[str, nn.Module]], *, tokens: int,
                 store: nn.ModuleDict) -> list[torch.utils.hooks.RemovableHandle]:
    """A :class:`GatedPrefix` beside each target attention module."""
    if tokens < 1:
        raise ConfigError(f"prompt tokens {tokens} must be at least 1.")
    handles = []
    for name, module in targets:
        if not all(isinstance(getattr(module, a, None), nn.Linear) for a in ("q_proj", "out_proj")):
            raise ConfigError(f"prompt tuning needs attention modules with q_proj/out_proj; {name!r} is a "
                              f"{type(module).__name__}. Prompts apply to transformer encoders only.")
        if _key(name) not in store:
            store[_key(name)] = GatedPrefix(module, tokens)

        def hook(mod, args, kwargs, output, _name=name):
            hidden = args[0] if args else kwargs["hidden_states"]
            primary = _primary(output)
            return _replace_primary(output, primary + store[_key(_name)](hidden, mod).to(primary.dtype))

        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    return handles
