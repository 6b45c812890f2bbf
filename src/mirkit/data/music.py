"""Small music-theory helpers for the generators: scales, diatonic chords, progressions."""

from __future__ import annotations

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)  # raised 7th: the dominant is major, so the mode is audible

#: Progressions as scale degrees (0 = tonic), each ending on a cadence back to the tonic.
PROGRESSIONS = {
    "major": ((0, 3, 4, 0), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 0, 4), (0, 5, 1, 4), (0, 4, 5, 3)),
    "minor": ((0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 6, 4), (0, 5, 4, 0), (3, 4, 0, 0), (0, 6, 5, 4)),
}
NATURAL_MINOR = (0, 2, 3, 5, 7, 8, 10)


def scale(mode: str) -> tuple[int, ...]:
    return MAJOR_SCALE if mode == "major" else HARMONIC_MINOR


def triad(tonic: int, mode: str, degree: int) -> tuple[int, int, int]:
    """Pitch classes (relative to C=0) of the diatonic triad on ``degree``; in minor, III/VI/VII use
    the natural minor and V/vii the harmonic minor, as in common-practice harmony."""
    steps = scale(mode)
    if mode == "minor" and degree in (2, 5, 6):
        steps = NATURAL_MINOR
    return tuple((tonic + steps[(degree + k) % 7] + 12 * ((degree + k) // 7)) for k in (0, 2, 4))  # type: ignore[return-value]


def voice(pitches: tuple[int, ...], *, low: int) -> list[int]:
    """Place pitch classes as a close-position chord at or above MIDI ``low``."""
    out = []
    base = low
    for pc in pitches:
        note = base + ((pc - base) % 12)
        out.append(note)
        base = note + 1
    return out
