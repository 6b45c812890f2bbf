"""Regression (e.g. arousal/valence): R^2 per output dimension (scikit-learn).

Conventions:
    ``reference`` and ``estimate``: ``(clips,)`` or ``(clips, dims)`` real values in the same units.
"""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError
from mirkit.metrics._checks import as_array, same_length


def validate(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    ref = as_array(reference, name="reference", ndim=(1, 2))
    est = as_array(estimate, name="estimate", ndim=(1, 2))
    same_length(ref, est, names=("reference", "estimate"))
    ref, est = ref.reshape(len(ref), -1), est.reshape(len(est), -1)
    if ref.shape != est.shape:
        raise ConfigError(f"reference {ref.shape} and estimate {est.shape} must have the same shape.")
    return ref, est


def r2_per_dimension(reference, estimate) -> list[float]:
    from sklearn.metrics import r2_score

    ref, est = validate(reference, estimate)
    return [float(v) for v in r2_score(ref, est, multioutput="raw_values")]


def evaluate_regression(reference, estimate) -> dict[str, float]:
    values = r2_per_dimension(reference, estimate)
    out = {f"r2_{i}": v for i, v in enumerate(values)}
    out["r2"] = float(np.mean(values))
    return out
