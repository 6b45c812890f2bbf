"""``transcription``: the notes of a piece (onset, offset, MIDI pitch), scored by note F1.

Conventions: the manifest's ``notes`` label names a JSON sidecar file beside it holding
``[{"onset_s", "offset_s", "pitch"}, ...]`` (read by :meth:`NoteKind.read_labels`). 176 outputs per
frame, as in Onsets and Frames: which of the 88 piano keys (MIDI 21-108) sound, then which start
(onsets widened to neighbouring frames like beats); binary cross-entropy. Decoding: a note starts at
each local onset peak at or above 0.5 and lasts while its frame activation stays at or above 0.3
(basic-pitch's thresholds). Scores: mir_eval's note F1 with onsets only (50 ms, 50 cents), and with
offsets too (``note_f1_offsets``), averaged over clips. Headline: ``note_f1``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirkit.kinds.base import FrameKind, register_kind
from mirkit.kinds.frames import widened
from mirkit.kinds.labels import LOWEST_KEY, PIANO_KEYS
from mirkit.kinds.peers import Estimator, PeerSpec, register_peer


def read_notes(value: object, *, folder: Path) -> list[dict[str, Any]]:
    """The note list of a sidecar file ``folder / value``.

    Raises:
        OSError, ValueError: the file is missing or not JSON.
    """
    return json.loads((folder / str(value)).read_text())


def notes_problem(notes: object) -> str | None:
    if not isinstance(notes, list) or any(not isinstance(n, dict) or not {"onset_s", "offset_s", "pitch"} <= set(n)
                                          or n["offset_s"] <= n["onset_s"] for n in notes):
        return "the note list is missing or has a note whose offset is not after its onset"
    return None


def note_rows(notes: Sequence[Mapping[str, Any]]) -> list[tuple[float, float, int]]:
    """``[{"onset_s", "offset_s", "pitch"}]`` -> ``[(onset_s, offset_s, pitch)]`` as the metrics take them."""
    return [(n["onset_s"], n["offset_s"], n["pitch"]) for n in notes]


@dataclass(frozen=True, kw_only=True)
class NoteKind(FrameKind):
    def read_labels(self, labels: dict[str, object], *, folder: Path) -> dict[str, object]:
        return {**labels, "notes": read_notes(labels["notes"], folder=folder)}

    def label_problem(self, labels: dict[str, object], *, duration_s: float) -> str | None:
        return notes_problem(labels.get("notes"))

    def check_label(self, value: object, *, labels: dict[str, object], vocabulary: Sequence[str], folder: Path,
                    duration_s: float) -> str | None:
        try:
            problem = notes_problem(read_notes(value, folder=folder))
        except (OSError, ValueError, TypeError):
            problem = "unreadable"
        if problem:
            return f"note list {value!r} is missing or malformed (expected onset_s < offset_s, pitch per note)"
        return None if (folder / str(labels.get("piano_roll"))).is_file() else "piano roll file is missing"

    def encode(self, labels: dict[str, object], times_s: np.ndarray, *, rate_hz: float) -> np.ndarray:
        frames = np.zeros((len(times_s), PIANO_KEYS), dtype=np.float32)
        onsets = np.zeros((len(times_s), PIANO_KEYS), dtype=np.float32)
        for note in labels["notes"]:  # type: ignore[union-attr]
            key = int(note["pitch"]) - LOWEST_KEY
            if 0 <= key < PIANO_KEYS:
                frames[(times_s >= note["onset_s"]) & (times_s < note["offset_s"]), key] = 1.0
                onsets[:, key] = np.maximum(onsets[:, key], widened(times_s, [note["onset_s"]], rate_hz))
        return np.concatenate([frames, onsets], axis=1)

    def decode(self, activation: np.ndarray, times_s: np.ndarray, *, rate_hz: float,
               context: Mapping[str, Any] | None = None, full: bool = True) -> dict[str, Any]:
        from mirkit.kinds.decode import notes_from_activations

        return {"notes": notes_from_activations(activation[:, :PIANO_KEYS], activation[:, PIANO_KEYS:], times_s,
                                                rate_hz=rate_hz)}

    def score(self, labels: Sequence[dict[str, object]], decoded: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        from mirkit.metrics.transcription import note_f1

        onset_f1, full_f1 = [], []
        for clip, found in zip(labels, decoded):
            reference = note_rows(clip["notes"])  # type: ignore[arg-type]
            onset_f1.append(note_f1(reference, found["notes"])["f1"])
            full_f1.append(note_f1(reference, found["notes"], with_offsets=True)["f1"])
        scores = {"note_f1": float(np.mean(onset_f1)), "note_f1_offsets": float(np.mean(full_f1))}
        scores["headline"] = scores[self.headline]
        return scores

    def to_row(self, decoded: Mapping[str, Any]) -> dict[str, Any]:
        return {"notes": [list(n) for n in decoded["notes"]]}

    def write_files(self, stem: Path, row: Mapping[str, Any]) -> None:
        from mirkit.kinds.decode import write_midi

        write_midi(stem.with_name(stem.name + ".mid"), [tuple(n) for n in row["notes"]])


TRANSCRIPTION = register_kind(NoteKind(name="transcription", headline="note_f1", outputs=2 * PIANO_KEYS,
                                       min_frame_rate_hz=20.0,
                                       description="piano-roll notes, onset/offset/pitch (note F1)",
                                       files="NAME.mid (the notes, one piano track)"))



def _basic_pitch(spec: PeerSpec) -> Estimator:
    from mirkit.kinds.basic_pitch import transcribe

    return lambda y: {"notes": transcribe(y)}


register_peer(PeerSpec("basic-pitch", "transcription", "basic-pitch", "Apache-2.0", 22050,
                       "basic-pitch ICASSP 2022 ONNX model (onnxruntime), notes decoded by mirkit", _basic_pitch))

__all__ = ["NoteKind", "TRANSCRIPTION", "note_rows", "notes_problem", "read_notes"]
