"""The ground floor: atomic writes, content hashing and JSON-lines files.

Every package imports these from here (none of them reaches into another package for a file
helper). Nothing here imports torch, numpy or another mirkit module except :mod:`mirkit.errors`.

Conventions:
    - Writes go to a temporary file in the target folder, are fsynced and renamed over the target
      (``os.replace``), and the folder is fsynced: after a crash a file is either whole or absent
      (plus a stray ``.<name>.<pid>.tmp`` at most).
    - Digests are sha256, lower-case hex. :func:`sha256_file` streams the file (constant memory);
      callers that need a shorter id take a prefix (the feature store's item ids are 32 digits).
    - JSON-lines files hold one JSON object per line, UTF-8, ``\\n``-terminated.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from mirkit.errors import ConfigError

_CHUNK = 1 << 22


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename (creates parent folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # some filesystems refuse directory fsync


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: object, *, indent: int | None = 2, sort_keys: bool = False) -> None:
    """:func:`atomic_write_bytes` of ``json.dumps(data)``."""
    atomic_write_bytes(path, json.dumps(data, indent=indent, sort_keys=sort_keys).encode("utf-8"))


def safe_stem(name: str) -> str:
    """``name`` (an encoder such as ``random:mirkit-mel-small`` or a folder path) as one file-name component:
    every character other than letters, digits, ``.``, ``-`` and ``_`` becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes (64 hex digits), read in 4 MiB chunks."""
    with open(path, "rb") as handle:
        if hasattr(hashlib, "file_digest"):  # Python 3.11+: one reused buffer, about 1.6x faster
            return hashlib.file_digest(handle, "sha256").hexdigest()
        digest = hashlib.sha256()
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_files(paths: Sequence[str | Path]) -> str:
    """sha256 over the concatenated bytes of ``paths`` in order (64 hex digits)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """sha256 of ``text`` encoded as UTF-8 (64 hex digits)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone (same on every machine and Python run), for hash splits."""
    return int(sha256_text(key)[:8], 16) / 16**8


def private_numba_cache(root: str | Path | None = None) -> str:
    """Give this process a numba cache of its own (``ROOT/<pid>``, under the temp folder by default).

    librosa compiles its numba functions with ``cache=True`` into its package folder; two processes
    compiling the same function at once wrote a corrupt cache there (``pitch._pi_wrapper``, under
    ``chroma_cqt``) and every later process that loaded it crashed. Call this in every worker process
    that may run librosa beside another (bench workers, Ray actors, torchrun ranks) before librosa is
    imported; numba reads the variable at import, and ``numba.config`` is set too in case numba is in
    already. Returns the folder."""
    import sys
    import tempfile

    folder = os.path.join(str(root or os.path.join(tempfile.gettempdir(), "mirkit-numba")), str(os.getpid()))
    os.environ["NUMBA_CACHE_DIR"] = folder
    if "numba" in sys.modules:
        sys.modules["numba"].config.CACHE_DIR = folder
    return folder


def write_jsonl(path: Path, rows: Iterable[object], *, sort_keys: bool = False) -> None:
    """Write ``rows`` as a JSON-lines file, atomically (the whole file or nothing)."""
    atomic_write_text(path, "".join(json.dumps(row, sort_keys=sort_keys) + "\n" for row in rows))


def append_jsonl(path: Path, row: object) -> None:
    """Append one row and fsync (a crash can cut only the last line, which :func:`read_jsonl` skips)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def iter_jsonl(path: str | Path, *, strict: bool = True,
               on_skip: Callable[[int, str], None] | None = None) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line.

    Args:
        strict: raise :class:`~mirkit.errors.ConfigError` naming the file and line on a line that
            is not a JSON object; ``False`` skips such lines (files appended to by crashed runs).
        on_skip: called with ``(line number, line)`` for each skipped line (e.g. to log it).
    """
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                problem = None if isinstance(row, dict) else f"expected a JSON object, got {type(row).__name__}"
            except ValueError as exc:
                row, problem = None, f"not valid JSON ({exc})"
            if problem is None:
                yield number, row
            elif strict:
                raise ConfigError(f"{path}:{number}: {problem}; expected one JSON object per line, got "
                                  f"{line.strip()[:80]!r}.")
            elif on_skip is not None:
                on_skip(number, line)


def read_jsonl(path: str | Path, *, strict: bool = True) -> list[dict]:
    """Every object of a JSON-lines file (see :func:`iter_jsonl`); ``[]`` when it does not exist."""
    if not Path(path).is_file():
        return []
    return [row for _, row in iter_jsonl(path, strict=strict)]


def cache_dir(name: str) -> Path:
    """``$MIRKIT_CACHE/<name>`` (default ``~/.cache/mirkit/<name>``): what mirkit computes once and reuses."""
    return Path(os.environ.get("MIRKIT_CACHE", Path.home() / ".cache" / "mirkit")) / name
