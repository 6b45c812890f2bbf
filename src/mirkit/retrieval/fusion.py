"""Rank fusion for hybrid search: reciprocal rank fusion of the dense and full-text lists, and a
bonus for tracks named in the query.

Used by :mod:`mirkit.retrieval.search` (serving) and :mod:`mirkit.retrieval.evaluate` (the same
fusion scored on held-out tracks), so both rank alike. The formula and the reasons for the name
bonus are in :mod:`mirkit.retrieval.search`'s docstring.
"""

from __future__ import annotations

import re

import numpy as np

RRF_K = 60
TITLE_BONUS = 1.0
ARTIST_BONUS = 0.5
MAX_NAME_WORDS = 12


def rrf_fuse(dense: np.ndarray, text_ranks: dict[int, int], *, candidates: int,
             weights: tuple[float, float] = (1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Fused scores ``(n,)`` and dense ranks ``(n,)`` (0 = outside the dense candidates).

    Args:
        dense: cosine similarity of every track to the query.
        text_ranks: row index -> 1-based full-text rank, for the full-text candidates.
        candidates: how many of the dense list take part.
    """
    if candidates < len(dense):  # every track tied with the last candidate, then an exact sort of those
        cut = np.partition(dense, len(dense) - candidates)[len(dense) - candidates]
        pool = np.flatnonzero(dense >= cut)
    else:
        pool = np.arange(len(dense))
    order = pool[np.lexsort((pool, -dense[pool]))][:candidates]
    dense_rank = np.zeros(len(dense), dtype=np.int64)
    dense_rank[order] = np.arange(1, len(order) + 1)
    fused = np.zeros(len(dense), dtype=np.float64)
    fused[order] += weights[0] / (RRF_K + dense_rank[order])
    for row, rank in text_ranks.items():
        fused[row] += weights[1] / (RRF_K + rank)
    return fused, dense_rank


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class NameIndex:
    """Finds tracks named in a query: whole titles and artists, word-aligned and case-insensitive."""

    def __init__(self, rows) -> None:
        self.titles: dict[str, list[int]] = {}
        self.artists: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            for field_name, names in (("title", self.titles), ("artist", self.artists)):
                key = " ".join(_words(str(row.get(field_name) or "")))
                if len(key) >= 3 and len(key.split()) <= MAX_NAME_WORDS:
                    names.setdefault(key, []).append(i)

    def matches(self, query: str) -> dict[int, float]:
        """Row -> bonus (+1 per title, +0.5 per artist contained in the query)."""
        words = _words(query)
        found: dict[int, float] = {}
        for size in range(1, min(len(words), MAX_NAME_WORDS) + 1):
            for start in range(len(words) - size + 1):
                phrase = " ".join(words[start:start + size])
                for row in self.titles.get(phrase, ()):
                    found[row] = found.get(row, 0.0) + TITLE_BONUS
                for row in self.artists.get(phrase, ()):
                    found[row] = found.get(row, 0.0) + ARTIST_BONUS
        return found
