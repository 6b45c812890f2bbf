"""Note-level transcription F1 (mir_eval.transcription, onsets only by default).

Conventions:
    Notes are ``(onset_s, offset_s, midi_pitch)`` rows, times in **seconds**, pitch as MIDI
    numbers (converted to Hz for mir_eval). Onset tolerance 50 ms, pitch tolerance 50 cents;
    ``with_offsets=True`` also requires offsets within 20% of the note (or 50 ms).
"""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError


def _notes(rows, *, name: str) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(rows, dtype=float).reshape(-1, 3)
    if (array[:, 1] <= array[:, 0]).any():
        raise ConfigError(f"{name}: every note needs offset_s > onset_s (times in seconds).")
    if array.size and array[:, 2].max() > 127:
        raise ConfigError(f"{name}: pitches must be MIDI numbers (0-127), not Hz.")
    return array[:, :2], 440.0 * 2.0 ** ((array[:, 2] - 69) / 12)


def note_f1(reference_notes, estimated_notes, *, with_offsets: bool = False) -> dict[str, float]:
    import mir_eval

    ref_intervals, ref_hz = _notes(reference_notes, name="reference_notes")
    est_intervals, est_hz = _notes(estimated_notes, name="estimated_notes")
    precision, recall, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
        ref_intervals, ref_hz, est_intervals, est_hz, offset_ratio=0.2 if with_offsets else None)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
