"""Chord recognition: weighted overlap of time-stamped chord labels (mir_eval.chord).

Conventions:
    A clip's chords are ``(intervals, labels)``: ``intervals`` an ``(n, 2)`` array of start/end
    times in **seconds**, sorted and non-overlapping, and ``labels`` Harte-syntax strings
    (``C:maj``, ``A:min``, ``N`` for no chord). The estimate is aligned to the reference's span
    (mir_eval's ``adjust_intervals``); ``majmin`` compares root and major/minor quality (other
    chords are left out of the score), ``root`` the root only. Each is the duration-weighted share of
    agreeing time, averaged over clips weighted by their duration.
"""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError


def validate(intervals, labels, *, name: str) -> tuple[np.ndarray, list[str]]:
    import mir_eval

    array = np.asarray(intervals, dtype=float).reshape(-1, 2)
    if len(array) != len(labels) or not len(array):
        raise ConfigError(f"{name}: intervals and labels must be equal-length and non-empty, got {len(array)} "
                          f"intervals and {len(labels)} labels.")
    if np.any(array[:, 1] <= array[:, 0]) or np.any(array[1:, 0] < array[:-1, 1] - 1e-9):
        raise ConfigError(f"{name}: intervals must have end > start and be sorted without overlaps (seconds).")
    try:
        for label in labels:
            mir_eval.chord.validate_chord_label(label)
    except (ValueError, mir_eval.chord.InvalidChordException) as exc:
        raise ConfigError(f"{name}: {exc}; use Harte syntax such as 'C:maj', 'A:min' or 'N'.") from None
    return array, list(labels)


def chord_overlap(reference: list, estimate: list) -> dict[str, float]:
    """``{"majmin": ..., "root": ...}`` for lists of clips, each ``(intervals, labels)``."""
    import mir_eval

    if len(reference) != len(estimate) or not reference:
        raise ConfigError("reference and estimate must be equal-length, non-empty lists of (intervals, labels) clips.")
    totals = {"majmin": 0.0, "root": 0.0}
    weights = {"majmin": 0.0, "root": 0.0}
    for (ref_i, ref_l), (est_i, est_l) in zip(reference, estimate):
        ref_i, ref_l = validate(ref_i, ref_l, name="reference")
        est_i, est_l = validate(est_i, est_l, name="estimate")
        est_i, est_l = mir_eval.util.adjust_intervals(est_i, est_l, ref_i.min(), ref_i.max(),
                                                      mir_eval.chord.NO_CHORD, mir_eval.chord.NO_CHORD)
        merged, ref_m, est_m = mir_eval.util.merge_labeled_intervals(ref_i, ref_l, est_i, est_l)
        durations = mir_eval.util.intervals_to_durations(merged)
        for name, compare in (("majmin", mir_eval.chord.majmin), ("root", mir_eval.chord.root)):
            comparison = compare(ref_m, est_m)
            counted = comparison >= 0  # -1: a reference chord outside the vocabulary, left out
            weight = float(durations[counted].sum())
            if weight > 0:
                totals[name] += mir_eval.chord.weighted_accuracy(comparison, durations) * weight
                weights[name] += weight
    return {k: totals[k] / weights[k] if weights[k] else float("nan") for k in totals}
