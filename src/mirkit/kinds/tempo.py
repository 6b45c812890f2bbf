"""``tempo``: the tempo of a clip in BPM, scored by Acc1 (within 4 %) and Acc2 (octave errors allowed).

Conventions: a label is a BPM (20-400); the head predicts log2 BPM (mean squared error on
standardised log2 BPM), so a tempo twice as fast is one unit away; a wild output decodes to 1 or
4096 BPM (scored wrong), never inf or NaN. Headline: ``acc1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.kinds.base import register_kind
from mirkit.kinds.peers import Estimator, PeerSpec, register_peer
from mirkit.kinds.regression import ValueKind

TOLERANCE = 0.04  # Acc1: within 4 % of the reference (MIREX)


@dataclass(frozen=True, kw_only=True)
class TempoKind(ValueKind):
    def dims(self, labels: Sequence[object]) -> int:
        return 1

    def encode(self, labels: Sequence[object], classes: Sequence[str]) -> np.ndarray:
        return np.log2(np.asarray(labels, dtype=np.float32).reshape(len(labels), -1))

    def decode(self, outputs: np.ndarray, classes: Sequence[str]) -> list[object]:
        values = outputs.reshape(len(outputs), -1)
        return list(2.0 ** np.clip(np.nan_to_num(values[:, 0], nan=0.0), 0.0, 12.0))

    def headline_batch(self, encoded: np.ndarray, outputs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        estimate = 2.0 ** np.clip(np.nan_to_num(outputs[:, :, 0], nan=0.0), 0.0, 12.0)
        reference = 2.0 ** encoded[None, :, 0]
        return (np.abs(estimate - reference) <= TOLERANCE * reference).mean(axis=1)

    def score(self, references: Sequence[object], estimates: Sequence[object]) -> dict[str, float]:
        from mirkit.metrics import evaluate_tempo

        out = evaluate_tempo(np.asarray(references, dtype=float), np.asarray(estimates, dtype=float))
        out["headline"] = out[self.headline]
        return out

    def prediction_row(self, path: str, classes: Sequence[str], output: np.ndarray, value: object, *,
                       top_k: int) -> dict[str, object]:
        return {"path": path, "prediction": round(float(value), 2), "scores": {}}  # type: ignore[arg-type]

    def check_label(self, value: object, *, labels: dict[str, object], vocabulary: Sequence[str], folder: Path,
                    duration_s: float) -> str | None:
        return None if isinstance(value, (int, float)) and 20 <= float(value) <= 400 else f"bpm {value!r} out of 20-400"


TEMPO = register_kind(TempoKind(name="tempo", headline="acc1", description="tempo in BPM (Acc1, Acc2)"))


def _librosa_tempo(spec: PeerSpec) -> Estimator:
    import librosa

    return lambda y: float(np.atleast_1d(librosa.beat.beat_track(y=y, sr=spec.sample_rate)[0])[0])


register_peer(PeerSpec("librosa-tempo", "tempo", "librosa", "ISC", 22050, "librosa.beat.beat_track global tempo",
                       _librosa_tempo))

__all__ = ["TEMPO", "TempoKind"]
