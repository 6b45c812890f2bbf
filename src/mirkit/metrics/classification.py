"""Single-label classification.

Conventions:
    ``reference`` and ``estimate`` are 1-D sequences of class labels (any hashable: strings or
    integers), one per clip, in the same order. Accuracy is the fraction of exact matches.
    Balanced accuracy is the mean recall over the classes present in ``reference`` (scikit-learn's
    definition); predicting a class the reference lacks counts as an error. Small test splits often
    lack some classes, so scikit-learn's warning about that case is expected here and not shown.
"""

from __future__ import annotations

import warnings

import numpy as np

from mirkit.metrics._checks import same_length


def validate(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    ref, est = np.asarray(reference, dtype=object), np.asarray(estimate, dtype=object)
    same_length(ref, est, names=("reference", "estimate"))
    return ref, est


def accuracy(reference, estimate) -> float:
    ref, est = validate(reference, estimate)
    return float(np.mean(ref == est))


def evaluate_classification(reference, estimate) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score

    ref, est = validate(reference, estimate)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = float(balanced_accuracy_score(ref.astype(str), est.astype(str)))
    return {"accuracy": accuracy(ref, est), "balanced_accuracy": balanced}
