"""Held-out evaluation of text -> music search: query sets, scorers and the metric table.

Query groups, built from the held-out tracks only (the candidates are the held-out tracks):

- ``tag``: one query per tag present among them ("rock", "minor key"); relevant = tracks with that tag;
- ``tags``: one query per track listing all its tags; relevant = tracks having every one of them;
- ``metadata``: "{title} by {artist}" per track (title alone when there is no artist); relevant =
  tracks with that title and artist;
- ``artist``: "similar to {B}" for each artist B named in the artist-similarity file; graded
  relevance 1 for tracks whose artist lists B as similar (scored with nDCG@10).

Tags are the suite's labels, or musicnn pseudo-tags for tracks without labels (then the group is
named ``pseudo-tag`` / ``pseudo-tags``, since it measures agreement with musicnn, not ground truth).

Systems scored on every group: ``model`` (joint space only), ``hybrid`` (model + full-text, the
fusion of :mod:`mirkit.retrieval.search`), ``text`` (no trained model: MiniLM of the query vs.
MiniLM of each track's text: metadata, labels, pseudo-tags) and ``text-no-labels`` (the same
without suite labels: metadata and pseudo-tags only, what a user without annotations has).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mirkit.metrics import retrieval as metrics
from mirkit.retrieval.captions import tag_phrase
from mirkit.retrieval.fusion import NameIndex, rrf_fuse
from mirkit.retrieval.index import track_text


@dataclass
class QueryGroup:
    name: str
    queries: list[str]
    relevance: np.ndarray  # (n_queries, n_candidates)
    graded: bool = False


def _tags(row: Mapping[str, object]) -> tuple[list[str], bool]:
    labels = list(row.get("tags") or [])
    return (labels, False) if labels else (list(row.get("pseudo_tags") or []), True)


def build_queries(rows: Sequence[Mapping[str, object]], *, similar: Mapping[str, list[str]] | None = None) -> list[QueryGroup]:
    """The query groups over ``rows`` (the candidates); groups without a usable query are left out."""
    groups: list[QueryGroup] = []
    tag_sets = [set(_tags(r)[0]) for r in rows]
    pseudo = all(_tags(r)[1] for r in rows if _tags(r)[0])
    prefix = "pseudo-" if pseudo else ""
    vocabulary = sorted(set().union(*tag_sets)) if tag_sets else []
    if vocabulary:
        relevance = np.array([[tag in s for s in tag_sets] for tag in vocabulary], dtype=np.float64)
        groups.append(QueryGroup(f"{prefix}tag", [tag_phrase(t) for t in vocabulary], relevance))
        full = sorted({tuple(sorted(s)) for s in tag_sets if s})
        relevance = np.array([[set(combo) <= s for s in tag_sets] for combo in full], dtype=np.float64)
        groups.append(QueryGroup(f"{prefix}tags", [", ".join(tag_phrase(t) for t in combo) for combo in full], relevance))
    keys = sorted({(str(r.get("title") or ""), str(r.get("artist") or "")) for r in rows if r.get("title")})
    if keys:
        queries = [f"{title} by {artist}" if artist else title for title, artist in keys]
        relevance = np.array([[(str(r.get("title") or ""), str(r.get("artist") or "")) == key for r in rows] for key in keys],
                             dtype=np.float64)
        groups.append(QueryGroup("metadata", queries, relevance))
    if similar:
        named = sorted({b for values in similar.values() for b in values})
        relevance = np.array([[b in similar.get(str(r.get("artist") or ""), []) for r in rows] for b in named],
                             dtype=np.float64)
        keep = relevance.sum(1) > 0
        if keep.any():
            groups.append(QueryGroup("artist", [f"similar to {b}" for b, k in zip(named, keep) if k], relevance[keep],
                                     graded=True))
    return groups


def score_group(group: QueryGroup, scores: np.ndarray) -> dict[str, float]:
    if group.graded:
        return {"nDCG@10": metrics.ndcg_at_k(scores, group.relevance, k=10), "queries": float(len(group.queries))}
    return metrics.evaluate(scores, group.relevance)


def hybrid_scores(dense: np.ndarray, queries: Sequence[str], fts: Callable[[str, int], list[str]],
                  rows: Sequence[Mapping[str, object]], *, candidates: int = 100) -> np.ndarray:
    """The search engine's fused scores (RRF + name bonus) of the candidate ``rows`` for each query.

    ``fts(query, limit)`` returns track ids best first (BM25 full-text search over the whole index, see mirkit.retrieval.snapshot).
    """
    position = {str(row["id"]): i for i, row in enumerate(rows)}
    names = NameIndex(rows)
    fused = np.zeros_like(dense, dtype=np.float64)
    for q, query in enumerate(queries):
        ranks: dict[int, int] = {}
        for item in fts(query, 10 * candidates):
            if item in position and position[item] not in ranks:
                ranks[position[item]] = len(ranks) + 1
        fused[q] = rrf_fuse(dense[q], ranks, candidates=candidates)[0]
        for row, bonus in names.matches(query).items():
            fused[q, row] += bonus
    return fused


def evaluate_systems(groups: Sequence[QueryGroup], systems: Mapping[str, Callable[[list[str]], np.ndarray]]
                     ) -> dict[str, dict[str, dict[str, float]]]:
    """``{group: {system: metrics}}``; each system maps queries to ``(n_queries, n_candidates)`` scores."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for group in groups:
        table[group.name] = {name: score_group(group, scorer(group.queries)) for name, scorer in systems.items()}
    return table


def no_label_text(row: Mapping[str, object]) -> str:
    return track_text({**row, "tags": []})


def format_table(results: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Markdown: one row per (group, system)."""
    lines = ["| queries | system | n | R@1 | R@5 | R@10 | mAP@10 | MRR | median rank | nDCG@10 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for group, systems in results.items():
        for system, m in systems.items():
            cells = [f"{m[key]:.3f}" if key in m else "" for key in ("R@1", "R@5", "R@10", "mAP@10", "MRR")]
            rank = f"{m['median_rank']:g}" if "median_rank" in m else ""
            ndcg = f"{m['nDCG@10']:.3f}" if "nDCG@10" in m else ""
            lines.append(f"| {group} | {system} | {int(m['queries'])} | " + " | ".join(cells) + f" | {rank} | {ndcg} |")
    return "\n".join(lines)
