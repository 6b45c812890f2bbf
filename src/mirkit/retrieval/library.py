"""Scan a music folder: audio files, their tags and any labels mirkit knows about them.

Metadata comes from, in order: ``library.jsonl`` written by ``mirkit data music`` (tags and
licence per track), the ``manifest.jsonl`` files of a built suite (labels such as style,
instrument families, mode, tempo class; the suite's split), and the file's own tags read with
mutagen (title/artist/album/genre/date/comment; the title falls back to the file name).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from mirkit.data.library import read_tags
from mirkit.features.inputs import scan_inputs
from mirkit.files import iter_jsonl

log = logging.getLogger(__name__)

METADATA_FIELDS = ("title", "artist", "album", "genre", "date", "comment")
# labels that read as words in a caption (numbers such as bpm or midi pitch do not)
_WORD_LABELS = ("tags", "genre", "family", "instrument", "key", "style", "mood")


@dataclass
class LibraryFile:
    """One audio file found by :func:`scan_library` (path is absolute)."""

    path: str
    size: int
    mtime_ns: int
    title: str = ""
    artist: str = ""
    album: str = ""
    genre: str = ""
    date: str = ""
    comment: str = ""
    licence: str = ""
    split: str = ""
    tags: list[str] = field(default_factory=list)


def _label_words(labels: dict[str, object]) -> list[str]:
    words: list[str] = []
    for key in _WORD_LABELS:
        value = labels.get(key)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and item and item not in words:
                words.append(item)
    return words


def _rows(listing: Path, *, what: str):
    """Rows of a JSON-lines listing with a ``path`` field, resolved against its folder as ``_resolved``;
    other lines are skipped with a warning."""
    def skip(number: int, line: str) -> None:
        log.warning("%s:%d: skipped a line that is not a %s row: %.80s", listing, number, what, line)

    for number, row in iter_jsonl(listing, strict=False, on_skip=skip):
        if not isinstance(row.get("path"), str):
            skip(number, json.dumps(row))
            continue
        yield {**row, "_resolved": str((listing.parent / row["path"]).resolve())}


def _known_metadata(root: Path) -> dict[str, dict[str, object]]:
    """Per resolved path: what library.jsonl and suite manifests under ``root`` say."""
    known: dict[str, dict[str, object]] = {}
    for listing in sorted(root.rglob("library.jsonl")):
        for row in _rows(listing, what="library"):
            entry = known.setdefault(row["_resolved"], {})
            for key in (*METADATA_FIELDS, "licence"):
                if row.get(key):
                    entry[key] = str(row[key])
            entry.setdefault("tags", [])
            entry["tags"] += [w for w in _label_words(row.get("labels") or {}) if w not in entry["tags"]]
    for manifest in sorted(root.rglob("manifest.jsonl")):
        for row in _rows(manifest, what="manifest"):
            entry = known.setdefault(row["_resolved"], {})
            entry.setdefault("tags", [])
            entry["tags"] += [w for w in _label_words(row.get("labels") or {}) if w not in entry["tags"]]
            if row.get("split") and not entry.get("split"):
                entry["split"] = str(row["split"])
            if row.get("piece") and not entry.get("title"):
                entry["title"] = str(row["piece"])  # suite file names spell out labels; piece ids do not
            if row.get("licence") and not entry.get("licence"):
                entry["licence"] = str(row["licence"])
    return known


def scan_library(root: str | Path) -> tuple[list[LibraryFile], list[tuple[str, str, str]]]:
    """Every audio file under ``root`` (sorted) with its metadata; plus ``(path, reason, message)`` skips.

    When ``root`` holds a ``library.jsonl`` (``mirkit data music``), the tracks it lists are the library.
    """
    root = Path(root)
    if not root.is_dir():
        from mirkit.errors import ConfigError

        raise ConfigError(f"library folder {str(root)!r} does not exist or is not a folder; pass the folder "
                          "that holds your music (e.g. the output of `mirkit data music`).")
    catalogue = root / "library.jsonl"
    # a `mirkit data music` folder: its catalogue lists the tracks (the unpacked packages also hold stems)
    paths, skipped = scan_inputs(catalogue if catalogue.is_file() else root)
    known = _known_metadata(root)
    files = []
    for path in paths:
        resolved = Path(path).resolve()
        stat = os.stat(resolved)
        info = dict(known.get(str(resolved), {}))
        if not info.get("title") or not info.get("artist"):
            for key, value in read_tags(resolved).items():
                info.setdefault(key, value)
        files.append(LibraryFile(path=str(resolved), size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                                 **{key: str(info.get(key, "")) for key in (*METADATA_FIELDS, "licence", "split")},
                                 tags=list(info.get("tags", []))))
    return files, skipped
