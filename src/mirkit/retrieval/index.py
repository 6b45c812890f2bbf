"""``index_library``: a music folder -> a LanceDB table of tracks (metadata, audio vectors, full-text index).

Layout of an index folder ``LIB``::

    LIB/index.json        encoder, layer, feature recipe, text encoder, format version
    LIB/tracks.lance      one row per track (content-hash id), see :data:`COLUMNS`
    LIB/features/         the feature store the audio vectors come from (reused on rescans)
    LIB/hashes.json       content hashes by (path, size, mtime)

Rescans are incremental: files whose path, size and modification time are unchanged are kept;
changed files are re-extracted; rows of removed files are deleted. Several folders can go into one
index (one ``mirkit index`` call each); a rescan of one folder only touches rows under it. New rows are committed in
chunks (each LanceDB ``add`` is one atomic commit), so a crash leaves an index that holds every
chunk finished before it, and a rerun picks up the rest (features already extracted are reused).
Each scan ends by writing the query snapshot (``LIB/query``, see :mod:`mirkit.retrieval.snapshot`):
the rows, vectors and BM25 full-text index that searches read without importing LanceDB.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import expit

from mirkit.errors import ConfigError
from mirkit.features.store import HashCache
from mirkit.files import atomic_write_json
from mirkit.retrieval.library import LibraryFile, scan_library
from mirkit.retrieval.snapshot import TABLE, invalidate, write_snapshot

log = logging.getLogger(__name__)

INDEX_FORMAT = 1
CHUNK_FILES = 64
#: Default layer whose clip-mean is the track's audio vector (others: the middle layer).
SEARCH_LAYERS = {"musicnn-mtt": 6, "musicnn-msd": 6}
TAGGER = "musicnn-mtt"  # pseudo-tags from its 50 MagnaTagATune tag logits (layer 7)
PSEUDO_TAGS_TOP = 5
PSEUDO_TAGS_MIN_P = 0.1
#: seconds quieter than this (RMS, dBFS) are silence: their tagger frames give no pseudo-tags, and a
#: track with no louder second gets none (a quiet piano passage is about -40 dBFS; digital silence -120)
SILENCE_DBFS = -60.0
COLUMNS = ("id", "path", "size", "mtime_ns", "title", "artist", "album", "genre", "date", "comment", "licence",
           "split", "duration_s", "tags", "pseudo_tags", "text", "audio", "text_vector")


@dataclass
class IndexConfig:
    """How tracks are turned into vectors; stored in ``index.json`` and checked on every rescan."""

    encoder: str = "musicnn-mtt"
    layer: int | None = None  # None: SEARCH_LAYERS or the middle layer
    weights_dir: str | None = None
    device: str = "cpu"
    batch_size: int = 8
    pseudo_tags: bool = True  # musicnn-mtt tag predictions as words for search and captions
    store: str | None = None  # feature store folder (default LIB/features)
    analysis: bool = True  # key, tempo, chords and instrument of every track (mirkit.retrieval.analysis_fields)
    analysis_heads: str | None = None  # an analysis bundle (default: the heads shipped with mirkit)


@dataclass
class IndexReport:
    db: str
    tracks: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: Counter = field(default_factory=Counter)
    errors_path: str = ""
    wall_s: float = 0.0
    analysis: dict[str, int] | None = None

    def summary(self) -> str:
        line = (f"Index {self.db}: {self.tracks:,} tracks (added {self.added:,}, updated {self.updated:,}, "
                f"removed {self.removed:,}, unchanged {self.unchanged:,}) in {self.wall_s:.1f} s.")
        if self.analysis is not None:
            line += (f" Analysis (key, tempo, chords, instrument): {self.analysis['analysed']:,} analysed, "
                     f"{self.analysis['kept']:,} kept, {self.analysis['skipped']:,} skipped.")
        if self.skipped:
            reasons = ", ".join(f"{reason} {count}" for reason, count in self.skipped.most_common())
            line += f" Skipped {sum(self.skipped.values()):,}: {reasons}."
            if self.errors_path:
                line += f" Details: {self.errors_path}"
        return line


def track_text(row: dict[str, object]) -> str:
    """The words a track is described by: metadata, labels and pseudo-tags (full-text index, baseline)."""
    parts = []
    title, artist, album = (str(row.get(k) or "") for k in ("title", "artist", "album"))
    head = title + (f" by {artist}" if artist else "") + (f" from {album}" if album else "")
    if head:
        parts.append(head)
    words = [str(row.get("genre") or "")] + list(row.get("tags") or []) + list(row.get("pseudo_tags") or [])
    seen: list[str] = []
    for word in words:
        if word and word.lower() not in seen:
            seen.append(word.lower())
    if seen:
        parts.append(", ".join(seen))
    if row.get("comment"):
        parts.append(str(row["comment"]))
    return ". ".join(parts)


def default_layer(encoder: str) -> int:
    from mirkit.encoders.zoo import get_spec

    spec = get_spec(encoder)
    return SEARCH_LAYERS.get(spec.name.removeprefix("random:"), spec.num_layers // 2)


def open_table(db: str | Path):
    """The LanceDB tracks table of an index folder, or ``None`` when it has none yet."""
    import lancedb

    connection = lancedb.connect(str(db))
    return connection.open_table(TABLE) if TABLE in connection.table_names() else None


def index_library(root: str | Path, *, db: str | Path, config: IndexConfig | None = None, progress: bool = True,
                  text_encoder=None, encoder=None, chunk_files: int = CHUNK_FILES) -> IndexReport:
    """Index (or rescan) the audio under ``root`` into the index folder ``db``.

    Args:
        root: the music folder (scanned recursively).
        db: index folder; created when missing.
        config: encoder, layer and extraction options; a rescan must use the index's own settings.
        progress: progress bars on a terminal.
        text_encoder: a loaded :class:`~mirkit.encoders.text.TextEncoder` (default: MiniLM from its wheel).
        encoder: an already built audio encoder (tests).
        chunk_files: files extracted and committed per chunk.
    """
    import lancedb

    started = time.perf_counter()
    config = config or IndexConfig()
    db = Path(db)
    db.mkdir(parents=True, exist_ok=True)
    layer = config.layer if config.layer is not None else default_layer(config.encoder)
    pseudo_tags = bool(config.pseudo_tags) and _tagger_available()
    if text_encoder is None:
        from mirkit.encoders.text import load_text_encoder

        text_encoder = load_text_encoder()
    if getattr(text_encoder, "runtime", "torch") == "torch":
        from mirkit.encoders.onnx_runtime import select_runtime

        # faster text vectors here, and the ONNX card that lets `mirkit search` skip torch and transformers
        select_runtime(text_encoder, "auto", what="encode track texts")
    info = {"format": INDEX_FORMAT, "encoder": config.encoder, "layer": layer, "weights_dir": config.weights_dir,
            "pseudo_tags": pseudo_tags, "store": str(Path(config.store).resolve()) if config.store else None,
            "text_encoder": text_encoder.name,
            "text_encoder_revision": text_encoder.revision}
    _check_settings(db, info)
    files, not_audio = scan_library(root)
    report = IndexReport(db=str(db))
    for _path, reason, _message in not_audio:
        report.skipped[reason] += 1
    connection = lancedb.connect(str(db))
    table = connection.open_table(TABLE) if TABLE in connection.table_names() else None
    existing = _existing_rows(table)
    invalidate(db)  # before the table changes: a scan that dies leaves no stale snapshot behind
    todo, kept_ids = _rescan_plan(root, files, existing, table, report)
    atomic_write_json(db / "index.json", info)
    if todo:
        extractor = _Extractor(db=db, config=config, layer=layer, pseudo_tags=pseudo_tags, encoder=encoder,
                               progress=progress)
        hashes = HashCache(db / "hashes.json")
        for start in range(0, len(todo), chunk_files):
            rows = extractor.rows(todo[start:start + chunk_files], report=report, kept_ids=kept_ids)
            for row in rows:
                hashes.get(str(row["path"]))
                if row["path"] in existing:
                    report.updated += 1
                else:
                    report.added += 1
            if rows:
                table = _commit_rows(connection, table, rows, text_encoder)
            hashes.save()
            log.info("indexed %d/%d new or changed files", min(start + chunk_files, len(todo)), len(todo))
    if table is not None and config.analysis:
        from mirkit.retrieval.analysis_fields import analyze_index

        tracks = table.search().select(["id", "path", "mtime_ns"]).limit(None).to_list()
        report.analysis = analyze_index(db, [(t["id"], t["path"], int(t["mtime_ns"])) for t in tracks],
                                        store=config.store or db / "features", heads=config.analysis_heads,
                                        progress=progress)
    if table is not None:
        report.tracks = len(write_snapshot(db, table=table).rows)
    report.wall_s = time.perf_counter() - started
    return report


def _existing_rows(table) -> dict[str, tuple[str, int, int]]:
    """path -> (id, size, mtime_ns) of every indexed track."""
    existing: dict[str, tuple[str, int, int]] = {}
    if table is not None:
        for row in table.search().select(["id", "path", "size", "mtime_ns"]).limit(None).to_list():
            existing[row["path"]] = (row["id"], int(row["size"]), int(row["mtime_ns"]))
    return existing


def _rescan_plan(root: str | Path, files: list[LibraryFile], existing: dict[str, tuple[str, int, int]], table,
                 report: IndexReport) -> tuple[list[LibraryFile], set[str]]:
    """Files to (re)index, and the ids that stay; deletes the rows of removed and changed files under ``root``."""
    on_disk = {f.path for f in files}
    # one index may hold several folders: only rows under this root can have been removed
    under_root = str(Path(root).resolve()).rstrip(os.sep) + os.sep
    stale = [item for path, item in existing.items() if path.startswith(under_root) and path not in on_disk]
    report.removed = len(stale)
    todo: list[LibraryFile] = []
    kept_ids: set[str] = set()
    for f in files:
        known = existing.get(f.path)
        if known is not None and known[1:] == (f.size, f.mtime_ns):
            report.unchanged += 1
            kept_ids.add(known[0])
            continue
        if known is not None:
            stale.append(known)
        todo.append(f)
    stale_ids = {item[0] for item in stale}
    kept_ids |= {item[0] for item in existing.values() if item[0] not in stale_ids}  # other folders' tracks too
    if table is not None and stale:
        _delete_ids(table, sorted(stale_ids))
    return todo, kept_ids


def _commit_rows(connection, table, rows: list[dict[str, object]], text_encoder):
    """Embed the rows' text and append them (creating the table on the first chunk); returns the table."""
    vectors = text_encoder.encode([str(row["text"]) for row in rows])
    for row, vector in zip(rows, vectors):
        row["text_vector"] = vector
    data = rows_to_arrow(rows)
    if table is None:
        return connection.create_table(TABLE, data)
    table.add(data)
    return table


def _tagger_available() -> bool:
    from mirkit.encoders.zoo import get_spec

    if get_spec(TAGGER).weights_available():
        return True
    log.warning("pseudo-tags are off: %s weights are not installed (pip install --no-deps musicnn)", TAGGER)
    return False


def _check_settings(db: Path, info: dict[str, object]) -> None:
    path = db / "index.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    for key in ("encoder", "layer", "weights_dir", "pseudo_tags", "text_encoder_revision"):
        if old.get(key) != info.get(key):
            raise ConfigError(f"index {db} was built with {key}={old.get(key)!r}, not {info.get(key)!r}. Rescan with the "
                              f"same settings, or build a new index with another --db.")


def _delete_ids(table, ids: list[str]) -> None:
    for start in range(0, len(ids), 500):
        quoted = ", ".join(f"'{item}'" for item in ids[start:start + 500])  # ids are hex digests
        table.delete(f"id IN ({quoted})")


class _Extractor:
    """Extracts the audio vector (and musicnn tag logits for pseudo-tags) of files through the feature store."""

    def __init__(self, *, db: Path, config: IndexConfig, layer: int, pseudo_tags: bool, encoder, progress: bool) -> None:
        from mirkit.encoders.zoo import load_encoder
        from mirkit.features.store import FeatureStore

        self.store = FeatureStore(config.store or db / "features")
        self.config, self.layer, self.progress = config, layer, progress
        self.encoder = encoder or load_encoder(config.encoder, weights_dir=config.weights_dir, device=config.device)
        self.same = pseudo_tags and config.encoder == TAGGER and config.weights_dir is None
        self.layers = sorted({layer, 7}) if self.same else [layer]
        # pseudo-tags are read from the tagger's frames, so that silent seconds can be left out
        self.pooling = "none" if self.same else "mean"
        self.tagger = load_encoder(TAGGER, device=config.device) if pseudo_tags and not self.same else None
        self.tag_names = _mtt_tag_names() if pseudo_tags else []

    def _extract(self, paths: list[str], encoder, layers: list[int], report: IndexReport, *, pooling: str):
        from mirkit.features.extract import ExtractConfig, extract

        config = ExtractConfig(encoder=encoder.spec.name, layers=layers, pooling=pooling,
                               weights_dir=self.config.weights_dir if encoder is self.encoder else None,
                               device=self.config.device, batch_size=self.config.batch_size, num_workers=0)
        # num_workers=0: LanceDB's runtime is not fork-safe, and decoding is cheap next to the encoder
        result = extract(paths, store=self.store, config=config, encoder=encoder, progress=self.progress)
        report.skipped.update(result.skipped)
        report.errors_path = result.errors_path
        return result, self.store.recipe(result.recipe)

    def rows(self, chunk: list[LibraryFile], *, report: IndexReport, kept_ids: set[str]) -> list[dict[str, object]]:
        paths = [f.path for f in chunk]
        result, items = self._extract(paths, self.encoder, self.layers, report, pooling=self.pooling)
        tag_items = items if self.same else None
        if self.tagger is not None:
            ok = [p for p in paths if p in result.item_ids]
            tag_items = self._extract(ok, self.tagger, [7], report, pooling="none")[1] if ok else None
        rows = []
        for f in chunk:
            item_id = result.item_ids.get(f.path)
            if item_id is None:
                continue  # skipped; the reason is in the feature store's errors file
            if item_id in kept_ids:
                report.skipped["duplicate_content"] += 1
                log.info("skipped %s: same audio content as a track already indexed (id %s)", f.path, item_id)
                continue
            arrays, meta = items.read(item_id)
            row: dict[str, object] = dict(asdict(f))
            row["id"] = item_id
            row["duration_s"] = float(meta.get("duration_s", 0.0))
            row["audio"] = arrays[f"pooled_{self.layer}"].astype(np.float32)
            row["pseudo_tags"] = _pseudo_tags(tag_items, item_id, self.tag_names) if tag_items is not None else []
            row["text"] = track_text(row)
            rows.append(row)
            kept_ids.add(item_id)
        return rows


def _mtt_tag_names() -> list[str]:
    from mirkit.encoders.musicnn import tag_names

    return tag_names("mtt")


def _pseudo_tags(items, item_id: str, names: list[str]) -> list[str]:
    """The tagger's top tags over the track's audible frames; none for a silent or near-silent track."""
    if not items.has(item_id):
        return []
    arrays, meta = items.read(item_id)
    logits = audible_mean(arrays, meta, layer=7)
    if logits is None:
        return []
    probabilities = expit(logits)
    order = np.argsort(-probabilities, kind="stable")[:PSEUDO_TAGS_TOP]
    return [names[i] for i in order if probabilities[i] >= PSEUDO_TAGS_MIN_P]


def audible_mean(arrays: dict[str, np.ndarray], meta: dict[str, object], *, layer: int) -> np.ndarray | None:
    """Mean of the layer's frames that overlap a second louder than :data:`SILENCE_DBFS`; None if none do.

    Items without frames or without a level record (older stores) fall back to the clip mean.
    """
    level = meta.get("level_dbfs")
    frames, times = arrays.get(f"frames_{layer}"), arrays.get(f"times_{layer}")
    if level is None or frames is None or times is None:
        return arrays[f"pooled_{layer}"].astype(np.float64)
    loud = np.asarray(level, dtype=np.float64) > SILENCE_DBFS
    if not loud.any() or len(frames) == 0:
        return None
    span_s = float(np.median(np.diff(times))) if len(times) > 1 else float(meta.get("duration_s", 1.0))
    first = np.clip(np.floor(times).astype(int), 0, len(loud) - 1)
    last = np.clip(np.ceil(times + span_s).astype(int), first + 1, len(loud))
    audible = np.array([loud[a:b].any() for a, b in zip(first, last)])
    if not audible.any():
        return None
    return frames[audible].astype(np.float64).mean(axis=0)


def rows_to_arrow(rows: list[dict[str, object]]):
    import pyarrow as pa

    audio = np.stack([row["audio"] for row in rows]).astype(np.float32)
    text = np.stack([row["text_vector"] for row in rows]).astype(np.float32)
    columns = {key: [row[key] for row in rows] for key in COLUMNS if key not in ("audio", "text_vector")}
    schema = [pa.field(key, pa.list_(pa.string()) if key in ("tags", "pseudo_tags") else
                       pa.int64() if key in ("size", "mtime_ns") else pa.float32() if key == "duration_s" else pa.string())
              for key in columns]
    arrays = [pa.array(columns[f.name], type=f.type) for f in schema]
    arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(audio.ravel()), audio.shape[1]))
    arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(text.ravel()), text.shape[1]))
    names = [f.name for f in schema] + ["audio", "text_vector"]
    return pa.Table.from_arrays(arrays, names=names)


def load_tracks(db: str | Path, *, columns: tuple[str, ...] | None = None) -> list[dict[str, object]]:
    """All rows of an index (sorted by id), optionally only some columns."""
    table = open_table(db)
    if table is None:
        raise ConfigError(f"index {db} has no tracks yet. Run `mirkit index MUSIC_DIR --db {db}`.")
    query = table.search().limit(None)
    if columns:
        query = query.select(list(columns))
    rows = query.to_list()
    return sorted(rows, key=lambda row: row["id"])
