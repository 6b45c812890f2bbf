"""Perturbations of test audio, after the Audio Degradation Toolbox (Mauch & Ewert, ISMIR 2013).

Each perturbation is a frozen spec in :data:`PERTURBATIONS` that turns one decoded clip into one
audio file: level changes (written as 32-bit float WAV, so nothing clips), Butterworth low- and
high-pass filters (scipy), a synthetic room (exponentially decaying noise impulse response, RT60
0.5 s, 25 % wet, convolved with scipy), pink noise at a signal-to-noise ratio measured on the clip,
and lossy codecs written by libsndfile (LAME MP3 and Vorbis at compression level 0.9 of 1, about
35 kbit/s for the suite's 22.05 kHz clips) and decoded back by mirkit like any other file. Random
parts (noise, impulse response) are seeded by the perturbation and the clip, so a rerun writes the
same audio.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.audio import effects
from mirkit.files import atomic_write_bytes
from mirkit.registry import Registry

Transform = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Perturbation:
    """A named perturbation: ``transform(wave, sample_rate, rng)`` and the container it is written in.

    ``suffix``/``format``/``subtype`` are soundfile's; a codec perturbation's loss happens when the
    file is written (``compression_level`` 0 best .. 1 smallest)."""

    name: str
    description: str
    transform: Transform
    suffix: str = ".wav"
    format: str = "WAV"
    subtype: str = "FLOAT"
    compression_level: float | None = None


PERTURBATIONS: Registry[Perturbation] = Registry("perturbation", listing_hint="mirkit robustness --list")


def _gain(db: float) -> Transform:
    return lambda wave, rate, rng: effects.gain(wave, db)


def _butter(kind: str, cutoff_hz: float, order: int) -> Transform:
    return lambda wave, rate, rng: effects.butter_filter(wave, rate, kind=kind, cutoff_hz=cutoff_hz, order=order)


def _room(rt60_s: float, wet: float) -> Transform:
    return lambda wave, rate, rng: effects.room(wave, rate, rng, rt60_s=rt60_s, wet=wet)


def _pink(snr_db: float) -> Transform:
    return lambda wave, rate, rng: effects.add_pink_noise(wave, rng, snr_db=snr_db)


def _identity(wave: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    return wave


for _spec in (
    Perturbation("level-plus-12db", "12 dB louder (float WAV: no clipping)", _gain(12.0)),
    Perturbation("level-minus-12db", "12 dB quieter", _gain(-12.0)),
    Perturbation("lowpass-4khz", "8th-order Butterworth low-pass at 4 kHz", _butter("lowpass", 4000.0, 8)),
    Perturbation("highpass-300hz", "4th-order Butterworth high-pass at 300 Hz", _butter("highpass", 300.0, 4)),
    Perturbation("room", "synthetic room: noise impulse response, RT60 0.5 s, 25 % wet", _room(0.5, 0.25)),
    Perturbation("pink-noise-20db", "pink noise at 20 dB SNR", _pink(20.0)),
    Perturbation("pink-noise-10db", "pink noise at 10 dB SNR", _pink(10.0)),
    Perturbation("mp3-low", "MP3 (LAME through libsndfile) at compression level 0.9 of 1", _identity, ".mp3", "MP3",
                 "MPEG_LAYER_III", 0.9),
    Perturbation("vorbis-low", "Ogg Vorbis at compression level 0.9 of 1", _identity, ".ogg", "OGG", "VORBIS", 0.9),
):
    PERTURBATIONS.register(_spec.name, _spec)

DEFAULT_PERTURBATIONS = tuple(PERTURBATIONS)


def clip_rng(perturbation: str, clip: str) -> np.random.Generator:
    """The generator of one (perturbation, clip): the same audio on every rerun."""
    return np.random.default_rng(zlib.crc32(f"{perturbation}\0{clip}".encode()))


def perturb_file(source: Path, dest_stem: Path, *, perturbation: str, clip: str) -> Path:
    """Decode ``source``, apply ``perturbation`` and write it (atomically) as ``dest_stem`` + its suffix;
    an existing file is kept (the result is deterministic). Returns the written path."""
    import io

    import soundfile as sf

    from mirkit.audio import load

    spec = PERTURBATIONS.get(perturbation)
    dest = dest_stem.with_suffix(spec.suffix)
    if dest.is_file():
        return dest
    wave, rate = load(source, sample_rate=None)
    out = spec.transform(wave, rate, clip_rng(perturbation, clip))
    buffer = io.BytesIO()
    extra = {} if spec.compression_level is None else {"compression_level": spec.compression_level}
    with sf.SoundFile(buffer, "w", samplerate=rate, channels=1, format=spec.format, subtype=spec.subtype,
                      **extra) as handle:
        for start in range(0, out.size, 4096):  # in blocks: one large Vorbis write crashed libsndfile before
            handle.write(out[start : start + 4096])
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, buffer.getvalue())
    return dest
