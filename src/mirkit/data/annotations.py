"""Time-stamped labels of rendered music: beat and downbeat times, chord segments (Harte labels).

Every annotation is read from what was rendered: a groove's tempo and meter (for MMA, the tempo and
time signature in the MIDI that MMA wrote), a progression's chord plan, or, for the Bach chorales,
the pitch classes that sound on each beat of the score. Times are seconds from the clip start,
rounded to the millisecond. Chord labels use mir_eval's Harte syntax (``C:maj``, ``A:min``,
``B:dim``, ``G:7``), reducible to its ``majmin`` and ``root`` vocabularies; a sonority that is
not a complete triad is ``X`` (unknown: mir_eval leaves it out of the score).

:func:`mirkit.kinds.beat.beat_problem` and :func:`mirkit.kinds.chords.chord_problem` check them.
"""

from __future__ import annotations

import math

from mirkit.kinds.labels import PITCH_NAMES

#: interval sets (semitones above the root) and their Harte qualities, longest first
QUALITIES: tuple[tuple[frozenset[int], str], ...] = (
    (frozenset({0, 4, 7, 10}), "7"), (frozenset({0, 4, 7, 11}), "maj7"), (frozenset({0, 3, 7, 10}), "min7"),
    (frozenset({0, 3, 6, 10}), "hdim7"), (frozenset({0, 3, 6, 9}), "dim7"),
    (frozenset({0, 4, 7}), "maj"), (frozenset({0, 3, 7}), "min"), (frozenset({0, 3, 6}), "dim"),
    (frozenset({0, 4, 8}), "aug"),
)


def beat_grid(*, bpm: float, beats_per_bar: int, duration_s: float, offset_s: float = 0.0) -> dict[str, object]:
    """Beats every ``60 / bpm`` seconds from ``offset_s`` (a downbeat) to the clip end, downbeats every
    ``beats_per_bar`` beats: ``{"beats", "downbeats", "meter"}``."""
    beat_s = 60.0 / bpm
    count = int(math.floor((duration_s - offset_s) / beat_s + 1e-9)) + 1
    beats = [t for t in (round(offset_s + k * beat_s, 3) for k in range(count)) if t < duration_s]
    return {"beats": beats, "downbeats": beats[::beats_per_bar], "meter": beats_per_bar}


def harte(root_pc: int, quality: str) -> str:
    return f"{PITCH_NAMES[root_pc % 12]}:{quality}"


def chord_of(pitch_classes: set[int]) -> str:
    """The Harte label of a set of sounding pitch classes: a root whose intervals form a known chord
    exactly; ``X`` otherwise (an incomplete triad, passing tones, a cluster), ``N`` for silence."""
    if not pitch_classes:
        return "N"
    for intervals, quality in QUALITIES:
        if len(intervals) != len(pitch_classes):
            continue
        for root in sorted(pitch_classes):
            if {(pc - root) % 12 for pc in pitch_classes} == intervals:
                return harte(root, quality)
    return "X"


def merge_segments(segments: list[tuple[float, float, str]]) -> list[list[object]]:
    """Join neighbouring segments with the same label: ``[[start_s, end_s, label], ...]``."""
    merged: list[list[object]] = []
    for start, end, label in segments:
        if merged and merged[-1][2] == label and abs(float(merged[-1][1]) - start) < 1e-6:
            merged[-1][1] = round(end, 3)
        else:
            merged.append([round(start, 3), round(end, 3), label])
    return merged


def chords_on_beats(notes: list[tuple[int, float, float]], *, beat_s: float, duration_s: float,
                    first_beat_s: float = 0.0) -> list[list[object]]:
    """Chord segments of ``(pitch, start_s, end_s)`` notes, one chord per beat (beats every ``beat_s``
    from ``first_beat_s``; the stretch before it is a segment of its own): the pitch classes that sound
    at each segment's midpoint, so a note struck between beats does not count for the beat before."""
    bounds = [0.0] if first_beat_s > 1e-6 else []
    t = first_beat_s
    while t < duration_s - 1e-6:
        bounds.append(t)
        t += beat_s
    bounds.append(duration_s)
    segments = []
    for start, end in zip(bounds, bounds[1:]):
        middle = (start + end) / 2
        sounding = {pitch % 12 for pitch, onset, offset in notes if onset <= middle < offset}
        segments.append((start, end, chord_of(sounding)))
    return merge_segments(segments)


__all__ = ["beat_grid", "chord_of", "chords_on_beats", "harte", "merge_segments"]
