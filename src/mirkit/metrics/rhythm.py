"""Tempo and beats.

Conventions:
    Tempi are in beats per minute (BPM), one per clip. Acc1: the estimate is within 4% of the
    reference. Acc2: within 4% of the reference times 1/3, 1/2, 1, 2 or 3 (octave errors
    allowed), as in Gouyon et al. (2006). Beat times are in **seconds** (not frames); beat
    F-measure is mir_eval's with a 70 ms window, averaged over clips.
"""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError
from mirkit.metrics._checks import as_array, same_length

_FACTORS = (1 / 3, 1 / 2, 1.0, 2.0, 3.0)


def validate(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    ref, est = as_array(reference, name="reference", ndim=1), as_array(estimate, name="estimate", ndim=1)
    same_length(ref, est, names=("reference", "estimate"))
    if (ref <= 0).any():
        raise ConfigError("reference tempi must be positive BPM values.")
    if ref.max() > 1000:
        raise ConfigError(f"reference tempo {ref.max():g} is implausible as BPM; did you pass beat periods in ms?")
    return ref, est


def tempo_accuracy(reference, estimate, *, tolerance: float = 0.04) -> tuple[float, float]:
    """``(acc1, acc2)``."""
    ref, est = validate(reference, estimate)
    acc1 = np.abs(est - ref) <= tolerance * ref
    acc2 = np.any([np.abs(est - f * ref) <= tolerance * f * ref for f in _FACTORS], axis=0)
    return float(acc1.mean()), float(acc2.mean())


def evaluate_tempo(reference, estimate) -> dict[str, float]:
    acc1, acc2 = tempo_accuracy(reference, estimate)
    return {"acc1": acc1, "acc2": acc2}


def beat_f_measure(reference_beats_s: list, estimated_beats_s: list) -> float:
    """Mean mir_eval beat F-measure (70 ms) over clips; each item is one clip's beat times in seconds."""
    import mir_eval

    if len(reference_beats_s) != len(estimated_beats_s) or not reference_beats_s:
        raise ConfigError("reference_beats_s and estimated_beats_s must be equal-length, non-empty lists of clips.")
    scores = []
    for ref, est in zip(reference_beats_s, estimated_beats_s):
        ref, est = np.asarray(ref, dtype=float), np.asarray(est, dtype=float)
        if ref.size and ref.max() > 36000:
            raise ConfigError("beat times look like frames or milliseconds; pass seconds.")
        scores.append(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(ref), mir_eval.beat.trim_beats(est), 0.07))
    return float(np.mean(scores))
