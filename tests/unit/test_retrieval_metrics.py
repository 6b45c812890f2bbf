"""Retrieval metrics against hand-computed answers and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import label_ranking_average_precision_score, ndcg_score

from mirkit.errors import ConfigError
from mirkit.metrics import retrieval as m


def test_perfect_and_wrong_rankings():
    relevance = np.eye(3)
    assert m.evaluate(np.eye(3), relevance) == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "mAP@10": 1.0, "MRR": 1.0,
                                               "median_rank": 1.0, "queries": 3.0}
    wrong = 1 - np.eye(3)  # every relevant item ranks last of 3
    result = m.evaluate(wrong, relevance)
    assert result["R@1"] == 0.0 and result["MRR"] == pytest.approx(1 / 3) and result["median_rank"] == 3.0


def test_hand_computed_case():
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.1, 0.2, 0.3, 0.4]])
    relevance = np.array([[0, 1, 0, 1], [1, 0, 0, 0]])
    # query 0: relevant at ranks 2 and 4 -> AP = (1/2 + 2/4) / 2 = 0.5; query 1: relevant at rank 4 -> AP 0.25
    assert m.average_precision_at_k(scores, relevance, k=10) == pytest.approx((0.5 + 0.25) / 2)
    assert m.mean_reciprocal_rank(scores, relevance) == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert m.recall_at_k(scores, relevance, k=1) == 0.0
    assert m.recall_at_k(scores, relevance, k=2) == 0.5
    assert m.median_rank(scores, relevance) == 3.0


def test_map_matches_sklearn_when_k_covers_everything():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((20, 15))
    relevance = (rng.random((20, 15)) < 0.3).astype(int)
    relevance[relevance.sum(1) == 0, 0] = 1
    expected = label_ranking_average_precision_score(relevance, scores)
    # LRAP equals AP when there are no ties and every relevant item is within the cut-off
    assert m.average_precision_at_k(scores, relevance, k=15) == pytest.approx(expected)


def test_ndcg_matches_sklearn_and_ties_break_by_index():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((5, 12))
    relevance = rng.integers(0, 3, (5, 12)).astype(float)
    relevance[:, 0] += 1
    assert m.ndcg_at_k(scores, relevance, k=10) == pytest.approx(ndcg_score(relevance, scores, k=10))
    tied = np.zeros((1, 3))
    assert m.first_relevant_rank(tied, np.array([[0, 0, 1]]))[0] == 3  # lower index first on ties
    assert m.ranking(tied).tolist() == [[0, 1, 2]]


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match="no relevant item"):
        m.evaluate(np.zeros((2, 3)), np.array([[1, 0, 0], [0, 0, 0]]))
    with pytest.raises(ConfigError, match="must both be"):
        m.evaluate(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="0/1"):
        m.evaluate(np.zeros((1, 2)), np.array([[2, 0]]))
    with pytest.raises(ConfigError, match="NaN"):
        m.evaluate(np.array([[np.nan, 0]]), np.array([[1, 0]]))
