"""Beat and downbeat annotations of a Frets on Fire song from its chart, aligned to the mixed recording.

The chart (``notes.mid``) holds the song's tempo map; its beats are the quarter-note times that the
tempo map gives (pretty_midi), its downbeats the bar starts where the chart declares a time signature
(none otherwise: a chart without one says nothing about the bar). The song's declared audio offset
(``delay`` in ``song.ini``, milliseconds; 0 when absent, as in the game) shifts them.

**Alignment check.** The declared offset is checked against the recording's onsets: librosa's onset
strength (hop 256 at 22,050 Hz, 11.6 ms), standardised over the song, is read at the beat times shifted
by every offset within +-150 ms and at most a quarter of the beat period (so that the search never
reaches the off-beat phase; 5 ms steps), less the detector's own delay (the peak's offset on a synthetic
click train whose clicks are exactly on the beats, about 20 ms). A chart that matches the audio shows one
clear peak; the beats are shifted to the peak when its mean standardised onset strength reaches ``MIN_PEAK_Z`` (else
the declared offset stays). Both offsets and both strengths are kept with the labels. One constant per
song is fitted over hundreds of beats, so the labels follow the audio without following any tracker.
Test-only material: these labels are never trained on and never choose anything.
"""

from __future__ import annotations

import configparser
import functools
from pathlib import Path

import numpy as np

#: the offsets tried around the declared one, in seconds
SEARCH_S = 0.15
STEP_S = 0.005
#: the mean standardised onset strength at the beats that counts as an alignment
MIN_PEAK_Z = 0.5
_RATE = 22050
_HOP = 256


def declared_offset_s(folder: Path) -> float:
    """The song's declared audio offset (``song.ini`` ``delay``, ms -> s; 0 when absent)."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(folder / "song.ini", encoding="utf-8")
    try:
        return float(ini.get("song", "delay", fallback="0") or 0) / 1000.0
    except ValueError:
        return 0.0


@functools.lru_cache(maxsize=1)
def detector_lag_s() -> float:
    """How late the onset-strength peak of :func:`onset_alignment` is on clicks that start exactly on the beats."""
    rng = np.random.default_rng(0)
    beats = np.arange(0.25, 20.0, 0.5)
    y = 0.001 * rng.standard_normal(20 * _RATE)
    for t in beats:
        start = int(round(t * _RATE))
        y[start:start + 800] += np.exp(-np.arange(800) / 150.0) * rng.standard_normal(800)
    offsets, strength = onset_alignment(beats, y.astype(np.float32), sample_rate=_RATE, lag_s=0.0)
    return float(offsets[int(np.nanargmax(strength))])


def onset_alignment(beats_s: np.ndarray, waveform: np.ndarray, *, sample_rate: int,
                    lag_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets_s, mean standardised onset strength at beats_s + offset)`` over +-``SEARCH_S`` and at most a
    quarter of the median beat period; the strength is read ``lag_s`` later (default: :func:`detector_lag_s`), so
    offset 0 means onsets exactly on the beats."""
    import librosa

    lag_s = detector_lag_s() if lag_s is None else lag_s

    y = librosa.resample(waveform, orig_sr=sample_rate, target_sr=_RATE) if sample_rate != _RATE else waveform
    envelope = librosa.onset.onset_strength(y=y, sr=_RATE, hop_length=_HOP)
    envelope = (envelope - envelope.mean()) / (envelope.std() + 1e-9)
    reach = min(SEARCH_S, float(np.median(np.diff(beats_s))) / 4) if len(beats_s) > 1 else SEARCH_S
    steps = int(reach / STEP_S + 1e-9)
    offsets = np.round(np.arange(-steps, steps + 1) * STEP_S, 6)
    strength = []
    for offset in offsets:
        index = np.round((beats_s + offset + lag_s) * _RATE / _HOP).astype(int)
        index = index[(index >= 0) & (index < len(envelope))]
        strength.append(float(envelope[index].mean()) if len(index) else float("nan"))
    return offsets, np.array(strength)


def chart_beats(folder: Path, waveform: np.ndarray, *, sample_rate: int) -> dict[str, object]:
    """Beat labels of the song in ``folder`` for its mixed recording ``waveform`` (mono, ``sample_rate`` Hz):
    ``beats`` (s), ``downbeats`` (s, only when the chart declares a time signature) and ``beat_alignment``."""
    import pretty_midi

    chart = pretty_midi.PrettyMIDI(str(folder / "notes.mid"))
    duration_s = len(waveform) / sample_rate
    declared = declared_offset_s(folder)
    beats = chart.get_beats() + declared
    offsets, strength = onset_alignment(beats[beats < duration_s], waveform, sample_rate=sample_rate)
    best = int(np.nanargmax(strength))
    at_declared = float(strength[int(np.argmin(np.abs(offsets)))])
    shift = float(offsets[best]) if strength[best] >= MIN_PEAK_Z else 0.0
    beats = beats + shift
    keep = (beats >= 0) & (beats < duration_s)
    labels: dict[str, object] = {"beats": [round(float(t), 4) for t in beats[keep]]}
    if chart.time_signature_changes:
        downbeats = chart.get_downbeats() + declared + shift
        labels["downbeats"] = [round(float(t), 4) for t in downbeats[(downbeats >= 0) & (downbeats < duration_s)]]
    labels["beat_alignment"] = {
        "declared_offset_s": declared, "shift_s": round(shift, 3), "onset_z_declared": round(at_declared, 3),
        "onset_z_best": round(float(strength[best]), 3), "best_shift_s": round(float(offsets[best]), 3),
        "searched_s": round(float(offsets[-1]), 3),
        "method": f"onset strength at the beats over +-{offsets[-1] * 1000:.0f} ms (at most a quarter beat), less the "
                  f"detector's {detector_lag_s() * 1000:.0f} ms; shifted when the peak's mean standardised strength "
                  f">= {MIN_PEAK_Z}"}
    return labels


__all__ = ["MIN_PEAK_Z", "chart_beats", "declared_offset_s", "detector_lag_s", "onset_alignment"]
