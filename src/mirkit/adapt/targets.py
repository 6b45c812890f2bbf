"""Label encoding per task kind and the headline metric used for model selection.

Kinds: ``multiclass`` and ``key`` (class indices, cross-entropy), ``multilabel`` (multi-hot,
binary cross-entropy), ``regression`` (standardised values, MSE), ``tempo`` (log2 BPM, MSE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from mirkit.errors import ConfigError
from mirkit.metrics import (
    evaluate_classification,
    evaluate_key,
    evaluate_regression,
    evaluate_tagging,
    evaluate_tempo,
)

KINDS = ("multiclass", "key", "multilabel", "regression", "tempo")


@dataclass
class Targets:
    """Encodes labels for one task kind; ``classes`` for the categorical kinds."""

    kind: str
    classes: list[str]
    dims: int = 1  # regression outputs (e.g. 2 for arousal/valence)

    @classmethod
    def fit(cls, kind: str, labels: list[object], vocabulary: Sequence[str] = ()) -> "Targets":
        """Targets for ``labels`` (the training split); categorical classes are those seen in training plus
        ``vocabulary`` (the task's classes), so a class absent from training is still scored (as wrong)."""
        if kind not in KINDS:
            raise ConfigError(f"task kind {kind!r} is not one of {KINDS}.")
        if kind == "key":  # all 24 keys, so a key absent from training can still be scored (as wrong)
            from mirkit.data.tasks import KEYS

            classes = sorted(set(KEYS) | set(vocabulary) | {str(v) for v in labels})
        elif kind == "multiclass":
            classes = sorted(set(vocabulary) | {str(v) for v in labels})
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
            return list(expit(outputs))
        values = outputs.reshape(len(outputs), -1)
        if self.kind == "tempo":  # log2 BPM; a wild output becomes 1 or 4096 BPM (scored wrong), never inf/NaN
            return list(2.0 ** np.clip(np.nan_to_num(values[:, 0], nan=0.0), 0.0, 12.0))
        return list(np.nan_to_num(values, nan=0.0, posinf=1e6, neginf=-1e6))

    def headline_batch(self, encoded: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """The headline metric of many models at once, vectorised (the probe sweep selects with it).

        Args:
            encoded: ``self.encode(labels)`` of the clips scored.
            outputs: ``(models, clips, output_dim)`` raw outputs (logits, or values in encoded label units:
                log2 BPM for tempo).
        Returns ``(models,)``; equal to ``evaluate(labels, outputs[m])["headline"]`` per model (tested).
        """
        outputs = np.nan_to_num(outputs, nan=0.0, posinf=1e6, neginf=-1e6)  # a diverged model scores, badly
        if self.kind == "multiclass":
            return (outputs.argmax(axis=-1) == encoded[None]).mean(axis=1)
        if self.kind == "key":
            return self._key_scores()[encoded[None], outputs.argmax(axis=-1)].mean(axis=1)
        if self.kind == "multilabel":
            from scipy.stats import rankdata

            positives = encoded.sum(axis=0)
            usable = (positives > 0) & (positives < len(encoded))
            if not usable.any():
                raise ConfigError("no tag has both positive and negative clips; ROC-AUC is undefined.")
            y, pos = encoded[:, usable].astype(bool), positives[usable]
            ranks = rankdata(outputs[:, :, usable], axis=1)  # ties share their average rank, as in ROC-AUC
            rank_sum = (ranks * y[None]).sum(axis=1)
            auc = (rank_sum - pos * (pos + 1) / 2) / (pos * (len(encoded) - pos))
            return auc.mean(axis=1)
        if self.kind == "tempo":
            estimate = 2.0 ** np.clip(np.nan_to_num(outputs[:, :, 0], nan=0.0), 0.0, 12.0)
            reference = 2.0 ** encoded[None, :, 0]
            return (np.abs(estimate - reference) <= 0.04 * reference).mean(axis=1)
        residual = ((outputs - encoded[None]) ** 2).sum(axis=1)
        total = ((encoded - encoded.mean(axis=0)) ** 2).sum(axis=0)[None]
        r2 = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1), (residual == 0).astype(float))
        return r2.mean(axis=1)

    def _key_scores(self) -> np.ndarray:
        """MIREX weighted score of every (reference, estimate) class pair, from mir_eval."""
        if not hasattr(self, "_key_table"):
            import mir_eval

            self._key_table = np.array([[mir_eval.key.weighted_score(r, e) for e in self.classes] for r in self.classes])
        return self._key_table

    def evaluate(self, labels: list[object], outputs: np.ndarray) -> dict[str, float]:
        """All metrics of this kind; ``headline`` is the one model selection maximises."""
        outputs = np.nan_to_num(outputs, nan=0.0, posinf=1e6, neginf=-1e6)
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
