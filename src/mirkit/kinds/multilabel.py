"""``multilabel``: any number of tags per clip, scored by macro ROC-AUC.

Conventions: a label is a list of tag names; targets are multi-hot ``(clips, tags)`` over the tags
seen in training; outputs are logits and predictions their sigmoid probabilities. Headline:
``roc_auc`` over the tags with both positive and negative clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.errors import ConfigError
from mirkit.kinds.base import ClipKind, register_kind


@dataclass(frozen=True, kw_only=True)
class TagKind(ClipKind):
    loss: str = "binary_cross_entropy"

    def classes(self, labels: Sequence[object], vocabulary: Sequence[str]) -> list[str]:
        return sorted({str(tag) for tags in labels for tag in tags})  # type: ignore[union-attr]

    def encode(self, labels: Sequence[object], classes: Sequence[str]) -> np.ndarray:
        index = {c: i for i, c in enumerate(classes)}
        out = np.zeros((len(labels), len(classes)), dtype=np.float32)
        for i, tags in enumerate(labels):
            for tag in tags:  # type: ignore[union-attr]
                if str(tag) in index:
                    out[i, index[str(tag)]] = 1
        return out

    def decode(self, outputs: np.ndarray, classes: Sequence[str]) -> list[object]:
        from scipy.special import expit  # overflow-free sigmoid of confident logits

        return list(expit(outputs))

    def headline_batch(self, encoded: np.ndarray, outputs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
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

    def evaluate(self, labels: Sequence[object], outputs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
        from mirkit.metrics import evaluate_tagging

        out = evaluate_tagging(self.encode(labels, classes), outputs)
        out["headline"] = out[self.headline]
        return out

    def score(self, references: Sequence[object], estimates: Sequence[object]) -> dict[str, float]:
        """``estimates``: per clip a ``{tag: probability}`` mapping (tags it leaves out score 0)."""
        from mirkit.metrics import evaluate_tagging

        classes = self.classes(references, ())
        scores = np.array([[float(dict(e).get(c, 0.0)) for c in classes] for e in estimates])  # type: ignore[call-overload]
        out = evaluate_tagging(self.encode(references, classes), scores)
        out["headline"] = out[self.headline]
        return out

    def prediction_row(self, path: str, classes: Sequence[str], output: np.ndarray, value: object, *,
                       top_k: int) -> dict[str, object]:
        probs = np.asarray(value, dtype=float)
        return {"path": path, "prediction": [classes[i] for i in np.flatnonzero(probs >= 0.5)],
                "scores": {classes[i]: round(float(probs[i]), 4) for i in np.argsort(-probs)[:top_k]}}

    def check_label(self, value: object, *, labels: dict[str, object], vocabulary: Sequence[str], folder: Path,
                    duration_s: float) -> str | None:
        bad = [tag for tag in value if tag not in vocabulary]  # type: ignore[union-attr]
        return f"tags {bad} are not in the vocabulary" if bad else None


MULTILABEL = register_kind(TagKind(name="multilabel", headline="roc_auc",
                                   description="any number of tags per clip (macro ROC-AUC)"))

__all__ = ["MULTILABEL", "TagKind"]
