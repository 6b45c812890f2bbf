"""Perturbations of test audio, after the Audio Degradation Toolbox (Mauch & Ewert, ISMIR 2013).

Each perturbation is a frozen spec in :data:`PERTURBATIONS` that turns one decoded clip into one
audio file: level changes (written as 32-bit float WAV, so nothing clips), Butterworth low- and
high-pass filters (scipy), a synthetic room (exponentially decaying noise impulse response, RT60
0.5 s, 25 % wet, convolved with scipy), pink noise at a signal-to-noise ratio measured on the clip,
and lossy codecs written by libsndfile (LAME MP3 and Vorbis at compression level 0.9 of 1, about
35 kbit/s for the suite's 22.05 kHz clips) and decoded back by mirkit like any other file, and
another renderer: the clip's score (a suite test clip keeps it) rendered by FluidSynth instead of
tinysoundfont with the same soundfont, at the clip's peak level (:func:`rerender`). Random
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
    source: str = "audio"  # "score": re-rendered from the clip's score sidecar, not from its audio


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
    Perturbation("renderer-fluidsynth", "the same score and soundfont rendered by FluidSynth instead of tinysoundfont "
                 "(its reverb and chorus on), at the clip's peak level", _identity, source="score"),
):
    PERTURBATIONS.register(_spec.name, _spec)

DEFAULT_PERTURBATIONS = tuple(PERTURBATIONS)


def resolve_perturbations(names: list[str] | None) -> list[str]:
    """The perturbations a run will apply, checked before any work: unknown names fail with a
    suggestion; a renderer perturbation needs FluidSynth (fetched from Debian's archive when it can
    be). With ``names=None`` (all), the renderer is left out where FluidSynth cannot be had."""
    from mirkit.data import fluidsynth
    from mirkit.errors import ConfigError

    chosen = list(names) if names else list(DEFAULT_PERTURBATIONS)
    specs = [PERTURBATIONS.get(name) for name in chosen]
    if any(spec.source == "score" for spec in specs):
        status: dict[str, str] = {}
        if fluidsynth.ensure(status) is None:
            if names:
                raise ConfigError(f"renderer-fluidsynth needs FluidSynth, which is {status['fluidsynth']}. Leave it "
                                  "out of --perturbations, or get FluidSynth.")
            chosen = [spec.name for spec in specs if spec.source != "score"]
    return chosen


def clip_rng(perturbation: str, clip: str) -> np.random.Generator:
    """The generator of one (perturbation, clip): the same audio on every rerun."""
    return np.random.default_rng(zlib.crc32(f"{perturbation}\0{clip}".encode()))


def perturb_file(source: Path, dest_stem: Path, *, perturbation: str, clip: str) -> Path:
    """Decode ``source``, apply ``perturbation`` and write it (atomically) as ``dest_stem`` + its suffix;
    an existing file is kept (the result is deterministic). Returns the written path."""
    from mirkit.audio import load

    spec = PERTURBATIONS.get(perturbation)
    dest = perturbed_path(dest_stem, spec)
    if dest.is_file():
        return dest
    wave, rate = load(source, sample_rate=None)
    if spec.source == "score":
        out = rerender([source], peaks=[float(np.abs(wave).max())], sample_rate=rate)[0]
    else:
        out = spec.transform(wave, rate, clip_rng(perturbation, clip))
    write_perturbed(out, dest, spec, rate)
    return dest


def perturbed_path(dest_stem: Path, spec: Perturbation) -> Path:
    """``dest_stem`` + the perturbation's suffix (appended: clip names such as ``chorale-bwv1.6-A_major``
    hold dots, which ``with_suffix`` would cut)."""
    return dest_stem.with_name(dest_stem.name + spec.suffix)


def write_perturbed(out: np.ndarray, dest: Path, spec: Perturbation, rate: int) -> None:
    """Write ``out`` as ``spec``'s container (atomically; a codec's loss happens here)."""
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    extra = {} if spec.compression_level is None else {"compression_level": spec.compression_level}
    with sf.SoundFile(buffer, "w", samplerate=rate, channels=1, format=spec.format, subtype=spec.subtype,
                      **extra) as handle:
        for start in range(0, out.size, 4096):  # in blocks: one large Vorbis write crashed libsndfile before
            handle.write(out[start : start + 4096])
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, buffer.getvalue())


def score_sidecar(source: Path) -> Path:
    """Where a suite's test clip keeps its score (see :mod:`mirkit.data.suite_render`)."""
    return source.with_suffix(".score.json")


def rerender(sources: list[Path], *, peaks: list[float], sample_rate: int) -> list[np.ndarray]:
    """Each clip's score (its sidecar) rendered by FluidSynth with the soundfont the clip was rendered
    with, scaled to ``peaks[i]``; one FluidSynth run per soundfont."""
    import json

    from mirkit.data import fluidsynth, soundfonts
    from mirkit.data.render import score_from_dict
    from mirkit.errors import ConfigError

    program = fluidsynth.require()
    scores, fonts = [], []
    for source in sources:
        sidecar = score_sidecar(source)
        if not sidecar.is_file():
            raise ConfigError(f"{source.name} has no score ({sidecar.name}): only test clips of suites built by "
                              "this mirkit keep one. Rebuild the suite into a new folder (`mirkit data build`).")
        data = json.loads(sidecar.read_text())
        scores.append(score_from_dict(data))
        fonts.append(data.get("soundfont"))
    out: list[np.ndarray | None] = [None] * len(sources)
    for font in sorted(set(fonts)):
        path = soundfonts.locate(font) if font else None
        if path is None:
            raise ConfigError(f"soundfont {font!r} of the clips to re-render is not on this machine; fetch it with "
                              "`mirkit data build --soundfonts auto` (or install it).")
        index = [i for i, f in enumerate(fonts) if f == font]
        for i, audio in zip(index, fluidsynth.render_scores([scores[i] for i in index], soundfont=path,
                                                            sample_rate=sample_rate, program=program)):
            peak = float(np.abs(audio).max())
            out[i] = audio * (peaks[i] / peak) if peak > 0 else audio
    return out  # type: ignore[return-value]
