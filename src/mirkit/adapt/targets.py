"""The label encoding of one clip-level task as a trained head keeps it: its kind's name, the classes
seen in training (plus the task's vocabulary) and the outputs per clip; everything the kind does
with them (encoding, decoding, metrics) is the kind's (:mod:`mirkit.kinds`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mirkit.kinds import ClipKind, clip_kind


@dataclass
class Targets:
    """Encodes labels for one clip-level kind; ``classes`` for the categorical kinds."""

    kind: str
    classes: list[str]
    dims: int = 1  # regression outputs (e.g. 2 for arousal/valence)

    @property
    def spec(self) -> ClipKind:
        return clip_kind(self.kind)

    @classmethod
    def fit(cls, kind: str, labels: list[object], vocabulary: Sequence[str] = ()) -> "Targets":
        """Targets for ``labels`` (the training split); categorical classes are those seen in training plus
        ``vocabulary`` (the task's classes), so a class absent from training is still scored (as wrong)."""
        spec = clip_kind(kind)
        return cls(kind, spec.classes(labels, vocabulary), spec.dims(labels))

    @property
    def output_dim(self) -> int:
        return self.dims if self.spec.standardise_targets else len(self.classes)

    def encode(self, labels: list[object]) -> np.ndarray:
        return self.spec.encode(labels, self.classes)

    def decode(self, outputs: np.ndarray) -> list[object]:
        """Model outputs -> predictions in label space (class names, tag probabilities, values)."""
        return self.spec.decode(outputs, self.classes)

    def headline_batch(self, encoded: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """The headline metric of many models at once, vectorised (the probe sweep selects with it).

        Args:
            encoded: ``self.encode(labels)`` of the clips scored.
            outputs: ``(models, clips, output_dim)`` raw outputs (logits, or values in encoded label units:
                log2 BPM for tempo).
        Returns ``(models,)``; equal to ``evaluate(labels, outputs[m])["headline"]`` per model (tested).
        """
        outputs = np.nan_to_num(outputs, nan=0.0, posinf=1e6, neginf=-1e6)  # a diverged model scores, badly
        return self.spec.headline_batch(encoded, outputs, self.classes)

    def evaluate(self, labels: list[object], outputs: np.ndarray) -> dict[str, float]:
        """All metrics of this kind; ``headline`` is the one model selection maximises."""
        outputs = np.nan_to_num(outputs, nan=0.0, posinf=1e6, neginf=-1e6)
        return self.spec.evaluate(labels, outputs, self.classes)

    def prediction_row(self, path: str, output: np.ndarray, value: object, *, top_k: int) -> dict[str, object]:
        """One file's line of ``mirkit predict``."""
        return self.spec.prediction_row(path, self.classes, output, value, top_k=top_k)
