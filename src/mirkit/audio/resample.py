"""Sample-rate conversion with soxr."""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError

#: soxr quality recipe used everywhere; part of every feature recipe.
DEFAULT_QUALITY = "HQ"


def _check_rate(value: int, what: str) -> None:
    if not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"{what}={value!r} must be a positive integer number of Hz (e.g. 16000).")


def resample(
    waveform: np.ndarray, *, orig_sample_rate: int, sample_rate: int, quality: str = DEFAULT_QUALITY
) -> np.ndarray:
    """Resample ``waveform`` (``(samples,)`` or ``(channels, samples)``) to ``sample_rate`` Hz.

    Returns float32; the input is returned unchanged when the rates already match.
    """
    import soxr

    _check_rate(orig_sample_rate, "orig_sample_rate")
    _check_rate(sample_rate, "sample_rate")
    waveform = np.asarray(waveform, dtype=np.float32)
    if orig_sample_rate == sample_rate:
        return waveform
    # soxr wants (samples, channels)
    out = soxr.resample(waveform.T, orig_sample_rate, sample_rate, quality=quality)
    return np.ascontiguousarray(out.T, dtype=np.float32)
