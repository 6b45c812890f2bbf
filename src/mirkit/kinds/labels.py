"""Label vocabularies shared by several task kinds: pitch names, the 24 keys, the ``majmin`` chord
classes and the piano's 88 keys.

Conventions: pitch classes are spelled with sharps (``C#``, never ``Db``); a key is ``"<tonic> <mode>"``
(``"A minor"``); chord labels follow mir_eval's Harte syntax (``C:maj``, ``A:min``, ``N`` no chord,
``X`` unknown).
"""

from __future__ import annotations

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
KEYS = tuple(f"{tonic} {mode}" for mode in ("major", "minor") for tonic in PITCH_NAMES)
#: ``N`` and the 12 major and 12 minor triads: mir_eval's ``majmin`` vocabulary
CHORD_CLASSES = ("N",) + tuple(f"{p}:maj" for p in PITCH_NAMES) + tuple(f"{p}:min" for p in PITCH_NAMES)
#: a frame target left out of a categorical loss (a chord outside the vocabulary)
IGNORE = -1
PIANO_KEYS, LOWEST_KEY = 88, 21  # A0-C8, MIDI 21-108

_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E", "E#": "F", "B#": "C"}


def sharp_key(key: str) -> str:
    """``"Bb minor"`` -> ``"A# minor"`` (mirkit's spelling; mir_eval treats both alike)."""
    tonic, _, mode = key.partition(" ")
    return f"{_FLATS.get(tonic, tonic)} {mode.lower()}"


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


__all__ = ["CHORD_CLASSES", "IGNORE", "KEYS", "LOWEST_KEY", "PIANO_KEYS", "PITCH_NAMES", "chord_class", "sharp_key"]
