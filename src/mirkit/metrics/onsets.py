"""Onset detection F-measure (mir_eval.onset).

Conventions:
    Onsets are times in **seconds** from the clip start, one array per clip (sorted; duplicates are
    estimates too, and a second estimate for one reference counts as a false positive). An
    estimate within 50 ms of an unmatched reference onset is a hit (mir_eval's window, MIREX's).
    Precision, recall and F-measure are averaged over clips.
"""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError

WINDOW_S = 0.05


def validate(reference_s: list, estimate_s: list) -> list[tuple[np.ndarray, np.ndarray]]:
    if len(reference_s) != len(estimate_s) or not reference_s:
        raise ConfigError("reference and estimated onsets must be equal-length, non-empty lists of clips.")
    out = []
    for ref, est in zip(reference_s, estimate_s):
        ref, est = np.asarray(ref, dtype=float).reshape(-1), np.asarray(est, dtype=float).reshape(-1)
        if (ref.size and ref.max() > 36000) or (est.size and est.max() > 36000):
            raise ConfigError("onset times look like frames or milliseconds; pass seconds.")
        if np.any(np.diff(ref) < 0) or np.any(np.diff(est) < 0):
            raise ConfigError("onset times must be sorted within each clip.")
        out.append((ref, est))
    return out


def evaluate_onsets(reference_s: list, estimate_s: list, *, window_s: float = WINDOW_S) -> dict[str, float]:
    """Mean F-measure, precision and recall over clips (mir_eval.onset.f_measure, ``window_s`` either side)."""
    import mir_eval

    if window_s <= 0:
        raise ConfigError(f"window_s={window_s} must be a positive number of seconds (mir_eval uses 0.05).")
    scores: dict[str, list[float]] = {"f_measure": [], "precision": [], "recall": []}
    for ref, est in validate(reference_s, estimate_s):
        if not ref.size and not est.size:
            f, p, r = 1.0, 1.0, 1.0  # nothing to find, nothing found
        elif not ref.size or not est.size:
            f, p, r = 0.0, 0.0, 0.0
        else:
            f, p, r = mir_eval.onset.f_measure(ref, est, window=window_s)
        scores["f_measure"].append(f)
        scores["precision"].append(p)
        scores["recall"].append(r)
    return {k: float(np.mean(v)) for k, v in scores.items()}


__all__ = ["WINDOW_S", "evaluate_onsets", "validate"]
