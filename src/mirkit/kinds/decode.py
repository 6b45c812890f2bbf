"""Frame activations to musical outputs.

- Beats: librosa's dynamic-programming beat tracker (Ellis 2007) run on the beat activation as its
  onset envelope; tempo: librosa's autocorrelation tempo estimate of the same activation, with a
  uniform prior over the tempo range of the model's training labels (librosa's default prior, a
  log-normal around 120 BPM, pulls the suite's 50-220 BPM grooves towards 120: on the standard
  suite's validation split the musicnn beat probe's Acc1 rose from 0.486 to 0.631 with it, on the
  quick suite's the log-mel probe's from 0.406 to 0.562); the default prior when the range is unknown.
- Downbeats: of the decoded beats, every ``meter``-th one, with the meter (3 or 4) and phase whose
  beats carry the most downbeat activation.
- Notes: a note starts at each local peak of a key's onset activation at or above 0.5 and lasts while
  its frame activation stays at or above 0.3 (basic-pitch's default thresholds); notes shorter than
  50 ms are dropped.
- Chords: a Viterbi pass over the frame posteriors (librosa's ``viterbi_discriminative``) with a
  transition matrix that favours staying on a chord, then runs of one class as ``(start, end,
  label)`` segments, ready for a ``.lab`` file.

Activations are on a regular frame grid; ``times_s`` gives each frame's time (the encoder's frame
centres), and ``rate_hz`` the grid's rate.
"""

from __future__ import annotations

import numpy as np

from mirkit.kinds.labels import CHORD_CLASSES, LOWEST_KEY

_HOP = 512  # librosa thinks in samples: a frame of rate r is a hop of 512 at 512 * r "samples" per second
CHORD_SELF_TRANSITION = 0.9
METERS = (3, 4)


def beats_from_activation(activation: np.ndarray, times_s: np.ndarray, *, rate_hz: float) -> np.ndarray:
    """Beat times in seconds (strictly increasing; empty for a silent activation)."""
    import librosa

    envelope = np.asarray(activation, dtype=np.float64)
    if len(envelope) < 4 or not np.any(envelope > 1e-6):
        return np.zeros(0)
    _, frames = librosa.beat.beat_track(onset_envelope=envelope, sr=rate_hz * _HOP, hop_length=_HOP, trim=False)
    frames = np.unique(np.asarray(frames, dtype=int))
    return np.asarray(times_s, dtype=np.float64)[frames[frames < len(times_s)]]


def tempo_range(labels) -> tuple[float, float] | None:
    """``(min, max)`` BPM of clips' ``bpm`` labels (a beat model's training split): the range its tempo
    decoding searches; ``None`` when a clip has no ``bpm`` label."""
    bpms = [label.get("bpm") for label in labels]
    if not bpms or any(b is None for b in bpms):
        return None
    return float(min(bpms)), float(max(bpms))


def tempo_from_activation(activation: np.ndarray, *, rate_hz: float,
                          tempo_range_bpm: tuple[float, float] | None = None) -> float:
    """Tempo in BPM from the autocorrelation of the beat activation; ``tempo_range_bpm`` (the training
    labels' range) gives a uniform prior over it, else librosa's default prior is used."""
    import librosa

    envelope = np.asarray(activation, dtype=np.float64)
    if len(envelope) < 4 or not np.any(envelope > 1e-6):
        return 120.0  # librosa's prior: nothing to measure
    prior = None
    if tempo_range_bpm is not None:
        import scipy.stats

        low, high = tempo_range_bpm
        prior = scipy.stats.uniform(low, max(high - low, 1e-3))
    return float(np.atleast_1d(librosa.feature.tempo(onset_envelope=envelope, sr=rate_hz * _HOP, hop_length=_HOP,
                                                     prior=prior))[0])


def downbeats_from_beats(beats_s: np.ndarray, downbeat_activation: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """The subsequence of ``beats_s`` (every 3rd or 4th, from the best phase) with most downbeat activation."""
    if len(beats_s) == 0:
        return beats_s
    index = np.searchsorted(times_s, beats_s).clip(0, len(times_s) - 1)
    strength = np.asarray(downbeat_activation)[index]
    best = max(((strength[phase::meter].mean(), meter, phase) for meter in METERS for phase in range(meter)
                if len(strength[phase::meter])), key=lambda x: x[0])
    return beats_s[best[2]::best[1]]


def chords_from_posteriors(posteriors: np.ndarray, times_s: np.ndarray, *, rate_hz: float,
                           self_transition: float = CHORD_SELF_TRANSITION) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, label)`` segments from ``(frames, 25)`` class probabilities."""
    import librosa

    probs = np.asarray(posteriors, dtype=np.float64).T  # (classes, frames)
    probs = probs / probs.sum(axis=0, keepdims=True).clip(1e-12)
    transition = librosa.sequence.transition_loop(len(CHORD_CLASSES), self_transition)
    path = librosa.sequence.viterbi_discriminative(probs, transition)
    half = 0.5 / rate_hz
    segments: list[tuple[float, float, str]] = []
    start = 0
    for k in range(1, len(path) + 1):
        if k == len(path) or path[k] != path[start]:
            begin = max(0.0, float(times_s[start]) - half)
            end = float(times_s[k - 1]) + half
            segments.append((round(begin, 3), round(end, 3), CHORD_CLASSES[int(path[start])]))
            start = k
    return segments


def notes_from_activations(frames: np.ndarray, onsets: np.ndarray, times_s: np.ndarray, *, rate_hz: float,
                           onset_threshold: float = 0.5, frame_threshold: float = 0.3,
                           min_duration_s: float = 0.05) -> list[tuple[float, float, int]]:
    """``(onset_s, offset_s, midi_pitch)`` notes from ``(frames, 88)`` frame and onset activations."""
    notes = []
    last = len(times_s) - 1
    for key in range(frames.shape[1]):
        onset = onsets[:, key]
        peaks = [t for t in range(len(onset)) if onset[t] >= onset_threshold
                 and (t == 0 or onset[t] >= onset[t - 1]) and (t == last or onset[t] > onset[t + 1])]
        for i, start in enumerate(peaks):
            stop = peaks[i + 1] if i + 1 < len(peaks) else len(onset)
            end = start + 1
            while end < stop and frames[end, key] >= frame_threshold:
                end += 1
            begin_s, end_s = float(times_s[start]), float(times_s[end - 1]) + 1.0 / rate_hz
            if end_s - begin_s >= min_duration_s:
                notes.append((round(begin_s, 3), round(end_s, 3), key + LOWEST_KEY))
    return sorted(notes)


def write_midi(path, notes: list[tuple[float, float, int]]) -> None:
    """A one-track piano MIDI file of ``(onset_s, offset_s, pitch)`` notes (pretty_midi), written atomically."""
    import io

    import pretty_midi

    from mirkit.files import atomic_write_bytes

    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity=90, pitch=int(p), start=float(a), end=float(b)) for a, b, p in notes]
    midi.instruments.append(piano)
    buffer = io.BytesIO()
    midi.write(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def write_lab(path, segments: list[tuple[float, float, str]]) -> None:
    """A ``.lab`` file: one ``start end label`` line per segment (seconds)."""
    from mirkit.files import atomic_write_text

    atomic_write_text(path, "".join(f"{a:.3f}\t{b:.3f}\t{label}\n" for a, b, label in segments))


__all__ = ["beats_from_activation", "chords_from_posteriors", "downbeats_from_beats", "notes_from_activations",
           "tempo_from_activation", "tempo_range", "write_lab", "write_midi"]
