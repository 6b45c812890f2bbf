"""The query snapshot of an index: what a search needs, in files that open in milliseconds.

``LIB/tracks.lance`` (LanceDB) stays the index: rows are added, replaced and deleted there, and
``mirkit search train`` reads it. Importing ``lancedb`` alone takes 1.5-2 s on a 2-core CPU,
longer than a whole command-line query should, so ``mirkit index`` also writes, after every scan,
a read-only copy of what queries read::

    LIB/query/snapshot.json     format, tracks, text encoder revision (written last: the commit mark)
    LIB/query/rows.json         per track (sorted by id): id, path, title, artist, album, genre, ...
    LIB/query/audio.npy         audio vectors (tracks, dim), float32
    LIB/query/text_vector.npy   MiniLM vectors of each track's text (tracks, 384), float32
    LIB/query/bm25/             the BM25 full-text index of the same text (bm25s, memory-mapped)

A scan deletes ``snapshot.json`` before it touches the table, so a scan that dies half-way leaves
no snapshot and the next search rebuilds it from the table (one slower query, then fast again).
The folder is replaced as a whole (written beside, then renamed), never edited in place.

Full text: the track text (title, artist, album, genre, tags, pseudo-tags, comment) is lower-cased,
accent-folded, split into words (one letter or digit is a word: "Song 7"), English stop words dropped and Snowball-stemmed
(PyStemmer), then ranked by BM25 (Lucene's variant, k1 1.5, b 0.75; the ``bm25s`` package).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirkit.errors import ConfigError
from mirkit.files import atomic_write_json
from mirkit.retrieval.analysis_fields import FIELDS as ANALYSIS_FIELDS
from mirkit.retrieval.analysis_fields import read_analysis

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT = 1
TABLE = "tracks"  # the LanceDB table of an index
FOLDER = "query"
MARK = "snapshot.json"
TOKEN_PATTERN = r"(?u)\b\w+\b"  # every word, one character too ("Song 7", "Op. 9")
META = ("id", "path", "title", "artist", "album", "genre", "duration_s", "tags", "pseudo_tags", "licence")


def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG: "Building index..." on stderr
    return bm25s


def _fold(text: str) -> str:
    """Lower case without accents ("Café" and "cafe" are one word)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class FullText:
    """BM25 over the tracks' text (see the module docstring); rows are 0-based track positions."""

    def __init__(self, retriever, count: int) -> None:
        self.retriever = retriever
        self.count = count

    @staticmethod
    @functools.lru_cache(maxsize=1)
    def _stemmer():
        import Stemmer

        return Stemmer.Stemmer("english")  # built once per process, not per query

    @classmethod
    def tokens(cls, texts: list[str], *, return_ids: bool):
        bm25s = _bm25s()
        return bm25s.tokenize([_fold(t) for t in texts], token_pattern=TOKEN_PATTERN, stopwords="en",
                              stemmer=cls._stemmer(), return_ids=return_ids, show_progress=False)

    @classmethod
    def build(cls, texts: list[str]) -> FullText:
        bm25s = _bm25s()
        retriever = bm25s.BM25()
        retriever.index(cls.tokens(texts, return_ids=True), show_progress=False)
        return cls(retriever, len(texts))

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, count: int) -> FullText:
        bm25s = _bm25s()
        return cls(bm25s.BM25.load(str(folder), mmap=True, show_progress=False), count)

    def ranks(self, query: str, *, limit: int, mask: np.ndarray | None = None) -> dict[int, int]:
        """Row -> 1-based BM25 rank of the rows matching at least one query word (``mask``: allowed rows)."""
        words = self.tokens([query], return_ids=False)
        if not words or not words[0] or self.count == 0:
            return {}
        known = [w for w in words[0] if w in self.retriever.vocab_dict]
        if not known:
            return {}
        scores = self.retriever.get_scores(known)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        matched = np.flatnonzero(scores > 0)  # usually few: sorting them beats a partition of every row
        if len(matched) > limit:
            matched = matched[np.argpartition(-scores[matched], limit - 1)[:limit]]
        found = matched[np.lexsort((matched, -scores[matched]))]  # ties: lower row (track id) first
        return {int(row): rank for rank, row in enumerate(found, start=1)}


@dataclass
class Snapshot:
    rows: list[dict[str, object]]
    audio: np.ndarray
    text_vectors: np.ndarray
    full_text: FullText
    info: dict[str, object]


def invalidate(db: str | Path) -> None:
    """Drop the commit mark before the table changes (a search then rebuilds the snapshot)."""
    (Path(db) / FOLDER / MARK).unlink(missing_ok=True)


def write_snapshot(db: str | Path, *, table=None) -> Snapshot:
    """Read the tracks table once and write ``LIB/query`` (replacing the old one as a whole)."""
    db = Path(db)
    info = read_index_info(db)
    if table is None:
        import lancedb


        connection = lancedb.connect(str(db))
        if TABLE not in connection.table_names():
            raise ConfigError(f"index {db} has no tracks yet. Run `mirkit index MUSIC_DIR --db {db}`.")
        table = connection.open_table(TABLE)
    data = table.to_arrow().select(list(META) + ["text", "audio", "text_vector"])
    order = np.argsort(np.asarray(data.column("id").to_pylist(), dtype=object), kind="stable")
    data = data.take(order)
    meta = data.select(list(META)).to_pylist()
    analysis = read_analysis(db)  # key, tempo, chords, instrument per track (absent: not analysed)
    for row in meta:
        fields = analysis.get(str(row["id"]), {})
        row.update({name: fields.get(name) for name in ANALYSIS_FIELDS})
    audio = _vectors(data.column("audio"))
    text_vectors = _vectors(data.column("text_vector"))
    full_text = FullText.build([str(t or "") for t in data.column("text").to_pylist()])
    mark = {"format": SNAPSHOT_FORMAT, "tracks": len(meta), "text_encoder": info.get("text_encoder"),
            "text_encoder_revision": info.get("text_encoder_revision")}
    final = db / FOLDER
    temp = db / f".{FOLDER}.{os.getpid()}.tmp"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    (temp / "rows.json").write_text(json.dumps(meta))
    np.save(temp / "audio.npy", audio)
    np.save(temp / "text_vector.npy", text_vectors)
    full_text.save(temp / "bm25")
    atomic_write_json(temp / MARK, mark)
    old = db / f".{FOLDER}.{os.getpid()}.old"
    if final.exists():
        final.rename(old)
    temp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return Snapshot(meta, audio, text_vectors, full_text, mark)


def read_snapshot(db: str | Path) -> Snapshot:
    """The index's snapshot; rebuilt from the table when it is missing or from an older scan."""
    db = Path(db)
    folder = db / FOLDER
    info = read_index_info(db)
    try:
        mark = json.loads((folder / MARK).read_text())
    except (OSError, ValueError):
        mark = None
    if mark is None or mark.get("format") != SNAPSHOT_FORMAT or \
            mark.get("text_encoder_revision") != info.get("text_encoder_revision"):
        log.info("rebuilding the query snapshot of %s from its table", db)
        return write_snapshot(db)
    meta = json.loads((folder / "rows.json").read_text())
    audio = np.load(folder / "audio.npy", mmap_mode="r")
    text_vectors = np.load(folder / "text_vector.npy", mmap_mode="r")
    return Snapshot(meta, audio, text_vectors,
                    FullText.load(folder / "bm25", len(meta)), mark)


def read_index_info(db: str | Path) -> dict[str, object]:
    """``LIB/index.json``: how the index was built (encoder, layer, text encoder, ...)."""
    path = Path(db) / "index.json"
    if not path.is_file():
        raise ConfigError(f"{db} is not a mirkit index (no index.json). Build one with `mirkit index MUSIC_DIR --db {db}`.")
    return json.loads(path.read_text())


def _vectors(column) -> np.ndarray:
    rows = column.to_pylist()
    if not rows:
        return np.zeros((0, 0), np.float32)
    return np.asarray(rows, dtype=np.float32)
