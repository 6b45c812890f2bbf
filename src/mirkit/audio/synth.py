"""Deterministic test signals built in code (no files, no downloads)."""

from __future__ import annotations

import numpy as np


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def harmonic_tone(*, midi: float, duration_s: float, sample_rate: int, harmonics: int = 6,
                  decay: float = 0.6, amplitude: float = 0.3) -> np.ndarray:
    """A plucked-string-like tone: ``harmonics`` partials with geometric ``decay`` and an exponential envelope."""
    t = np.arange(int(duration_s * sample_rate)) / sample_rate
    f0 = midi_to_hz(midi)
    y = np.zeros_like(t)
    for k in range(1, harmonics + 1):
        if k * f0 < sample_rate / 2:
            y += decay ** (k - 1) * np.sin(2 * np.pi * k * f0 * t)
    envelope = np.minimum(1.0, t / 0.01) * np.exp(-t * 1.5)
    return (amplitude * y * envelope / max(1e-9, np.abs(y).max())).astype(np.float32)


def chord_progression(*, root_midi: int, minor: bool, duration_s: float, sample_rate: int) -> np.ndarray:
    """I-IV-V-I triads in the given key, evenly spaced over ``duration_s``."""
    third = 3 if minor else 4
    steps = [0, 5, 7, 0]
    seg = duration_s / len(steps)
    parts = []
    for step in steps:
        notes = [root_midi + step, root_midi + step + third, root_midi + step + 7]
        parts.append(sum(harmonic_tone(midi=n, duration_s=seg, sample_rate=sample_rate, amplitude=0.2) for n in notes))
    return np.concatenate(parts).astype(np.float32)


def click_track(*, bpm: float, duration_s: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Noise-burst drum hits on every beat (accent on the downbeat) at ``bpm``."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(duration_s * sample_rate), dtype=np.float32)
    hit_len = int(0.05 * sample_rate)
    hit = rng.standard_normal(hit_len).astype(np.float32) * np.exp(-np.arange(hit_len) / (0.01 * sample_rate))
    beat = 60.0 / bpm
    for i, start in enumerate(np.arange(0, duration_s, beat)):
        s = int(start * sample_rate)
        piece = hit[: max(0, min(hit_len, len(y) - s))] * (0.5 if i % 4 == 0 else 0.25)
        y[s : s + len(piece)] += piece
    return y


def demo_clips(*, sample_rate: int = 22050, duration_s: float = 6.0) -> dict[str, np.ndarray]:
    """A small built-in set of labelled clips: notes, chord progressions and drum patterns."""
    clips: dict[str, np.ndarray] = {}
    for midi in (48, 60, 67, 76):
        clips[f"note_midi{midi}"] = harmonic_tone(midi=midi, duration_s=duration_s, sample_rate=sample_rate)
    for root, minor, name in ((60, False, "C_major"), (57, True, "A_minor"), (62, False, "D_major"), (64, True, "E_minor")):
        clips[f"chords_{name}"] = chord_progression(root_midi=root, minor=minor, duration_s=duration_s,
                                                    sample_rate=sample_rate)
    for bpm in (80, 120, 160):
        clips[f"drums_{bpm}bpm"] = click_track(bpm=bpm, duration_s=duration_s, sample_rate=sample_rate, seed=bpm)
    return clips
