"""Frame targets of the time-resolved tasks, on each clip's own frame times.

- ``beat``: two outputs per frame, beat and downbeat. The frame nearest an annotated time gets 1
  and its two neighbours 0.5 (targets widened to neighbouring frames, as neural beat trackers do,
  so a frame-rate rounding is not punished as a miss); trained with binary cross-entropy.
- ``transcription``: 176 outputs per frame, which of the 88 piano keys (MIDI 21-108) sound and which
  start (onsets widened to neighbouring frames like beats), as in Onsets and Frames; binary
  cross-entropy.
- ``chords``: 25 classes per frame, ``N`` and the 12 major and 12 minor triads (mir_eval's
  ``majmin`` vocabulary): a seventh chord counts as its triad, and a frame under a chord outside
  that vocabulary (``X``, diminished, augmented) is left out of the loss (class ``-1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirkit.data.tasks import PITCH_NAMES
from mirkit.errors import ConfigError

CHORD_CLASSES = ("N",) + tuple(f"{p}:maj" for p in PITCH_NAMES) + tuple(f"{p}:min" for p in PITCH_NAMES)
IGNORE = -1
KEYS, LOWEST_KEY = 88, 21  # piano keys A0-C8
NEIGHBOUR_WEIGHT = 0.5


def chord_class(label: str) -> int:
    """Index in :data:`CHORD_CLASSES` of a Harte label reduced to major/minor, or :data:`IGNORE`."""
    import mir_eval

    if label == "N":
        return 0
    if label == "X":
        return IGNORE
    root, bitmap, _ = mir_eval.chord.encode(label, reduce_extended_chords=True)
    if bitmap[7] and bitmap[4] and not bitmap[3]:
        return 1 + root
    if bitmap[7] and bitmap[3] and not bitmap[4]:
        return 13 + root
    return IGNORE


def _widened(times_s: np.ndarray, events_s, rate_hz: float) -> np.ndarray:
    target = np.zeros(len(times_s), dtype=np.float32)
    for event in events_s:
        nearest = int(np.argmin(np.abs(times_s - event)))
        if abs(times_s[nearest] - event) > 1.0 / rate_hz:
            continue  # the event falls where the clip has no frame
        for neighbour in (nearest - 1, nearest + 1):
            if 0 <= neighbour < len(target):
                target[neighbour] = max(target[neighbour], NEIGHBOUR_WEIGHT)
        target[nearest] = 1.0
    return target


@dataclass(frozen=True)
class FrameTargets:
    """How a time-resolved task's labels become per-frame targets."""

    kind: str

    def __post_init__(self) -> None:
        if self.kind not in ("beat", "chords", "transcription"):
            raise ConfigError(f"kind={self.kind!r}: frame-level probing covers beat, chords and transcription.")

    @property
    def output_dim(self) -> int:
        return {"beat": 2, "transcription": 2 * KEYS}.get(self.kind, len(CHORD_CLASSES))

    def encode(self, labels: dict[str, object], times_s: np.ndarray, *, rate_hz: float) -> np.ndarray:
        """``(frames, 2)`` float beat/downbeat targets, or ``(frames,)`` int chord classes."""
        if self.kind == "beat":
            return np.stack([_widened(times_s, labels["beats"], rate_hz),
                             _widened(times_s, labels["downbeats"], rate_hz)], axis=1)
        if self.kind == "transcription":  # labels["notes"]: the note list itself (the run reads the sidecar file)
            frames = np.zeros((len(times_s), KEYS), dtype=np.float32)
            onsets = np.zeros((len(times_s), KEYS), dtype=np.float32)
            for note in labels["notes"]:
                key = int(note["pitch"]) - LOWEST_KEY
                if 0 <= key < KEYS:
                    frames[(times_s >= note["onset_s"]) & (times_s < note["offset_s"]), key] = 1.0
                    onsets[:, key] = np.maximum(onsets[:, key], _widened(times_s, [note["onset_s"]], rate_hz))
            return np.concatenate([frames, onsets], axis=1)
        classes = np.full(len(times_s), IGNORE, dtype=np.int64)
        for start, end, label in labels["chords"]:
            classes[(times_s >= float(start)) & (times_s < float(end))] = chord_class(str(label))
        return classes


__all__ = ["CHORD_CLASSES", "FrameTargets", "IGNORE", "KEYS", "LOWEST_KEY", "chord_class"]
