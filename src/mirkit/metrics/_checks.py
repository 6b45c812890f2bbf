"""Shared input checks for metric modules."""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError


def as_array(values, *, name: str, ndim: int | tuple[int, ...], dtype=float) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in allowed:
        raise ConfigError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {array.shape}.")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ConfigError(f"{name} holds NaN or Inf values.")
    return array


def same_length(a: np.ndarray, b: np.ndarray, *, names: tuple[str, str]) -> None:
    if len(a) != len(b):
        raise ConfigError(f"{names[0]} has {len(a)} items but {names[1]} has {len(b)}; they must match one to one.")
    if len(a) == 0:
        raise ConfigError(f"{names[0]} and {names[1]} are empty; a metric needs at least one item.")
