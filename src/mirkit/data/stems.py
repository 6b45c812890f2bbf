"""Stems for the ``separation`` task: each groove rendered part by part, the mix their exact sum.

A groove's channels form three stems (MUSDB-like, without vocals): ``drums`` (GM channel 10),
``bass`` and ``other`` (comping and lead). Each stem is rendered on its own with the clip's renderer
and soundfont, shaped by the clip's tilt and room (both linear, with the same impulse response for
every stem), and all stems take the one gain that brings the *mix* to the clip's peak level; the mix
written as the clip is the sum of the stems written beside it (up to 16-bit rounding).
"""

from __future__ import annotations

import numpy as np

from mirkit.data.render import Score

#: stem name -> the groove channels it holds (see :func:`mirkit.data.grooves.groove`)
STEMS: dict[str, tuple[int, ...]] = {"drums": (9,), "bass": (1,), "other": (0, 2)}


def stem_scores(score: Score) -> list[Score]:
    """One score per stem of :data:`STEMS`, in order (a stem with no notes renders as silence)."""
    out = []
    for channels in STEMS.values():
        out.append(Score(duration_s=score.duration_s,
                         programs={c: p for c, p in score.programs.items() if c in channels},
                         notes=[n for n in score.notes if n.channel in channels]))
    return out


def stem_labels(name: str) -> dict[str, str]:
    """The ``stems`` label of clip ``name``: stem -> sidecar path relative to the task folder."""
    return {stem: f"audio/{name}.{stem}.flac" for stem in STEMS}


def mix_stems(stems: list[np.ndarray], *, peak: float, shape=None) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(mix, stems)``: each stem passed through ``shape`` (a linear effect, or none), then every stem
    scaled by the one gain that brings the sum to ``peak``; the mix is the sum of the scaled stems."""
    length = max(len(s) for s in stems)
    shaped = [np.pad(s, (0, length - len(s))).astype(np.float32) for s in stems]
    if shape is not None:
        shaped = [shape(s) for s in shaped]
    mix = np.sum(shaped, axis=0)
    top = float(np.abs(mix).max())
    gain = peak / top if top > 0 else 1.0
    stems_out = [(s * gain).astype(np.float32) for s in shaped]
    return np.sum(stems_out, axis=0).astype(np.float32), stems_out


__all__ = ["STEMS", "mix_stems", "stem_labels", "stem_scores"]
