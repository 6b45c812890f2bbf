"""Key estimation: the MIREX weighted score (mir_eval.key).

Conventions:
    Keys are strings ``"<tonic> <mode>"`` with tonic in C, C#, Db, ..., B and mode ``major`` or
    ``minor`` (e.g. ``"F# minor"``). Per clip the MIREX score is 1 for the right key, 0.5 for a
    perfect fifth away in the same mode, 0.3 for the relative major/minor, 0.2 for the parallel
    major/minor, else 0; the task score is the mean over clips.
"""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError
from mirkit.metrics._checks import same_length


def validate(reference, estimate) -> tuple[list[str], list[str]]:
    import mir_eval

    ref, est = [str(k) for k in reference], [str(k) for k in estimate]
    same_length(np.asarray(ref), np.asarray(est), names=("reference", "estimate"))
    for name, keys in (("reference", ref), ("estimate", est)):
        for key in keys:
            try:
                mir_eval.key.validate_key(key)
            except ValueError as exc:
                raise ConfigError(f"{name} key {key!r} is not a key string like 'F# minor' ({exc}).") from None
    return ref, est


def mirex_key_score(reference, estimate) -> float:
    import mir_eval

    ref, est = validate(reference, estimate)
    return float(np.mean([mir_eval.key.weighted_score(r, e) for r, e in zip(ref, est)]))


def evaluate_key(reference, estimate) -> dict[str, float]:
    ref, est = validate(reference, estimate)
    return {"mirex_weighted": mirex_key_score(ref, est), "accuracy": float(np.mean([r == e for r, e in zip(ref, est)]))}
