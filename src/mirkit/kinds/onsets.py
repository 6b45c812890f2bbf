"""``onsets``: when notes start, scored by the onset F-measure (mir_eval.onset, 50 ms).

Conventions: labels hold ``onsets``, the sorted times in seconds at which at least one note starts
(notes starting within :data:`MERGE_S` of each other are one onset: a chord struck together). On a
rendered suite they come from the rendered MIDI: :func:`onsets_from_notes` of the transcription
task's note lists (``mirkit data build`` writes the ``onsets`` task beside it, sharing its audio).
One output per frame, 1 at the frame nearest an onset and 0.5 at its neighbours, binary
cross-entropy. Decoding: local peaks of the activation at or above :data:`THRESHOLD`, at least
:data:`MERGE_S` apart. Scores: F-measure, precision and recall (:mod:`mirkit.metrics.onsets`).
Headline: ``f_measure``. Peer: librosa's onset detector (spectral flux with its own peak picking).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirkit.kinds.base import FrameKind, register_kind
from mirkit.kinds.frames import times_problem, widened
from mirkit.kinds.peers import Estimator, PeerSpec, register_peer

#: onsets closer than this are one (notes of a chord struck together; half the 50 ms scoring window)
MERGE_S = 0.025
THRESHOLD = 0.5


def merged(times_s: Sequence[float], *, merge_s: float = MERGE_S) -> list[float]:
    """Sorted times with each run of times closer than ``merge_s`` to the run's first kept as that first."""
    out: list[float] = []
    for t in sorted(float(t) for t in times_s):
        if not out or t - out[-1] >= merge_s:
            out.append(round(t, 3))
    return out


def onsets_from_notes(labels: Mapping[str, Any]) -> dict[str, object]:
    """An onsets label from a transcription clip's labels (its note list already read from the sidecar)."""
    return {"onsets": merged([n["onset_s"] for n in labels["notes"]])}


@dataclass(frozen=True, kw_only=True)
class OnsetKind(FrameKind):
    def label_problem(self, labels: dict[str, object], *, duration_s: float) -> str | None:
        return times_problem(labels.get("onsets"), name="onsets", duration_s=duration_s, strictly=False)

    def encode(self, labels: dict[str, object], times_s: np.ndarray, *, rate_hz: float) -> np.ndarray:
        return widened(times_s, labels["onsets"], rate_hz)[:, None]  # type: ignore[arg-type]

    def decode(self, activation: np.ndarray, times_s: np.ndarray, *, rate_hz: float,
               context: Mapping[str, Any] | None = None, full: bool = True) -> dict[str, Any]:
        a = np.asarray(activation, dtype=np.float64)[:, 0]
        last = len(a) - 1
        peaks = [float(times_s[t]) for t in range(len(a)) if a[t] >= THRESHOLD
                 and (t == 0 or a[t] >= a[t - 1]) and (t == last or a[t] > a[t + 1])]
        return {"onsets": np.asarray(merged(peaks), dtype=float)}

    def score(self, labels: Sequence[dict[str, object]], decoded: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        from mirkit.metrics.onsets import evaluate_onsets

        scores = evaluate_onsets([c["onsets"] for c in labels], [d["onsets"] for d in decoded])
        scores["headline"] = scores[self.headline]
        return scores

    def to_row(self, decoded: Mapping[str, Any]) -> dict[str, Any]:
        return {"onsets": [round(float(t), 3) for t in decoded["onsets"]]}

    def write_files(self, stem: Path, row: Mapping[str, Any]) -> None:
        from mirkit.files import atomic_write_text

        atomic_write_text(stem.with_name(stem.name + ".onsets.txt"), "".join(f"{t:.3f}\n" for t in row["onsets"]))


ONSETS = register_kind(OnsetKind(name="onsets", headline="f_measure", outputs=1, min_frame_rate_hz=20.0,
                                 description="note onset times (onset F-measure, 50 ms)",
                                 files="NAME.onsets.txt (one time in seconds per line)"))


def _librosa_onsets(spec: PeerSpec) -> Estimator:
    import librosa

    return lambda y: {"onsets": np.asarray(librosa.onset.onset_detect(y=y, sr=spec.sample_rate, units="time"),
                                           dtype=float)}


register_peer(PeerSpec("librosa-onsets", "onsets", "librosa", "ISC", 22050,
                       "librosa.onset.onset_detect (spectral flux + peak picking)", _librosa_onsets))

__all__ = ["MERGE_S", "ONSETS", "OnsetKind", "merged", "onsets_from_notes"]
