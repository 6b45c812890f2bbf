"""``chords``: time-stamped chord segments, scored on mir_eval's ``majmin`` vocabulary.

Conventions: labels hold ``chords``, ``[[start_s, end_s, label], ...]`` in Harte syntax, in order and
not overlapping. One of 25 classes per frame (:data:`~mirkit.kinds.labels.CHORD_CLASSES`: ``N`` and
the 12 major and 12 minor triads): a seventh chord counts as its triad, and a frame under a chord
outside that vocabulary (``X``, diminished, augmented) is left out of the loss (class
:data:`~mirkit.kinds.labels.IGNORE`). Decoding: a Viterbi pass over the frame posteriors that favours
staying on a chord (:func:`~mirkit.kinds.decode.chords_from_posteriors`). Scores: mir_eval's
weighted chord symbol recall (``majmin``, ``root``...). Headline: ``majmin``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirkit.kinds.base import FrameKind, register_kind
from mirkit.kinds.labels import CHORD_CLASSES, IGNORE, chord_class
from mirkit.kinds.peers import PeerSpec, register_peer


def chord_problem(labels: Mapping[str, object], *, duration_s: float) -> str | None:
    """What is wrong with a clip's chord segments (``None``: nothing)."""
    import mir_eval

    segments = labels.get("chords")
    if not isinstance(segments, list) or not segments:
        return "chords are missing (expected [[start_s, end_s, label], ...])"
    previous_end = 0.0
    for start, end, label in segments:
        if not (end > start >= previous_end - 1e-6):
            return f"chord segment [{start}, {end}] overlaps or runs backwards"
        try:
            mir_eval.chord.validate_chord_label(str(label))
        except mir_eval.chord.InvalidChordException:
            return f"chord label {label!r} is not Harte syntax (e.g. C:maj, A:min, N, X)"
        previous_end = end
    if previous_end > duration_s + 1e-3:
        return f"chords end at {previous_end} s, after the {duration_s:.3f} s clip"
    return None


def segments_array(rows: Sequence[Sequence[object]]) -> tuple[np.ndarray, list[str]]:
    """``[[start, end, label], ...]`` -> ``((segments, 2) intervals, labels)`` as mir_eval takes them."""
    return np.array([[float(r[0]), float(r[1])] for r in rows], dtype=float).reshape(-1, 2), [str(r[2]) for r in rows]


@dataclass(frozen=True, kw_only=True)
class ChordKind(FrameKind):
    def encode(self, labels: dict[str, object], times_s: np.ndarray, *, rate_hz: float) -> np.ndarray:
        classes = np.full(len(times_s), IGNORE, dtype=np.int64)
        for start, end, label in labels["chords"]:  # type: ignore[union-attr]
            classes[(times_s >= float(start)) & (times_s < float(end))] = chord_class(str(label))
        return classes

    def label_problem(self, labels: dict[str, object], *, duration_s: float) -> str | None:
        return chord_problem(labels, duration_s=duration_s)

    def decode(self, activation: np.ndarray, times_s: np.ndarray, *, rate_hz: float,
               context: Mapping[str, Any] | None = None, full: bool = True) -> dict[str, Any]:
        from mirkit.kinds.decode import chords_from_posteriors

        return {"chords": chords_from_posteriors(activation, times_s, rate_hz=rate_hz)}

    def score(self, labels: Sequence[dict[str, object]], decoded: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        from mirkit.metrics.chords import chord_overlap

        scores = chord_overlap([segments_array(c["chords"]) for c in labels],  # type: ignore[arg-type]
                               [segments_array(d["chords"]) for d in decoded])
        scores["headline"] = scores[self.headline]
        return scores

    def to_row(self, decoded: Mapping[str, Any]) -> dict[str, Any]:
        return {"chords": [list(s) for s in decoded["chords"]]}

    def write_files(self, stem: Path, row: Mapping[str, Any]) -> None:
        from mirkit.kinds.decode import write_lab

        write_lab(stem.with_name(stem.name + ".lab"), [tuple(c) for c in row["chords"]])


CHORDS = register_kind(ChordKind(name="chords", headline="majmin", outputs=len(CHORD_CLASSES), categorical=True,
                                 classes=CHORD_CLASSES,
                                 min_frame_rate_hz=4.0,  # chords last a beat or more
                                 description="chord segments, N + 24 major/minor triads (majmin recall)",
                                 files="NAME.lab (start end label per chord segment)"))



def chroma_template_chords(y: np.ndarray, *, sample_rate: int, hop: int = 2048) -> list[tuple[float, float, str]]:
    """Chord segments by the classic template method: each CQT-chroma frame's cosine similarity with
    the 24 major/minor triad templates, near-silent frames ``N``, then Viterbi smoothing."""
    import librosa

    from mirkit.kinds.decode import chords_from_posteriors

    chroma = librosa.feature.chroma_cqt(y=y, sr=sample_rate, hop_length=hop)  # (12, frames), max-normalised
    templates = np.zeros((24, 12))
    for root in range(12):
        templates[root, [root, (root + 4) % 12, (root + 7) % 12]] = 1
        templates[12 + root, [root, (root + 3) % 12, (root + 7) % 12]] = 1
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    similarity = templates @ (chroma / np.linalg.norm(chroma, axis=0, keepdims=True).clip(1e-9))
    rms = librosa.feature.rms(y=y, frame_length=hop * 2, hop_length=hop)[0][: chroma.shape[1]]
    silent = rms < 1e-3
    scores = np.zeros((chroma.shape[1], len(CHORD_CLASSES)))
    scores[:, 1:] = np.exp(10 * similarity.T)  # a soft-max over templates (temperature 0.1)
    scores[silent] = 0
    scores[silent, 0] = 1
    scores /= scores.sum(axis=1, keepdims=True)
    rate = sample_rate / hop
    times = librosa.frames_to_time(np.arange(chroma.shape[1]), sr=sample_rate, hop_length=hop)
    return chords_from_posteriors(scores, times, rate_hz=rate)


register_peer(PeerSpec("chroma-templates", "chords", "librosa", "ISC", 22050,
                       "CQT chroma x major/minor triad templates + Viterbi smoothing",
                       lambda spec: lambda y: {"chords": chroma_template_chords(y, sample_rate=spec.sample_rate)}))

__all__ = ["CHORDS", "chroma_template_chords", "ChordKind", "chord_problem", "segments_array"]
