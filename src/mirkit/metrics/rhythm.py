"""Tempo and beats.

Conventions:
    Tempi are in beats per minute (BPM), one per clip. Acc1: the estimate is within 4% of the
    reference. Acc2: within 4% of the reference times 1/3, 1/2, 1, 2 or 3 (octave errors
    allowed), as in Gouyon et al. (2006). Beat and downbeat times are in **seconds** (not frames),
    one array per clip; beats before 5 s are trimmed (mir_eval's convention for songs; ``skip_s``
    sets another time for short clips) for the beat metrics.
    Beat F-measure uses a 70 ms window; CMLt and AMLt are mir_eval's continuity scores (correct
    metrical level, and any allowed level, total). Scores are averaged over clips.
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


def _clips(reference_s: list, estimate_s: list, *, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    if len(reference_s) != len(estimate_s) or not reference_s:
        raise ConfigError(f"reference and estimated {name} must be equal-length, non-empty lists of clips.")
    out = []
    for ref, est in zip(reference_s, estimate_s):
        ref, est = np.asarray(ref, dtype=float), np.asarray(est, dtype=float)
        if ref.size and ref.max() > 36000:
            raise ConfigError(f"{name} times look like frames or milliseconds; pass seconds.")
        if np.any(np.diff(ref) <= 0) or np.any(np.diff(est) <= 0):
            raise ConfigError(f"{name} times must be strictly increasing within each clip.")
        out.append((ref, est))
    return out


def beat_f_measure(reference_beats_s: list, estimated_beats_s: list) -> float:
    """Mean mir_eval beat F-measure (70 ms) over clips; each item is one clip's beat times in seconds."""
    return evaluate_beats(reference_beats_s, estimated_beats_s)["f_measure"]


def evaluate_beats(reference_beats_s: list, estimated_beats_s: list, *, skip_s: float = 5.0) -> dict[str, float]:
    """Mean F-measure, CMLt and AMLt over clips (beats in seconds; those before ``skip_s`` left out:
    mir_eval's 5 s suits songs, short clips need less)."""
    import mir_eval

    if skip_s < 0:
        raise ConfigError(f"skip_s={skip_s} must be >= 0 seconds.")
    scores: dict[str, list[float]] = {"f_measure": [], "cmlt": [], "amlt": []}
    for ref, est in _clips(reference_beats_s, estimated_beats_s, name="beat"):
        ref, est = mir_eval.beat.trim_beats(ref, skip_s), mir_eval.beat.trim_beats(est, skip_s)
        scores["f_measure"].append(mir_eval.beat.f_measure(ref, est, 0.07))
        _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
        scores["cmlt"].append(cmlt)
        scores["amlt"].append(amlt)
    return {k: float(np.mean(v)) for k, v in scores.items()}


def downbeat_f_measure(reference_downbeats_s: list, estimated_downbeats_s: list) -> float:
    """Mean F-measure (70 ms) of downbeat times over clips (no trimming: downbeats are sparse)."""
    import mir_eval

    return float(np.mean([mir_eval.beat.f_measure(ref, est, 0.07)
                          for ref, est in _clips(reference_downbeats_s, estimated_downbeats_s, name="downbeat")]))
