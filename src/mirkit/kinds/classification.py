"""``multiclass``: one class per clip (instrument family, pitch, genre, singer...).

Conventions: labels are class names (strings; numbers are read as their string); outputs are logits
``(clips, classes)``; the headline is accuracy. The classes are those of the task's vocabulary plus
any seen in training, sorted, so a class absent from training is still scored (as wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.errors import ConfigError
from mirkit.kinds.base import ClipKind, register_kind


@dataclass(frozen=True, kw_only=True)
class ClassKind(ClipKind):
    """A categorical clip kind: class indices, cross-entropy, the arg-max class as the prediction."""

    loss: str = "cross_entropy"

    def classes(self, labels: Sequence[object], vocabulary: Sequence[str]) -> list[str]:
        return sorted(set(vocabulary) | {str(v) for v in labels})

    def encode(self, labels: Sequence[object], classes: Sequence[str]) -> np.ndarray:
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted({str(v) for v in labels} - set(index))
        if unknown:
            raise ConfigError(f"labels {unknown[:5]} do not occur in the training split; cannot learn them.")
        return np.array([index[str(v)] for v in labels], dtype=np.int64)

    def decode(self, outputs: np.ndarray, classes: Sequence[str]) -> list[object]:
        return [classes[i] for i in outputs.argmax(axis=1)]

    def headline_batch(self, encoded: np.ndarray, outputs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        return (outputs.argmax(axis=-1) == encoded[None]).mean(axis=1)

    def score(self, references: Sequence[object], estimates: Sequence[object]) -> dict[str, float]:
        from mirkit.metrics import evaluate_classification

        out = evaluate_classification([str(v) for v in references], [str(v) for v in estimates])
        out["headline"] = out[self.headline]
        return out

    def prediction_row(self, path: str, classes: Sequence[str], output: np.ndarray, value: object, *,
                       top_k: int) -> dict[str, object]:
        probs = np.exp(output - output.max())
        probs /= probs.sum()
        order = np.argsort(-probs)[:top_k]
        return {"path": path, "prediction": value, "scores": {classes[i]: round(float(probs[i]), 4) for i in order}}

    def check_label(self, value: object, *, labels: dict[str, object], vocabulary: Sequence[str], folder: Path,
                    duration_s: float) -> str | None:
        if str(value) in vocabulary:
            return None
        shown = ", ".join(list(vocabulary)[:12]) + (", ..." if len(vocabulary) > 12 else "")
        return f"label {value!r} is not in the vocabulary ({shown})"


MULTICLASS = register_kind(ClassKind(name="multiclass", headline="accuracy",
                                     description="one class per clip (accuracy)"))

__all__ = ["MULTICLASS", "ClassKind"]
