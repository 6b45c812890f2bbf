"""Checks run on every decoded, resampled signal before it reaches an encoder."""

from __future__ import annotations

import numpy as np

from mirkit.errors import AudioTooShortError, InvalidAudioError


def first_non_finite(samples: np.ndarray) -> int | None:
    """Index of the first NaN/Inf sample along the last axis, or None when all are finite."""
    bad = ~np.isfinite(samples)
    if not bad.any():
        return None
    flat = bad.reshape(-1, bad.shape[-1]).any(axis=0) if bad.ndim > 1 else bad
    return int(np.argmax(flat))


def check_waveform(
    waveform: np.ndarray,
    *,
    sample_rate: int,
    min_samples: int = 1,
    name: str = "<waveform>",
    offset_s: float = 0.0,
) -> None:
    """Raise if ``waveform`` is empty, holds NaN/Inf, or is shorter than ``min_samples``.

    Args:
        waveform: ``(samples,)`` or ``(channels, samples)``.
        sample_rate: rate of ``waveform`` in Hz (used to report times).
        min_samples: the consumer's minimum input length in samples.
        name: the file or item named in the error message.
        offset_s: time of ``waveform[..., 0]`` within the file, for messages.
    """
    num_samples = waveform.shape[-1] if waveform.ndim else 0
    if num_samples == 0:
        raise InvalidAudioError(
            f"{name!r} holds no audio samples (0 frames after decoding). "
            "Expected a non-empty recording; re-export the file or remove it from the input.",
            reason="empty",
        )
    bad_at = first_non_finite(waveform)
    if bad_at is not None:
        count = int((~np.isfinite(waveform)).sum())
        raise InvalidAudioError(
            f"{name!r} has {count} non-finite samples (NaN/Inf; first at {offset_s + bad_at / sample_rate:.3f} s). "
            "Expected finite samples; repair or re-render the file. It was not embedded.",
            reason="non_finite",
        )
    if num_samples < min_samples:
        raise AudioTooShortError(
            f"{name!r} is {num_samples / sample_rate:.4f} s long ({num_samples} samples at {sample_rate} Hz) "
            f"but at least {min_samples / sample_rate:.4f} s ({min_samples} samples) is needed. "
            "Use longer clips, or an encoder with a shorter minimum input (see `mirkit encoders`)."
        )
