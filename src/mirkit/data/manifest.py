"""Manifests: one JSON line per clip (path, split, labels, duration_s, source, licence, rendering)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from mirkit.errors import ConfigError
from mirkit.files import iter_jsonl, sha256_file, write_jsonl

SPLITS = ("train", "valid", "test")


def stratified_splits(groups: list[str], *, seed: int, valid: float = 0.15, test: float = 0.15) -> list[str]:
    """A split per piece, 70/15/15 within each group (style, mode, ...): every group with at least
    three pieces gets train, valid and test pieces. ``groups[i]`` is piece i's group."""
    import random

    rng = random.Random(seed)
    out = [""] * len(groups)
    for group in sorted(set(groups)):
        members = [i for i, g in enumerate(groups) if g == group]
        rng.shuffle(members)
        n = len(members)
        n_test = max(1, round(test * n)) if n >= 3 else 0
        n_valid = max(1, round(valid * n)) if n >= 3 else 0
        for rank, index in enumerate(members):
            out[index] = "test" if rank < n_test else "valid" if rank < n_test + n_valid else "train"
    return out


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
    """sha256 of a clip or manifest file (64 hex digits)."""
    return sha256_file(path)


#: labels that name a sidecar file (relative to the task folder) rather than hold the label itself;
#: ``stems`` maps each stem to one
SIDECAR_LABELS = ("notes", "piano_roll", "stems")


def labels_for_copy(labels: dict, task_dir: Path) -> dict:
    """``labels`` for a manifest written elsewhere (a perturbed or augmented copy): sidecar paths made absolute."""
    def absolute(value):
        if isinstance(value, dict):
            return {k: absolute(v) for k, v in value.items()}
        return str((task_dir / value).resolve()) if isinstance(value, str) else value

    return {k: absolute(v) if k in SIDECAR_LABELS else v for k, v in labels.items()}


def write_manifest(path: Path, entries: list[ManifestEntry]) -> None:
    write_jsonl(path, (asdict(e) for e in entries), sort_keys=True)


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read and check a manifest; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"manifest {str(path)!r} does not exist; build a suite with `mirkit data build` first.")
    entries = []
    for number, data in iter_jsonl(path):
        try:
            entry = ManifestEntry(**data)
        except TypeError as exc:
            raise ConfigError(f"{path}:{number}: not a manifest entry ({exc}); expected JSON with fields "
                              f"path, split, labels, duration_s, source, licence, piece.") from None
        if entry.split not in SPLITS:
            raise ConfigError(f"{path}:{number}: split {entry.split!r} is not one of {SPLITS}.")
        entries.append(entry)
    return entries
