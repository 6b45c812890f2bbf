"""``regression``: one or more values per clip (arousal and valence...), scored by R².

Conventions: a label is a number or a list of numbers (all clips the same length); targets are
``(clips, dims)`` floats, standardised with training statistics for the loss (mean squared error);
the headline is the mean R² over dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.kinds.base import ClipKind, register_kind


@dataclass(frozen=True, kw_only=True)
class ValueKind(ClipKind):
    loss: str = "mse"

    def dims(self, labels: Sequence[object]) -> int:
        return int(np.asarray(labels, dtype=np.float32).reshape(len(labels), -1).shape[1])

    def encode(self, labels: Sequence[object], classes: Sequence[str]) -> np.ndarray:
        return np.asarray(labels, dtype=np.float32).reshape(len(labels), -1)

    def decode(self, outputs: np.ndarray, classes: Sequence[str]) -> list[object]:
        values = outputs.reshape(len(outputs), -1)
        return list(np.nan_to_num(values, nan=0.0, posinf=1e6, neginf=-1e6))

    def headline_batch(self, encoded: np.ndarray, outputs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        residual = ((outputs - encoded[None]) ** 2).sum(axis=1)
        total = ((encoded - encoded.mean(axis=0)) ** 2).sum(axis=0)[None]
        r2 = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1), (residual == 0).astype(float))
        return r2.mean(axis=1)

    def score(self, references: Sequence[object], estimates: Sequence[object]) -> dict[str, float]:
        from mirkit.metrics import evaluate_regression

        out = evaluate_regression(np.asarray(references, dtype=float), np.asarray(estimates, dtype=float))
        out["headline"] = out[self.headline]
        return out

    def check_label(self, value: object, *, labels: dict[str, object], vocabulary: Sequence[str], folder: Path,
                    duration_s: float) -> str | None:
        try:
            finite = bool(np.isfinite(np.asarray(value, dtype=float)).all())
        except (TypeError, ValueError):
            finite = False
        return None if finite else f"label {value!r} is not a finite number or list of numbers"


REGRESSION = register_kind(ValueKind(name="regression", headline="r2", description="values per clip (R²)"))

__all__ = ["REGRESSION", "ValueKind"]
