"""Loudness policies: one gain per file, applied before an encoder sees the audio, so that level is
handled explicitly and features stay keyed by how it was handled (``FeatureRecipe.loudness``).

- ``none``: the file as decoded (the default; earlier recipes are this).
- ``peak``: scaled so that its largest sample is at :data:`PEAK_DBFS` (-1 dBFS).
- ``lufs``: scaled to an integrated loudness of :data:`TARGET_LUFS` (-23 LUFS, EBU R128) measured
  by ITU-R BS.1770-4 (pyloudnorm), then limited so that no sample clips (peak at most -1 dBFS).

A silent file (or one shorter than the 400 ms gating block of BS.1770) keeps its level.
"""

from __future__ import annotations

import math

import numpy as np

from mirkit.errors import ConfigError

POLICIES = ("none", "peak", "lufs")
PEAK_DBFS = -1.0
TARGET_LUFS = -23.0


def loudness_gain(wave: np.ndarray, *, sample_rate: int, policy: str) -> float:
    """The linear gain that brings mono ``wave`` to ``policy``'s target (1.0 for ``none`` or silence)."""
    if policy not in POLICIES:
        raise ConfigError(f"loudness={policy!r} must be one of {', '.join(POLICIES)}.")
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if policy == "none" or peak <= 0:
        return 1.0
    ceiling = 10 ** (PEAK_DBFS / 20) / peak
    if policy == "peak":
        return ceiling
    import pyloudnorm

    if len(wave) < int(0.4 * sample_rate):
        return 1.0
    measured = pyloudnorm.Meter(sample_rate).integrated_loudness(wave.astype(np.float64))
    if not math.isfinite(measured):
        return 1.0
    return min(10 ** ((TARGET_LUFS - measured) / 20), ceiling)


def apply_loudness(wave: np.ndarray, *, sample_rate: int, policy: str) -> np.ndarray:
    """``wave`` scaled by :func:`loudness_gain` (returned as is for ``none``), same dtype."""
    if policy == "none":
        return wave
    return (wave * loudness_gain(wave, sample_rate=sample_rate, policy=policy)).astype(wave.dtype, copy=False)


__all__ = ["PEAK_DBFS", "POLICIES", "TARGET_LUFS", "apply_loudness", "loudness_gain"]
