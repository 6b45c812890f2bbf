"""``beat``: beat and downbeat times, and the tempo read off them.

Conventions: labels hold ``beats`` and ``downbeats`` (seconds from the clip start, strictly
increasing; every downbeat is a beat), optionally ``bpm`` and ``meter`` (beats per bar). Two outputs
per frame, beat and downbeat, each 1 at the frame nearest an annotated time and 0.5 at its two
neighbours (as neural beat trackers widen targets), trained with binary cross-entropy. Decoding:
:mod:`mirkit.kinds.decode` (librosa's dynamic-programming tracker on the beat activation, the
meter and phase with most downbeat activation, the tempo from the activation's autocorrelation with
a uniform prior over the training labels' tempo range). Scores: mir_eval's beat F-measure (70 ms),
CMLt and AMLt with the first :data:`CLIP_SKIP_S` of each clip left out, the downbeat F-measure and,
where clips have a ``bpm`` label, tempo Acc1/Acc2 (``tempo_acc1``...). Headline: ``f_measure``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirkit.kinds.base import FrameKind, register_kind
from mirkit.kinds.frames import widened
from mirkit.kinds.peers import Estimator, PeerSpec, register_peer

#: beats before this time are left out of the beat scores of short suite clips (mir_eval's 5 s is for songs)
CLIP_SKIP_S = 1.0
#: tolerated gap between a beat list's mean inter-beat interval and the tempo label's (relative)
TEMPO_TOLERANCE = 0.02


def beat_problem(labels: Mapping[str, object], *, duration_s: float) -> str | None:
    """What is wrong with a clip's beat annotation (``None``: nothing)."""
    beats, downbeats = labels.get("beats"), labels.get("downbeats")
    if not isinstance(beats, list) or not isinstance(downbeats, list):
        return "beats/downbeats are missing (expected lists of times in seconds)"
    if len(beats) < 2:
        return f"{len(beats)} beat(s): a clip needs at least two to have a tempo"
    if any(b <= a for a, b in zip(beats, beats[1:])):
        return "beat times are not strictly increasing"
    if beats[0] < 0 or beats[-1] > duration_s + 1e-3:
        return f"beats run from {beats[0]} to {beats[-1]} s, outside the {duration_s:.3f} s clip"
    if not downbeats or not set(downbeats) <= set(beats):
        return "downbeats are empty or not all of them are beats"
    bpm = labels.get("bpm")
    if isinstance(bpm, (int, float)):
        mean_s = (beats[-1] - beats[0]) / (len(beats) - 1)
        if abs(mean_s * float(bpm) / 60.0 - 1.0) > TEMPO_TOLERANCE:
            return f"beats every {mean_s:.3f} s disagree with the tempo label {bpm} BPM ({60 / float(bpm):.3f} s)"
    meter = labels.get("meter")
    if isinstance(meter, int):
        index = {b: i for i, b in enumerate(beats)}
        if any((index[b] - index[a]) != meter for a, b in zip(downbeats, downbeats[1:])):
            return f"downbeats are not every {meter} beats (the meter label)"
    return None


@dataclass(frozen=True, kw_only=True)
class BeatKind(FrameKind):
    def encode(self, labels: dict[str, object], times_s: np.ndarray, *, rate_hz: float) -> np.ndarray:
        return np.stack([widened(times_s, labels["beats"], rate_hz),  # type: ignore[arg-type]
                         widened(times_s, labels["downbeats"], rate_hz)], axis=1)  # type: ignore[arg-type]

    def label_problem(self, labels: dict[str, object], *, duration_s: float) -> str | None:
        return beat_problem(labels, duration_s=duration_s)

    def decode_context(self, train_labels: Sequence[dict[str, object]]) -> dict[str, Any]:
        from mirkit.kinds.decode import tempo_range

        return {"tempo_range_bpm": tempo_range(train_labels)}

    def decode(self, activation: np.ndarray, times_s: np.ndarray, *, rate_hz: float,
               context: Mapping[str, Any] | None = None, full: bool = True) -> dict[str, Any]:
        from mirkit.kinds.decode import beats_from_activation, downbeats_from_beats, tempo_from_activation

        beats = beats_from_activation(activation[:, 0], times_s, rate_hz=rate_hz)
        out: dict[str, Any] = {"beats": beats, "downbeats": downbeats_from_beats(beats, activation[:, 1], times_s)}
        if full:
            tempo_range_bpm = (context or {}).get("tempo_range_bpm")
            out["tempo_bpm"] = tempo_from_activation(activation[:, 0], rate_hz=rate_hz,
                                                     tempo_range_bpm=tuple(tempo_range_bpm) if tempo_range_bpm else None)
        return out

    def score(self, labels: Sequence[dict[str, object]], decoded: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Beat scores; the downbeat F-measure when every clip has decoded ``downbeats``; tempo Acc1/Acc2
        when every clip has a decoded ``tempo_bpm`` and a ``bpm`` label."""
        from mirkit.metrics.rhythm import downbeat_f_measure, evaluate_beats, evaluate_tempo

        scores = evaluate_beats([c["beats"] for c in labels], [d["beats"] for d in decoded], skip_s=CLIP_SKIP_S)
        if all("downbeats" in d for d in decoded):
            scores["downbeat_f_measure"] = downbeat_f_measure([c["downbeats"] for c in labels],
                                                              [d["downbeats"] for d in decoded])
        if all("tempo_bpm" in d for d in decoded) and all("bpm" in c for c in labels):
            scores.update({f"tempo_{k}": v for k, v in evaluate_tempo(
                [float(c["bpm"]) for c in labels], [d["tempo_bpm"] for d in decoded]).items()})  # type: ignore[arg-type]
        scores["headline"] = scores[self.headline]
        return scores

    def to_row(self, decoded: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {"beats": [round(float(t), 3) for t in decoded["beats"]],
                               "downbeats": [round(float(t), 3) for t in decoded["downbeats"]]}
        if "tempo_bpm" in decoded:
            row["tempo_bpm"] = round(float(decoded["tempo_bpm"]), 2)
        return row

    def write_files(self, stem: Path, row: Mapping[str, Any]) -> None:
        from mirkit.files import atomic_write_text

        atomic_write_text(stem.with_name(stem.name + ".beats.txt"), "".join(f"{t:.3f}\n" for t in row["beats"]))
        atomic_write_text(stem.with_name(stem.name + ".downbeats.txt"),
                          "".join(f"{t:.3f}\n" for t in row["downbeats"]))


BEAT = register_kind(BeatKind(name="beat", headline="f_measure", outputs=2, min_frame_rate_hz=20.0,
                              description="beat and downbeat times, tempo read off the beats (F-measure)",
                              files="NAME.beats.txt, NAME.downbeats.txt (one time in seconds per line)"))



def _librosa_beats(spec: PeerSpec) -> Estimator:
    import librosa

    return lambda y: {"beats": np.unique(np.asarray(
        librosa.beat.beat_track(y=y, sr=spec.sample_rate, units="time", trim=False)[1], dtype=float))}


register_peer(PeerSpec("librosa-beat-track", "beat", "librosa", "ISC", 22050, "librosa.beat.beat_track beat times",
                       _librosa_beats))

__all__ = ["BEAT", "BeatKind", "CLIP_SKIP_S", "beat_problem"]
