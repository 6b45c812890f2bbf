"""Label encoding per task kind and the headline metric used for model selection.

Kinds: ``multiclass`` and ``key`` (class indices, cross-entropy), ``multilabel`` (multi-hot,
binary cross-entropy), ``regression`` (standardised values, MSE), ``tempo`` (log2 BPM, MSE).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirkit.errors import ConfigError
from mirkit.metrics import evaluate_classification, evaluate_key, evaluate_regression, evaluate_tagging, evaluate_tempo

KINDS = ("multiclass", "key", "multilabel", "regression", "tempo")


@dataclass
class Targets:
    """Encodes labels for one task kind; ``classes`` for the categorical kinds."""

    kind: str
    classes: list[str]
    dims: int = 1  # regression outputs (e.g. 2 for arousal/valence)

    @classmethod
    def fit(cls, kind: str, labels: list[object]) -> "Targets":
        if kind not in KINDS:
            raise ConfigError(f"task kind {kind!r} is not one of {KINDS}.")
        if kind in ("multiclass", "key"):
            classes = sorted({str(v) for v in labels})
        elif kind == "multilabel":
            classes = sorted({str(tag) for tags in labels for tag in tags})  # type: ignore[union-attr]
        else:
            classes = []
        dims = int(np.asarray(labels, dtype=np.float32).reshape(len(labels), -1).shape[1]) if kind == "regression" else 1
        return cls(kind, classes, dims)

    @property
    def output_dim(self) -> int:
        if self.kind in ("multiclass", "key", "multilabel"):
            return len(self.classes)
        return self.dims

    def encode(self, labels: list[object]) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        if self.kind in ("multiclass", "key"):
            unknown = sorted({str(v) for v in labels} - set(index))
            if unknown:
                raise ConfigError(f"labels {unknown[:5]} do not occur in the training split; cannot learn them.")
            return np.array([index[str(v)] for v in labels], dtype=np.int64)
        if self.kind == "multilabel":
            out = np.zeros((len(labels), len(self.classes)), dtype=np.float32)
            for i, tags in enumerate(labels):
                for tag in tags:  # type: ignore[union-attr]
                    if str(tag) in index:
                        out[i, index[str(tag)]] = 1
            return out
        values = np.asarray(labels, dtype=np.float32).reshape(len(labels), -1)
        return np.log2(values) if self.kind == "tempo" else values

    def decode(self, outputs: np.ndarray) -> list[object]:
        """Model outputs -> predictions in label space (class names, tag probabilities, values)."""
        if self.kind in ("multiclass", "key"):
            return [self.classes[i] for i in outputs.argmax(axis=1)]
        if self.kind == "multilabel":
            return list(1 / (1 + np.exp(-outputs)))
        values = outputs.reshape(len(outputs), -1)
        return list(2.0 ** values[:, 0]) if self.kind == "tempo" else list(values)

    def evaluate(self, labels: list[object], outputs: np.ndarray) -> dict[str, float]:
        """All metrics of this kind; ``headline`` is the one model selection maximises."""
        predictions = self.decode(outputs)
        if self.kind == "multiclass":
            out = evaluate_classification([str(v) for v in labels], predictions)
            out["headline"] = out["accuracy"]
        elif self.kind == "key":
            out = evaluate_key([str(v) for v in labels], predictions)
            out["headline"] = out["mirex_weighted"]
        elif self.kind == "multilabel":
            out = evaluate_tagging(self.encode(labels), outputs)
            out["headline"] = out["roc_auc"]
        elif self.kind == "tempo":
            out = evaluate_tempo(np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float))
            out["headline"] = out["acc1"]
        else:
            out = evaluate_regression(np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float))
            out["headline"] = out["r2"]
        return out
