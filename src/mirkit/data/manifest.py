"""Manifests: one JSON line per clip (path, split, labels, duration_s, source, licence, rendering)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mirkit.errors import ConfigError
from mirkit.features.store import atomic_write_bytes

SPLITS = ("train", "valid", "test")


def split_for(index: int, *, train: float = 0.7, valid: float = 0.15) -> str:
    """Split of the ``index``-th piece: a golden-ratio sequence gives 70/15/15 proportions that hold
    for every contiguous run of pieces (so every style or mode gets all three splits)."""
    fraction = (index * 0.6180339887498949) % 1.0
    return "train" if fraction < train else "valid" if fraction < train + valid else "test"


@dataclass
class ManifestEntry:
    """One clip. ``path`` is relative to the manifest's folder; ``piece`` groups clips of one piece
    (transpositions, tempi), which always share a split."""

    path: str
    split: str
    labels: dict[str, object]
    duration_s: float
    source: str
    licence: str
    piece: str
    rendering: dict[str, object] = field(default_factory=dict)
    sha256: str = ""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(path: Path, entries: list[ManifestEntry]) -> None:
    atomic_write_bytes(path, "".join(json.dumps(asdict(e), sort_keys=True) + "\n" for e in entries).encode())


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read and check a manifest; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"manifest {str(path)!r} does not exist; build a suite with `mirkit data build` first.")
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            entry = ManifestEntry(**data)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path}:{number}: not a manifest entry ({exc}); expected JSON with fields "
                              f"path, split, labels, duration_s, source, licence, piece.") from None
        if entry.split not in SPLITS:
            raise ConfigError(f"{path}:{number}: split {entry.split!r} is not one of {SPLITS}.")
        entries.append(entry)
    return entries
