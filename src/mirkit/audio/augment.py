"""Waveform augmentation of training audio (``mirkit tune --augment gain,eq,room,noise,pitch,stretch``;
the booster's offline copies, ``mirkit boost --augment``).

Two kinds:

- label-preserving (``gain``, ``eq``, ``room``, ``noise``): level, spectral tilt, room and noise change
  no key, pitch, tempo, beat, chord, note, instrument, genre or tag;
- label-changing (``pitch``: a shift by whole semitones; ``stretch``: a change of speed without a
  change of pitch), each changing one *facet* of the music (``semitones`` or ``rate``). A task takes
  one only where :mod:`mirkit.data.label_rules` has a rule for that facet (the key and the pitch are
  transposed, the tempo scaled, or the label is declared unchanged); anything else is refused before
  the run starts, so no label changes silently.

Each one named is applied to a crop with probability 0.5 with parameters drawn from the ranges below,
after the crop is cut and before the encoder; a label-changing draw that would carry a label outside
its task's classes (a pitch beyond the vocabulary) leaves the crop as it is. Draws come from the
batch's own generator, so a resumed run sees the same augmented batches as an uninterrupted one.
Evaluation audio is never augmented. Pitch shift and time stretch are librosa's (phase vocoder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mirkit.audio import effects
from mirkit.registry import Registry

PROBABILITY = 0.5
SEMITONES = (-2, -1, 1, 2)
RATE_RANGE = (0.85, 1.18)  # speed factors of ``stretch`` (the tempo is scaled by the same factor)
FACETS = ("semitones", "rate")


@dataclass(frozen=True)
class Augmentation:
    """``apply(wave, sample_rate, rng)`` for a label-preserving augmentation; a label-changing one names its
    ``facet`` and has ``draw(rng) -> amount`` and ``change(wave, sample_rate, amount)`` instead."""

    name: str
    description: str
    apply: Callable[[np.ndarray, int, np.random.Generator], np.ndarray] | None = None
    facet: str | None = None
    draw: Callable[[np.random.Generator], float] | None = None
    change: Callable[[np.ndarray, int, float], np.ndarray] | None = None


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation", listing_hint="mirkit tune --help (--augment)")


def _eq(wave: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return effects.butter_filter(wave, rate, kind="lowpass", cutoff_hz=float(rng.uniform(3000, 8000)), order=4)
    return effects.butter_filter(wave, rate, kind="highpass", cutoff_hz=float(rng.uniform(80, 400)), order=2)


def _pitch_shift(wave: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    import librosa

    return librosa.effects.pitch_shift(wave.astype(np.float32), sr=rate, n_steps=float(semitones))


def _stretch(wave: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """``factor`` > 1 plays faster (shorter); the result is cut to the crop's length when longer."""
    import librosa

    return librosa.effects.time_stretch(wave.astype(np.float32), rate=float(factor))[: len(wave)]


for _spec in (
    Augmentation("gain", "level change, uniform in -12..+6 dB",
                 apply=lambda w, r, g: effects.gain(w, float(g.uniform(-12, 6)))),
    Augmentation("eq", "low-pass at 3-8 kHz or high-pass at 80-400 Hz (Butterworth)", apply=_eq),
    Augmentation("room", "synthetic room, RT60 0.2-0.8 s, 10-40 % wet",
                 apply=lambda w, r, g: effects.room(w, r, g, rt60_s=float(g.uniform(0.2, 0.8)),
                                                    wet=float(g.uniform(0.1, 0.4)))),
    Augmentation("noise", "pink noise at 10-30 dB SNR",
                 apply=lambda w, r, g: effects.add_pink_noise(w, g, snr_db=float(g.uniform(10, 30)))),
    Augmentation("pitch", f"pitch shift by {', '.join(f'{s:+d}' for s in SEMITONES)} semitones (labels follow: key "
                 "and pitch transposed)", facet="semitones", draw=lambda g: float(g.choice(SEMITONES)),
                 change=_pitch_shift),
    Augmentation("stretch", f"time stretch, speed x{RATE_RANGE[0]}-{RATE_RANGE[1]} (labels follow: tempo scaled)",
                 facet="rate", draw=lambda g: float(g.uniform(*RATE_RANGE)), change=_stretch),
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


def changed_facets(names: tuple[str, ...]) -> list[str]:
    """The label facets that the named augmentations change (empty: all label-preserving)."""
    return [AUGMENTATIONS.get(n).facet for n in names if AUGMENTATIONS.get(n).facet is not None]  # type: ignore[misc]


def augment_crop(wave: np.ndarray, sample_rate: int, names: tuple[str, ...], rng: np.random.Generator, *,
                 accept: Callable[[dict[str, float]], bool] | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """``wave`` through each named augmentation with probability :data:`PROBABILITY` (in the given order),
    and the label changes applied (``{"semitones": 2.0}``, ``{"rate": 1.1}``; empty when none).
    ``accept(changes)`` may refuse a label-changing draw (its label would leave the task's classes)."""
    changes: dict[str, float] = {}
    for name in names:
        if rng.random() >= PROBABILITY:
            continue
        spec = AUGMENTATIONS.get(name)
        if spec.facet is None:
            wave = spec.apply(wave, sample_rate, rng)  # type: ignore[misc]
            continue
        amount = spec.draw(rng)  # type: ignore[misc]
        proposed = dict(changes)
        proposed[spec.facet] = (proposed.get(spec.facet, 0.0) + amount if spec.facet == "semitones"
                                else proposed.get(spec.facet, 1.0) * amount)
        if accept is None or accept(proposed):
            wave, changes = spec.change(wave, sample_rate, amount), proposed  # type: ignore[misc]
    return wave.astype(np.float32, copy=False), changes
