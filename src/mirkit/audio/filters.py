"""Filterbanks computed once with librosa, then read from the cache.

``import librosa.filters`` pulls in ``scipy.signal`` (about 1 s on a 2-core CPU), which every
process that builds musicnn or a log-mel encoder paid, e.g. each ``mirkit search --like FILE``.
The basis is saved as ``$MIRKIT_CACHE/filters/mel-...-librosa<version>.npy``; a new librosa
version computes it afresh.
"""

from __future__ import annotations

import io
from importlib.metadata import version

import numpy as np

from mirkit.files import atomic_write_bytes, cache_dir


def logfreq_basis(*, sample_rate: int, n_fft: int, n_bins: int, fmin_hz: float, bins_per_octave: int) -> np.ndarray:
    """Triangular filters centred on log-spaced frequencies, float32 ``(n_bins, n_fft // 2 + 1)``.

    Bin ``k`` is centred on ``fmin_hz * 2 ** (k / bins_per_octave)`` and rises from the centre below
    to the centre above (a constant-Q-like spectrogram; madmom's log-filtered spectrogram is the same
    idea). Each filter sums to 1, and one narrower than the STFT's bin spacing takes the nearest STFT
    bin whole, so no low bin is empty (neighbours may then share an STFT bin: the STFT cannot tell
    them apart there).
    """
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    centres = fmin_hz * 2.0 ** (np.arange(-1, n_bins + 1) / bins_per_octave)
    basis = np.zeros((n_bins, len(freqs)), dtype=np.float64)
    for k in range(n_bins):
        low, mid, high = centres[k], centres[k + 1], centres[k + 2]
        rise = (freqs - low) / (mid - low)
        fall = (high - freqs) / (high - mid)
        basis[k] = np.clip(np.minimum(rise, fall), 0.0, None)
        if basis[k].sum() <= 0:
            basis[k, int(np.argmin(np.abs(freqs - mid)))] = 1.0
        basis[k] /= basis[k].sum()
    return basis.astype(np.float32)


def mel_basis(*, sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)`` (Slaney), float32 ``(n_mels, n_fft // 2 + 1)``."""
    path = cache_dir("filters") / f"mel-{sample_rate}-{n_fft}-{n_mels}-librosa{version('librosa')}.npy"
    try:
        return np.load(path)
    except (OSError, ValueError):
        pass
    import librosa

    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, basis)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError:  # a read-only cache only costs the next process the same second
        pass
    return basis
