"""Search an index: text queries (hybrid), query by example, "more like this artist".

Hybrid ranking (documented fusion): two ranked lists are fused by reciprocal rank fusion,

    score(track) = w_dense / (K + rank_dense) + w_text / (K + rank_text),   K = 60,

where ``rank_dense`` is the track's rank by cosine similarity in the dense space (1 = best) and
``rank_text`` its rank in a BM25 full-text search over the metadata (:mod:`mirkit.retrieval.snapshot`) (title, artist, album,
genre, tags, pseudo-tags, comment). A track absent from one list gets no term from it. Only the top
``candidates`` of each list take part (default 100, at least 10 x k). RRF needs no score
calibration between cosine and BM25; content queries ("calm solo piano") are carried by the dense
list. Because RRF alone can rank a track that is second in both lists above the exact title match
that is first in only one, names get an explicit bonus: +1 when the query contains a track's whole
title (word-aligned, case-insensitive, titles of 3+ characters), +0.5 when it contains its artist.
So "the track Battle Epic" puts Battle Epic first and "music by Maxstack" puts Maxstack's tracks
first, each group ordered by RRF. Ties are broken by higher dense similarity, then by track id, so
results are deterministic.

The dense space is the joint text-audio space of a trained model (``--model``); without one,
queries are matched against MiniLM embeddings of each track's text (metadata, tags, pseudo-tags).
Query by example and artist similarity compare audio vectors (joint-space audio embeddings with a
model; standardised encoder features otherwise).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mirkit.errors import ConfigError, UnknownNameError
from mirkit.retrieval.analysis_fields import TrackFilter
from mirkit.retrieval.fusion import NameIndex, rrf_fuse
from mirkit.retrieval.joint_space import adapts_text_tower

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 500
MAX_K = 100
SORTS = ("title", "tempo", "key", "duration")


def _key_order(key: object) -> tuple[int, int]:
    """Keys in circle-of-fifths order, majors before minors; tracks without a key last."""
    from mirkit.kinds.labels import PITCH_NAMES

    if not key:
        return (99, 99)
    tonic, mode = str(key).split()
    return (0 if mode == "major" else 1, (PITCH_NAMES.index(tonic) * 7) % 12)


@dataclass
class Hit:
    id: str
    title: str
    artist: str
    album: str
    genre: str
    duration_s: float
    score: float
    dense_score: float | None = None
    dense_rank: int | None = None
    text_rank: int | None = None
    tags: list[str] | None = None
    key: str | None = None
    tempo_bpm: float | None = None
    instrument: str | None = None
    chords: list[str] | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _joint_audio(folder: Path, audio: np.ndarray) -> np.ndarray:
    """The audio tower of the joint model in ``folder`` over ``audio`` (PyTorch)."""
    import torch

    from mirkit.retrieval.model import load_model

    model = load_model(folder)[0]
    with torch.no_grad():
        return model.embed_audio(torch.from_numpy(np.array(audio, dtype=np.float32))).numpy()


class SearchEngine:
    """An open index (and optionally a trained joint model), ready for queries.

    Vectors are held in memory (exact search: deterministic and a few ms at 100k tracks on 2 cores);
    they, the rows and the BM25 index come from the index's query snapshot, so opening an engine
    imports neither LanceDB nor (without a joint model) torch and transformers: the text encoder
    is the ONNX graph and tokenizer recorded by an earlier run (:mod:`mirkit.encoders.text_onnx`). ``text_runtime`` picks how queries are encoded:
    ``"auto"`` (ONNX Runtime when it is installed and its embeddings match PyTorch's, else PyTorch),
    ``"onnxruntime"`` (required: an error if it cannot be used) or ``"torch"``.
    """

    def __init__(self, db: str | Path, *, model: str | Path | None = None, text_encoder=None,
                 text_runtime: str = "auto") -> None:
        from mirkit.encoders.spec import RUNTIMES
        from mirkit.retrieval.snapshot import read_index_info, read_snapshot

        if text_runtime not in RUNTIMES:
            raise ConfigError(f"text_runtime={text_runtime!r} is not one of {RUNTIMES}.")
        self.db = Path(db)
        self.info = read_index_info(db)
        snapshot = read_snapshot(db)  # rows, vectors and the full-text index, without LanceDB
        self.rows = snapshot.rows
        self.full_text = snapshot.full_text
        self.row_of = {row["id"]: i for i, row in enumerate(self.rows)}
        audio, text_vectors = snapshot.audio, snapshot.text_vectors
        self._text_runtime = text_runtime
        self._text_lock = threading.Lock()
        self._text_encoder = None  # without LoRA on the text tower, loaded by the first text query (--like needs none)
        adapted = model is not None and adapts_text_tower(model)
        if text_encoder is not None or adapted:
            self._text_encoder = self._checked(text_encoder or self._load_text_encoder(text_runtime, adapted=adapted))
        self.model = None  # a torch JointModel: models with LoRA on the text encoder, or a query by a new file
        self.joint = None  # the query side of a model without text LoRA, in numpy (mirkit.retrieval.joint_space)
        self.model_path = str(model) if model else None
        if model is not None and not adapted:
            from mirkit.retrieval.joint_space import JointSpace
            from mirkit.retrieval.snapshot import FOLDER

            self.joint = JointSpace.load(model, snapshot_dir=self.db / FOLDER, audio=audio, index_info=self.info,
                                         text_revision=str(self.info.get("text_encoder_revision")),
                                         embed_audio=_joint_audio)
            self.audio_space = self.dense_space = self.joint.audio_space
        elif model is not None:
            import torch

            from mirkit.retrieval.model import load_search_model

            self.model, self._text_encoder = load_search_model(model, index_info=self.info, text_encoder=self._text_encoder)
            with torch.no_grad():
                self.audio_space = self.model.embed_audio(torch.from_numpy(np.array(audio))).numpy()  # a writable copy of the mapped file
            self.dense_space = self.audio_space
        else:
            mean, std = audio.mean(0), audio.std(0)
            std[std < 1e-8] = 1.0
            self.audio_mean, self.audio_std = mean, std
            standard = (audio - mean) / std
            self.audio_space = standard / np.maximum(np.linalg.norm(standard, axis=1, keepdims=True), 1e-8)
            self.dense_space = text_vectors
        if self._text_encoder is not None:
            self._use_runtime(self._text_encoder)
        self._threadpools = None
        self._audio_encoder = None  # loaded on the first query by an audio file, then kept
        self._audio_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mirkit-fts")
        self.ids = np.array([r["id"] for r in self.rows])
        self._names = NameIndex(self.rows)
        self.artists = np.array([str(r["artist"] or "").lower() for r in self.rows])
        self.genres = np.array([str(r["genre"] or "").lower() for r in self.rows])

    @property
    def text_encoder(self):
        """The query encoder (loaded on first use when no joint model is given)."""
        if self._text_encoder is None:
            with self._text_lock:
                if self._text_encoder is None:
                    encoder = self._checked(self._load_text_encoder(self._text_runtime, adapted=False))
                    self._use_runtime(encoder)
                    self._text_encoder = encoder
        return self._text_encoder

    def _checked(self, encoder):
        if encoder.revision != self.info.get("text_encoder_revision"):
            raise ConfigError(f"index {self.db} was built with text encoder {self.info.get('text_encoder_revision')}, "
                              f"not {encoder.revision}; rebuild the index with this one.")
        return encoder

    def _use_runtime(self, encoder) -> None:
        if encoder.runtime != "onnxruntime" and self._text_runtime != "torch":
            from mirkit.encoders.onnx_runtime import select_runtime

            select_runtime(encoder, self._text_runtime, what="encode queries here")

    def _load_text_encoder(self, text_runtime: str, *, adapted: bool):
        """The index's text encoder: from its ONNX card (no torch, no transformers) when it can, else PyTorch."""
        if text_runtime != "torch" and not adapted:  # a joint model with text LoRA changes the tower: PyTorch
            from mirkit.encoders.text_onnx import load_onnx_text_encoder

            encoder, reason = load_onnx_text_encoder(name=str(self.info.get("text_encoder")),
                                                     revision=str(self.info.get("text_encoder_revision")))
            if encoder is not None:
                return encoder
            log.info("queries are encoded with PyTorch this time: %s", reason)
        from mirkit.encoders.text import load_text_encoder

        return load_text_encoder()

    # --- queries -------------------------------------------------------------------------
    def embed_query(self, query: str) -> np.ndarray:
        vector = self.text_encoder.encode([query])
        if self.joint is not None:
            return self.joint.embed_text(vector)[0]
        if self.model is None:
            return vector[0]
        import torch

        with torch.no_grad():
            return self.model.embed_text(torch.from_numpy(vector)).numpy()[0]

    def search(self, query: str, *, k: int = 10, artist: str | None = None, genre: str | None = None,
               candidates: int = 100, weights: tuple[float, float] = (1.0, 1.0),
               where: TrackFilter | None = None) -> list[Hit]:
        """Hybrid text search (see the module docstring for the fusion); ``where`` filters by the tracks' analysis."""
        query = self._check_query(query, k)
        n = max(candidates, 10 * k)
        # the full-text search needs no embedding: run it while the query is encoded
        text = (self._pool.submit(self.text_ranks, query, limit=n, artist=artist, genre=genre, where=where)
                if weights[1] > 0 else None)
        vector = self.embed_query(query)
        return self.search_embedded(query, vector, k=k, artist=artist, genre=genre, candidates=candidates,
                                    weights=weights, text_ranks=text if text is not None else {}, where=where)

    def search_embedded(self, query: str, vector: np.ndarray, *, k: int = 10, artist: str | None = None,
                        genre: str | None = None, candidates: int = 100,
                        weights: tuple[float, float] = (1.0, 1.0),
                        text_ranks: dict[int, int] | Future | None = None,
                        where: TrackFilter | None = None) -> list[Hit]:
        """:meth:`search` with the query already embedded (``vector`` in the dense space).

        ``text_ranks`` may be a future of :meth:`text_ranks` still running: it is awaited only after
        the dense product, so the two overlap.
        """
        mask = self._filter(artist, genre, where) if artist or genre or where else None  # None: every track
        with self._blas_one_thread():  # spinning BLAS threads would starve torch's query encoder on few cores
            dense = self.dense_space @ vector
        if mask is not None:
            dense = np.where(mask, dense, -np.inf)
        n = max(candidates, 10 * k)
        if text_ranks is None:
            text_ranks = (self.text_ranks(query, limit=n, artist=artist, genre=genre, where=where)
                          if weights[1] > 0 else {})
        elif isinstance(text_ranks, Future):
            text_ranks = text_ranks.result()
        fused, dense_rank = rrf_fuse(dense if mask is None else np.where(mask, dense, -1e9), text_ranks, candidates=n,
                                     weights=weights)
        named = self.name_matches(query) if weights[1] > 0 else {}
        for row, bonus in named.items():
            fused[row] += bonus
        if mask is not None:
            fused[~mask] = -np.inf
        pool = np.union1d(np.flatnonzero(dense_rank),
                          np.fromiter([*text_ranks, *named], dtype=np.int64, count=len(text_ranks) + len(named)))
        return self._hits(fused, dense, dense_rank, text_ranks, k, pool=pool if len(pool) >= k else None)

    def text_ranks(self, query: str, *, limit: int, artist: str | None = None, genre: str | None = None,
                   where: TrackFilter | None = None) -> dict[int, int]:
        """Row index -> 1-based BM25 rank (full-text search over the metadata, see mirkit.retrieval.snapshot)."""
        mask = self._filter(artist, genre, where) if artist or genre or where else None
        return self.full_text.ranks(query, limit=limit, mask=mask)

    def like(self, *, track_id: str | None = None, path: str | Path | None = None, k: int = 10,
             artist: str | None = None, genre: str | None = None, where: TrackFilter | None = None) -> list[Hit]:
        """Query by example: tracks whose audio is closest to an indexed track or to an audio file."""
        self._check_k(k)
        if (track_id is None) == (path is None):
            raise ConfigError("give exactly one of track_id (an indexed track) or path (an audio file).")
        if track_id is not None:
            if track_id not in self.row_of:
                raise UnknownNameError(f"track id {track_id!r} is not in index {self.db}.")
            vector, exclude = self.audio_space[self.row_of[track_id]], {self.row_of[track_id]}
        else:
            vector, exclude = self._file_vector(Path(path)), set()
        scores = self.audio_space @ vector
        mask = self._filter(artist, genre, where)
        for row in exclude:
            mask[row] = False
        scores = np.where(mask, scores, -np.inf)
        return self._hits(scores, scores, None, {}, k)

    def like_artist(self, name: str, *, k: int = 10, include_same: bool = False) -> list[Hit]:
        """"More like this artist": tracks closest to the mean audio vector of the artist's tracks."""
        self._check_k(k)
        own = self.artists == name.strip().lower()
        if not own.any():
            known = sorted({str(r["artist"]) for r in self.rows if r["artist"]})
            raise UnknownNameError(f"artist {name!r} has no track in index {self.db}; known artists include "
                                   f"{known[:8]}.")
        centroid = self.audio_space[own].mean(0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-8)
        scores = self.audio_space @ centroid
        if not include_same:
            scores = np.where(own, -np.inf, scores)
        return self._hits(scores, scores, None, {}, k)

    def name_matches(self, query: str) -> dict[int, float]:
        """Rows whose whole title (+1) or artist (+0.5) occurs in the query (see the module docstring)."""
        return self._names.matches(query)

    # --- helpers -------------------------------------------------------------------------
    def _blas_one_thread(self):
        if self._threadpools is None:
            from threadpoolctl import ThreadpoolController

            self._threadpools = ThreadpoolController()  # inspects the loaded libraries once
        return self._threadpools.limit(limits=1, user_api="blas")

    def _check_k(self, k: int) -> None:
        if not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise ConfigError(f"k={k!r} must be an integer from 1 to {MAX_K}.")

    def _check_query(self, query: str, k: int) -> str:
        self._check_k(k)
        query = " ".join(str(query).split())
        if not query:
            raise ConfigError("the query is empty; type what you are looking for, e.g. \"calm solo piano\".")
        if len(query) > MAX_QUERY_CHARS:
            raise ConfigError(f"the query has {len(query)} characters; at most {MAX_QUERY_CHARS} are allowed.")
        return query

    def browse(self, *, where: TrackFilter | None = None, sort: str = "title", k: int = 10, artist: str | None = None,
               genre: str | None = None) -> list[Hit]:
        """Tracks matching the filters without a query, sorted by ``sort`` (title, tempo, key or duration)."""
        self._check_k(k)
        if sort not in SORTS:
            raise ConfigError(f"sort={sort!r} must be one of {', '.join(SORTS)}.")
        rows = np.flatnonzero(self._filter(artist, genre, where))

        def order(row: int):
            meta = self.rows[row]
            value = {"title": str(meta["title"] or "").lower(), "tempo": meta.get("tempo_bpm") or 1e9,
                     "key": _key_order(meta.get("key")), "duration": float(meta["duration_s"])}[sort]
            return value, str(meta["id"])

        chosen = sorted(rows.tolist(), key=order)[:k]
        scores = np.full(len(self.rows), -np.inf)
        scores[chosen] = -np.arange(len(chosen), dtype=float)
        return self._hits(scores, np.full(len(self.rows), np.nan), None, {}, k, pool=np.array(chosen, dtype=np.int64))

    def _filter(self, artist: str | None, genre: str | None, where: TrackFilter | None = None) -> np.ndarray:
        mask = where.mask(self.rows) if where else np.ones(len(self.rows), dtype=bool)
        if artist:
            mask &= self.artists == artist.strip().lower()
        if genre:
            mask &= self.genres == genre.strip().lower()
        return mask

    def _file_vector(self, path: Path) -> np.ndarray:
        from mirkit.features.extract import ExtractConfig, extract
        from mirkit.features.store import FeatureStore

        layer = int(self.info["layer"])
        config = ExtractConfig(encoder=str(self.info["encoder"]), layers=[layer], weights_dir=self.info.get("weights_dir"),
                               num_workers=0, on_error="raise")
        store = FeatureStore(self.info.get("store") or self.db / "features")
        with self._audio_lock:  # one file at a time; the encoder (and its ONNX session) is built once
            if self._audio_encoder is None:
                from mirkit.encoders.zoo import load_encoder

                self._audio_encoder = load_encoder(config.encoder, weights_dir=config.weights_dir)
            report = extract([path], store=store, config=config, encoder=self._audio_encoder, progress=False)
        item = report.item_ids[str(path)]
        features = store.recipe(report.recipe).read(item)[0][f"pooled_{layer}"]
        features = features.astype(np.float32)
        if self.model_path is not None:
            import torch

            if self.model is None:  # a model without text LoRA: its audio tower is loaded for the first new file
                from mirkit.retrieval.model import load_model

                self.model = load_model(self.model_path)[0]
            with torch.no_grad():
                return self.model.embed_audio(torch.from_numpy(features[None]))[0].numpy()
        standard = (features - self.audio_mean) / self.audio_std
        return standard / max(float(np.linalg.norm(standard)), 1e-8)

    def _hits(self, scores: np.ndarray, dense: np.ndarray, dense_rank: np.ndarray | None,
              text_ranks: dict[int, int], k: int, pool: np.ndarray | None = None) -> list[Hit]:
        """The top ``k`` rows by score (ties: higher dense score, then id); ``pool`` limits the rows looked at."""
        if pool is not None:  # the fused candidates: every other track scores 0
            scores, dense = scores[pool], dense[pool]
            dense_rank = dense_rank[pool] if dense_rank is not None else None
        dense_key = np.where(np.isfinite(dense), dense, -1e9)
        finite = np.flatnonzero(np.isfinite(scores))
        if len(finite) > k:  # keep every track tied with the k-th best, then sort only those
            kth = np.partition(scores[finite], len(finite) - k)[len(finite) - k]
            finite = finite[scores[finite] >= kth]
        rows = pool if pool is not None else np.arange(len(scores))
        order = finite[np.lexsort((self.ids[rows[finite]], -dense_key[finite], -scores[finite]))]
        hits = []
        for position in order[:k]:
            row = int(rows[position])
            meta = self.rows[row]
            hits.append(Hit(id=meta["id"], title=meta["title"], artist=meta["artist"], album=meta["album"],
                            genre=meta["genre"], duration_s=round(float(meta["duration_s"]), 2),
                            score=round(float(scores[position]), 6),
                            dense_score=round(float(dense[position]), 6) if np.isfinite(dense[position]) else None,
                            dense_rank=int(dense_rank[position]) or None if dense_rank is not None else None,
                            text_rank=text_ranks.get(row),
                            tags=list(meta["tags"] or []) or list(meta["pseudo_tags"] or []),
                            key=meta.get("key"), tempo_bpm=meta.get("tempo_bpm"), instrument=meta.get("instrument"),
                            chords=meta.get("chords")))
        return hits

    def audio_path(self, track_id: str) -> Path:
        """The file of an indexed track (the only way the web page reaches audio)."""
        if track_id not in self.row_of:
            raise UnknownNameError(f"track id {track_id!r} is not in index {self.db}.")
        return Path(self.rows[self.row_of[track_id]]["path"])
