"""Waveform augmentation of training crops (``mirkit tune --augment gain,eq,room,noise``).

Every augmentation here leaves every label of every task as it is (level, spectral tilt, room and
noise change no key, pitch, tempo, beat, chord, note, instrument, genre or tag), so none needs a label
rule; augmentations that would change a label (pitch shift, time stretch) are not offered. Each one
named is applied to a crop with probability 0.5 with parameters drawn from the ranges below, after
the crop is cut and before the encoder. Draws come from the batch's own generator, so a resumed run
sees the same augmented batches as an uninterrupted one. Evaluation audio is never augmented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mirkit.audio import effects
from mirkit.registry import Registry

PROBABILITY = 0.5


@dataclass(frozen=True)
class Augmentation:
    name: str
    description: str
    apply: Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation", listing_hint="mirkit tune --help (--augment)")


def _eq(wave: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return effects.butter_filter(wave, rate, kind="lowpass", cutoff_hz=float(rng.uniform(3000, 8000)), order=4)
    return effects.butter_filter(wave, rate, kind="highpass", cutoff_hz=float(rng.uniform(80, 400)), order=2)


for _spec in (
    Augmentation("gain", "level change, uniform in -12..+6 dB", lambda w, r, g: effects.gain(w, float(g.uniform(-12, 6)))),
    Augmentation("eq", "low-pass at 3-8 kHz or high-pass at 80-400 Hz (Butterworth)", _eq),
    Augmentation("room", "synthetic room, RT60 0.2-0.8 s, 10-40 % wet",
                 lambda w, r, g: effects.room(w, r, g, rt60_s=float(g.uniform(0.2, 0.8)), wet=float(g.uniform(0.1, 0.4)))),
    Augmentation("noise", "pink noise at 10-30 dB SNR",
                 lambda w, r, g: effects.add_pink_noise(w, g, snr_db=float(g.uniform(10, 30)))),
):
    AUGMENTATIONS.register(_spec.name, _spec)


def parse_augment(value: str) -> tuple[str, ...]:
    """``"none"`` or a comma list of :data:`AUGMENTATIONS` names (unknown names fail with a suggestion)."""
    if value.strip() in ("", "none"):
        return ()
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    for name in names:
        AUGMENTATIONS.get(name)
    return names


def augment_crop(wave: np.ndarray, sample_rate: int, names: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """``wave`` through each named augmentation with probability :data:`PROBABILITY` (in the given order)."""
    for name in names:
        if rng.random() < PROBABILITY:
            wave = AUGMENTATIONS.get(name).apply(wave, sample_rate, rng)
    return wave.astype(np.float32, copy=False)
