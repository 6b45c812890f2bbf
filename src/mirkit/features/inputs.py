"""Which files an extraction reads: a folder scanned recursively, a manifest, or one file."""

from __future__ import annotations

import json
from pathlib import Path

from mirkit.audio.io import is_audio_path
from mirkit.errors import ConfigError
from mirkit.files import iter_jsonl


def scan_inputs(source: str | Path) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Audio paths under a folder (recursive, sorted) or listed in a manifest (.jsonl ``path`` field / .txt).

    Returns ``(paths, skipped)`` where ``skipped`` holds ``(path, reason, message)`` for files
    that are not audio.
    """
    source = Path(source)
    skipped: list[tuple[str, str, str]] = []
    if source.is_dir():
        candidates = sorted(str(p) for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    elif source.is_file() and source.suffix in (".jsonl", ".txt"):
        candidates = _read_manifest(source)
    elif source.is_file() and is_audio_path(source):
        candidates = [str(source)]
    else:
        raise ConfigError(f"input {str(source)!r} is neither a folder, an audio file, nor a manifest "
                          "(.jsonl with a 'path' field, or .txt with one path per line).")
    paths = []
    for path in candidates:
        if is_audio_path(path):
            paths.append(path)
        else:
            skipped.append((path, "not_audio", f"{path!r} does not have an audio extension; it was ignored."))
    return paths, skipped


def manifest_of_task_folder(source: str | Path) -> Path:
    """``source``, or the ``manifest.jsonl`` it holds when it is a folder with one (a suite's task folder,
    whose audio may live in another task's folder: its manifest lists what belongs to it)."""
    source = Path(source)
    return source / "manifest.jsonl" if source.is_dir() and (source / "manifest.jsonl").is_file() else source


def _read_manifest(manifest: Path) -> list[str]:
    if manifest.suffix == ".jsonl":
        values = []
        for number, row in iter_jsonl(manifest):
            if not isinstance(row.get("path"), str):
                raise ConfigError(f"{manifest}:{number}: expected a JSON object with a 'path' field, got "
                                  f"{json.dumps(row)[:80]!r}.")
            values.append(row["path"])
    else:
        values = [line.strip() for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [str(Path(v) if Path(v).is_absolute() else manifest.parent / v) for v in values]
