"""Signal effects shared by robustness perturbations and training augmentation: gain, Butterworth
filters (scipy), a synthetic room and pink noise. Each takes a mono float32 waveform and returns one
of the same length; random parts take a ``numpy`` generator, so callers control reproducibility.
"""

from __future__ import annotations

import numpy as np


def gain(wave: np.ndarray, db: float) -> np.ndarray:
    return (wave * np.float32(10 ** (db / 20))).astype(np.float32)


def butter_filter(wave: np.ndarray, sample_rate: int, *, kind: str, cutoff_hz: float, order: int) -> np.ndarray:
    """``kind`` ``lowpass`` or ``highpass``; a cutoff at or above Nyquist leaves the wave as it is."""
    from scipy.signal import butter, sosfilt

    if cutoff_hz >= sample_rate / 2:
        return wave
    return sosfilt(butter(order, cutoff_hz, btype=kind, fs=sample_rate, output="sos"), wave).astype(np.float32)


def tilt(wave: np.ndarray, sample_rate: int, *, db_per_octave: float, pivot_hz: float = 1000.0) -> np.ndarray:
    """A gentle spectral tilt: ``db_per_octave`` of gain per octave above ``pivot_hz`` (and as much
    cut per octave below it), flat below 50 Hz and capped at +-12 dB; the same length, no delay."""
    spectrum = np.fft.rfft(wave.astype(np.float64))
    freqs = np.fft.rfftfreq(wave.size, 1 / sample_rate).clip(50.0, None)
    gain_db = np.clip(db_per_octave * np.log2(freqs / pivot_hz), -12.0, 12.0)
    return np.fft.irfft(spectrum * 10 ** (gain_db / 20), n=wave.size).astype(np.float32)


def room(wave: np.ndarray, sample_rate: int, rng: np.random.Generator, *, rt60_s: float, wet: float) -> np.ndarray:
    """Mix of the dry wave and its convolution with exponentially decaying noise (-60 dB at ``rt60_s``,
    unit energy): a synthetic room; ``wet`` in [0, 1]."""
    from scipy.signal import fftconvolve

    t = np.arange(max(1, int(rt60_s * sample_rate))) / sample_rate
    response = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60_s)
    response /= max(float(np.sqrt(np.sum(response**2))), 1e-12)
    tail = fftconvolve(wave, response)[: wave.size]
    return ((1 - wet) * wave + wet * tail).astype(np.float32)


def pink_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a 1/f power spectrum (white noise shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=samples)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def add_pink_noise(wave: np.ndarray, rng: np.random.Generator, *, snr_db: float) -> np.ndarray:
    """Pink noise at ``snr_db`` below the wave's own RMS (nothing added to a silent wave)."""
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    return (wave + pink_noise(wave.size, rng) * rms * 10 ** (-snr_db / 20)).astype(np.float32)
