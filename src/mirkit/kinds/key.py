"""``key``: the key of a clip, one of 24 (tonic x major/minor), scored with the MIREX weighted score.

Conventions: labels are ``"<tonic> <mode>"`` with sharps (``"F# minor"``); a peer's flat spelling is
read as its sharp (:func:`~mirkit.kinds.labels.sharp_key`). The classes are all 24 keys, so a key
absent from training can still be scored (as wrong). Headline: ``mirex_weighted`` (mir_eval's
weighted score: 1 same key, 0.5 fifth, 0.3 relative, 0.2 parallel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mirkit.kinds.base import register_kind
from mirkit.kinds.classification import ClassKind
from mirkit.kinds.labels import KEYS, sharp_key
from mirkit.kinds.peers import Estimator, PeerSpec, register_peer


@lru_cache(maxsize=8)
def _key_scores(classes: tuple[str, ...]) -> np.ndarray:
    """MIREX weighted score of every (reference, estimate) class pair, from mir_eval."""
    import mir_eval

    return np.array([[mir_eval.key.weighted_score(r, e) for e in classes] for r in classes])


@dataclass(frozen=True, kw_only=True)
class KeyKind(ClassKind):
    def classes(self, labels: Sequence[object], vocabulary: Sequence[str]) -> list[str]:
        return sorted(set(KEYS) | set(vocabulary) | {str(v) for v in labels})

    def headline_batch(self, encoded: np.ndarray, outputs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        return _key_scores(tuple(classes))[encoded[None], outputs.argmax(axis=-1)].mean(axis=1)

    def score(self, references: Sequence[object], estimates: Sequence[object]) -> dict[str, float]:
        from mirkit.metrics import evaluate_key

        out = evaluate_key([str(v) for v in references], [sharp_key(str(v)) for v in estimates])
        out["headline"] = out[self.headline]
        return out


KEY = register_kind(KeyKind(name="key", headline="mirex_weighted",
                            description="24 keys, tonic x major/minor (MIREX weighted score)"))

#: Krumhansl & Kessler (1982) probe-tone profiles, C major and C minor.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def krumhansl_key(chroma: np.ndarray) -> str:
    """The key (``"C# minor"``) whose rotated profile correlates best with a 12-bin chroma vector."""
    scores = [np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
              for profile in (MAJOR_PROFILE, MINOR_PROFILE) for tonic in range(12)]
    return KEYS[int(np.argmax(scores))]


def _librosa_key(spec: PeerSpec) -> Estimator:
    import librosa

    return lambda y: krumhansl_key(librosa.feature.chroma_cqt(y=y, sr=spec.sample_rate).mean(axis=1))


register_peer(PeerSpec("librosa-ks", "key", "librosa", "ISC", 22050,
                       "CQT chroma + Krumhansl-Kessler profiles (librosa)", _librosa_key))

__all__ = ["KEY", "KeyKind", "krumhansl_key"]
