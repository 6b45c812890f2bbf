"""Multi-label tagging: macro ROC-AUC and macro average precision (scikit-learn).

Conventions:
    ``reference``: ``(clips, tags)`` binary matrix; ``scores``: ``(clips, tags)`` real-valued
    scores (probabilities or logits; only their order matters). Tags with a single class in the
    reference (all 0 or all 1) have no defined ROC-AUC and are left out of the macro average;
    how many were left out is reported.
"""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError
from mirkit.metrics._checks import as_array, same_length


def validate(reference, scores) -> tuple[np.ndarray, np.ndarray]:
    ref = as_array(reference, name="reference", ndim=2)
    est = as_array(scores, name="scores", ndim=2)
    same_length(ref, est, names=("reference", "scores"))
    if ref.shape != est.shape:
        raise ConfigError(f"reference {ref.shape} and scores {est.shape} must have the same (clips, tags) shape.")
    if not np.isin(ref, (0, 1)).all():
        raise ConfigError("reference must be binary (0/1) per tag; did you pass scores as the reference?")
    return ref.astype(int), est


def evaluate_tagging(reference, scores) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    ref, est = validate(reference, scores)
    usable = [j for j in range(ref.shape[1]) if 0 < ref[:, j].sum() < len(ref)]
    if not usable:
        raise ConfigError("no tag has both positive and negative clips in the reference; ROC-AUC is undefined.")
    return {
        "roc_auc": float(roc_auc_score(ref[:, usable], est[:, usable], average="macro")),
        "average_precision": float(average_precision_score(ref[:, usable], est[:, usable], average="macro")),
        "tags_scored": float(len(usable)),
        "tags_skipped": float(ref.shape[1] - len(usable)),
    }
