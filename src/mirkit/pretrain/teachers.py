"""Per-token teacher features computed from clean audio.

- :func:`cqt_target`: MERT's musical teacher, a constant-Q transform of the clip (here 84 bins, 12
  per octave from C1 = 32.7 Hz, one frame per token; MERT uses 336 bins, 48 per octave, at 75 Hz),
  as ``log1p`` magnitudes ``(tokens, bins)``. Computed with librosa in the data-loading workers.
- :func:`kmeans_features`: per-token mean standardised log-mel and chroma (MERT-v0's k-means teacher
  used log-mel and chroma-like features), ``(batch, tokens, n_mels + 12)``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

CQT_BINS = 84
CQT_BINS_PER_OCTAVE = 12
CQT_FMIN_HZ = 32.70319566257483  # C1


def cqt_target(wave: np.ndarray, *, sample_rate: int, hop: int, tokens: int) -> np.ndarray:
    """``log1p(|CQT|)`` of a mono clip, one frame per token hop, cut or zero-padded to ``tokens`` rows."""
    import librosa

    out = np.zeros((tokens, CQT_BINS), dtype=np.float32)
    if len(wave) == 0 or tokens == 0:
        return out
    cqt = np.abs(librosa.cqt(wave.astype(np.float32), sr=sample_rate, hop_length=hop, fmin=CQT_FMIN_HZ,
                             n_bins=CQT_BINS, bins_per_octave=CQT_BINS_PER_OCTAVE))
    frames = np.log1p(cqt).T[:tokens]
    out[: len(frames)] = frames
    return out


def check_cqt_hop(hop: int) -> None:
    """librosa's CQT halves the rate once per octave below the top one: the hop must survive that."""
    from mirkit.errors import ConfigError

    step = 2 ** (CQT_BINS // CQT_BINS_PER_OCTAVE - 1)
    if hop % step:
        raise ConfigError(f"the token hop ({hop} samples) must be a multiple of {step} for the CQT teacher; "
                          "choose hop and stack so that hop * stack is (e.g. hop 160, stack 4).")


@functools.lru_cache(maxsize=4)
def _chroma_basis(sample_rate: int, n_fft: int) -> torch.Tensor:
    """librosa's chroma filterbank ``(12, n_fft // 2 + 1)``, built once per rate and FFT size (not per step)."""
    import librosa

    return torch.from_numpy(librosa.filters.chroma(sr=sample_rate, n_fft=n_fft)).float()


def kmeans_features(encoder, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token mean standardised log-mel (``n_mels``) and chroma (12, max-normalised per token)."""
    config = encoder.config
    stacked, valid = encoder.tokens(waves, lengths)
    batch, count = stacked.shape[:2]
    mel = stacked.reshape(batch, count, config.stack, config.n_mels).mean(dim=2)
    spec = torch.stft(waves.float(), config.n_fft, config.hop, window=encoder.window, center=True,
                      pad_mode="constant", return_complex=True)
    power = spec.real.square() + spec.imag.square()
    chroma = torch.matmul(_chroma_basis(config.sample_rate, config.n_fft).to(power.device), power).transpose(1, 2)[:, : count * config.stack]
    chroma = chroma.reshape(batch, count, config.stack, 12).mean(dim=2)
    chroma = chroma / chroma.amax(dim=-1, keepdim=True).clamp(min=1e-8)
    return torch.cat([mel, chroma], dim=-1), valid
