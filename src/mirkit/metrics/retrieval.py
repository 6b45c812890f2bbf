"""Retrieval metrics for text -> music search: R@k, mAP@k, MRR, median rank, nDCG.

Conventions
-----------
- ``scores``: ``(n_queries, n_items)`` similarities, higher = better. Ties are broken by item index
  (lower index ranks first), so results are deterministic.
- ``relevance``: ``(n_queries, n_items)``; binary (0/1) for R@k, mAP, MRR and median rank; graded
  (non-negative) relevance is allowed for nDCG only. Every query needs at least one relevant item.
- R@k is the share of queries with at least one relevant item among the top k (the usual
  text-to-music "recall at k"; with one relevant item per query it is plain recall).
- mAP@k: average precision at cut-off k, normalised by ``min(k, n_relevant)`` (so a perfect
  ranking scores 1 even when a query has more than k relevant items), averaged over queries.
- MRR: mean of 1 / (rank of the first relevant item); ranks are 1-based.
- Median rank: median over queries of the rank of the first relevant item (1 = perfect).
- nDCG@k uses scikit-learn's ``ndcg_score`` (linear gains, log2 discount).
"""

from __future__ import annotations

import numpy as np

from mirkit.errors import ConfigError


def validate(scores: np.ndarray, relevance: np.ndarray, *, graded: bool = False) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    relevance = np.asarray(relevance, dtype=np.float64)
    if scores.ndim != 2 or scores.shape != relevance.shape:
        raise ConfigError(f"scores {scores.shape} and relevance {relevance.shape} must both be (n_queries, n_items).")
    if scores.shape[1] == 0 or scores.shape[0] == 0:
        raise ConfigError(f"retrieval metrics need at least one query and one item, got scores {scores.shape}.")
    if not np.isfinite(scores).all():
        raise ConfigError("scores contain NaN or infinite values; check the embeddings.")
    if (relevance < 0).any() or (not graded and not np.isin(relevance, (0.0, 1.0)).all()):
        raise ConfigError("relevance must be 0/1 (graded relevance >= 0 is for nDCG only).")
    empty = np.flatnonzero(relevance.sum(1) == 0)
    if len(empty):
        raise ConfigError(f"queries {empty[:5].tolist()} have no relevant item; drop them before scoring.")
    return scores, relevance


def ranking(scores: np.ndarray) -> np.ndarray:
    """Item indices per query, best first; ties by lower item index."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)


def first_relevant_rank(scores: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """1-based rank of the first relevant item, per query."""
    scores, relevance = validate(scores, relevance)
    order = ranking(scores)
    hits = np.take_along_axis(relevance, order, axis=1) > 0
    return hits.argmax(axis=1) + 1


def recall_at_k(scores: np.ndarray, relevance: np.ndarray, *, k: int) -> float:
    return float((first_relevant_rank(scores, relevance) <= k).mean())


def average_precision_at_k(scores: np.ndarray, relevance: np.ndarray, *, k: int) -> float:
    scores, relevance = validate(scores, relevance)
    order = ranking(scores)[:, :k]
    hits = np.take_along_axis(relevance, order, axis=1)
    precision = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    denominator = np.minimum(relevance.sum(1), k)
    return float(((precision * hits).sum(1) / denominator).mean())


def mean_reciprocal_rank(scores: np.ndarray, relevance: np.ndarray) -> float:
    return float((1.0 / first_relevant_rank(scores, relevance)).mean())


def median_rank(scores: np.ndarray, relevance: np.ndarray) -> float:
    return float(np.median(first_relevant_rank(scores, relevance)))


def ndcg_at_k(scores: np.ndarray, relevance: np.ndarray, *, k: int) -> float:
    from sklearn.metrics import ndcg_score

    scores, relevance = validate(scores, relevance, graded=True)
    # scikit-learn averages tied scores; break ties by item index as everywhere else
    jitter = -np.arange(scores.shape[1]) * 1e-9 * max(1.0, float(np.abs(scores).max()))
    return float(ndcg_score(relevance, scores + jitter, k=k))


def evaluate(scores: np.ndarray, relevance: np.ndarray, *, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """R@k for ``ks``, mAP@10, MRR, median rank and the number of queries."""
    result = {f"R@{k}": recall_at_k(scores, relevance, k=k) for k in ks}
    result["mAP@10"] = average_precision_at_k(scores, relevance, k=10)
    result["MRR"] = mean_reciprocal_rank(scores, relevance)
    result["median_rank"] = median_rank(scores, relevance)
    result["queries"] = float(len(relevance))
    return result
