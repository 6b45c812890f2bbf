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
