"""The on-disk feature store: one folder per recipe, one atomic file per item.

Layout::

    STORE/
      hashes.json                      path -> (size, mtime_ns, content hash) cache
      recipes/<recipe_id>/
        recipe.json                    the FeatureRecipe
        items/<id[:2]>/<id>.npz        pooled_<layer> (dim,), optional frames_/times_<layer>, meta
        errors.jsonl                   one JSON line per skipped item and run
        consolidated/layer<k>.npz      bulk-read cache (ids + matrix), rebuilt when items change
        claims/<id>.json               the run computing that item now (concurrent runs split the work)

Items are keyed by the sha256 of the audio file's bytes, so renaming files recomputes nothing.
An item file is written to a temporary name, fsynced and renamed: its presence is its done-marker,
and a kill at any moment leaves either a whole item or none (plus a stray ``*.tmp`` that
``verify --repair`` removes).

Concurrent runs on one store split the work: before computing an item a run *claims* it by creating
``claims/<id>.json`` exclusively (``O_EXCL``, atomic on local and NFSv3+ file systems); another run
that finds a live claim leaves the item to its owner and waits for it at the end. A claim is stale,
and taken over, when its owner process is gone (same host) or it is older than
:data:`CLAIM_TTL_S` (another host); a finished or failed item's claim is removed by its owner.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirkit.errors import StoreError
from mirkit.features.recipe import FeatureRecipe
from mirkit.files import append_jsonl, atomic_write_bytes, read_jsonl, sha256_file

#: a claim from another host older than this is taken over (its owner is presumed dead)
CLAIM_TTL_S = 3600.0


@dataclass(frozen=True)
class ClaimOwner:
    """Who claims items: one extraction run (``run``) of process ``pid`` on ``host``."""

    run: str
    pid: int
    host: str

    @classmethod
    def current(cls, run: str) -> ClaimOwner:
        import socket

        return cls(run, os.getpid(), socket.gethostname())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def content_hash(path: str | Path) -> str:
    """The store's item id of a file: the first 32 hex digits of its sha256."""
    return sha256_file(path)[:32]


class HashCache:
    """Remembers content hashes by (path, size, mtime) so reruns do not reread every file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, list[object]] = {}
        if path.is_file():
            try:
                self.entries = json.loads(path.read_text())
            except (OSError, ValueError):
                self.entries = {}  # a damaged cache only costs rehashing
        self.dirty = False

    def get(self, file: str | Path) -> str:
        key, stat, value = self.known(file)
        if value is None:
            value = content_hash(file)
            self.remember(key, [*stat, value])
        return value

    @staticmethod
    def key(file: str | Path) -> str:
        """The cache's key for ``file``: its resolved path."""
        return str(Path(file).resolve())

    def known(self, file: str | Path) -> tuple[str, list[object], str | None]:
        """``(key, [size, mtime_ns], hash or None)`` without reading the file: the hash when the
        cache holds one for the file's current size and mtime. Raises ``OSError`` from ``os.stat``."""
        stat = os.stat(file)
        key = self.key(file)
        cached = self.entries.get(key)
        fresh = cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns
        return key, [stat.st_size, stat.st_mtime_ns], str(cached[2]) if fresh else None

    def remember(self, key: str, entry: list[object]) -> None:
        """Store ``[size, mtime_ns, hash]`` for ``key`` (from :meth:`known`), e.g. hashed elsewhere."""
        if self.entries.get(key) != entry:
            self.entries[key] = entry
            self.dirty = True

    def save(self) -> None:
        if self.dirty:
            atomic_write_bytes(self.path, json.dumps(self.entries).encode())
            self.dirty = False


@dataclass
class VerifyReport:
    """Result of :meth:`RecipeStore.verify`."""

    ok: int = 0
    corrupt: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    temporary: list[str] = field(default_factory=list)
    repaired: bool = False


class RecipeStore:
    """The items of one recipe."""

    def __init__(self, root: Path, recipe: FeatureRecipe) -> None:
        self.recipe = recipe
        self.dir = root / "recipes" / recipe.recipe_id
        self.items_dir = self.dir / "items"
        self.errors_path = self.dir / "errors.jsonl"
        recipe_file = self.dir / "recipe.json"
        if recipe_file.is_file():
            stored = json.loads(recipe_file.read_text())
            if stored != recipe.to_dict():
                raise StoreError(f"{recipe_file} does not match recipe {recipe.recipe_id}; the store is inconsistent. "
                                 "Move that folder away and extract again.")
        else:
            atomic_write_bytes(recipe_file, json.dumps(recipe.to_dict(), indent=2).encode())

    def item_path(self, item_id: str) -> Path:
        return self.items_dir / item_id[:2] / f"{item_id}.npz"

    def has(self, item_id: str) -> bool:
        return self.item_path(item_id).is_file()

    def item_ids(self) -> list[str]:
        return sorted(p.stem for p in self.items_dir.glob("*/*.npz"))

    def write(self, item_id: str, arrays: dict[str, np.ndarray], meta: dict[str, object]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        atomic_write_bytes(self.item_path(item_id), buffer.getvalue())

    def read(self, item_id: str) -> tuple[dict[str, np.ndarray], dict[str, object]]:
        path = self.item_path(item_id)
        if not path.is_file():
            raise StoreError(f"item {item_id} is not in the store for recipe {self.recipe.recipe_id} ({path}). "
                             "Run `mirkit extract` on its audio first.")
        try:
            with np.load(path) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise StoreError(f"item file {path} is corrupt ({exc}). Run `mirkit cache verify --repair` "
                             "and extract again.") from exc
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        return arrays, meta

    def read_meta(self, item_id: str) -> dict[str, object]:
        """An item's meta (path, duration, ...) without reading its arrays."""
        path = self.item_path(item_id)
        try:
            with np.load(path) as data:
                return json.loads(data["meta"].tobytes().decode())
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise StoreError(f"item file {path} is corrupt ({exc}). Run `mirkit cache verify --repair` "
                             "and extract again.") from exc

    def read_pooled(self, layer: int, item_ids: Sequence[str]) -> np.ndarray:
        """All items' pooled vectors of one layer as one ``(len(item_ids), dim)`` array.

        The first call builds ``consolidated/layer<k>.npz``; later calls read that one file as long
        as it holds every requested id.
        """
        if layer not in self.recipe.layers:
            raise StoreError(f"layer {layer} is not stored for recipe {self.recipe.recipe_id} "
                             f"(stored layers: {list(self.recipe.layers)}).")
        cache_path = self.dir / "consolidated" / f"layer{layer}.npz"
        if cache_path.is_file():
            try:
                with np.load(cache_path) as data:
                    ids, matrix = list(data["ids"]), data["matrix"]
                position = {item: i for i, item in enumerate(ids)}
                if all(item in position for item in item_ids):
                    return matrix[[position[item] for item in item_ids]]
            except (OSError, ValueError, zipfile.BadZipFile, KeyError):
                pass  # rebuilt below
        all_ids = sorted(set(self.item_ids()) | set(item_ids))
        rows = [self.read(item)[0][f"pooled_{layer}"] for item in all_ids]
        matrix = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.array(all_ids), matrix=matrix)
        atomic_write_bytes(cache_path, buffer.getvalue())
        position = {item: i for i, item in enumerate(all_ids)}
        return matrix[[position[item] for item in item_ids]]

    def read_frames(self, layer: int, item_ids: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each item's ``(frames (n, dim), times_s (n,))`` of one layer, in time order, a frame that
        overlapping windows produced twice kept once. Only that layer's arrays are read from each item
        file, so a suite's frames are read a layer at a time, never all at once."""
        if not self.recipe.frames:
            raise StoreError(f"recipe {self.recipe.recipe_id} stores clip vectors only; extract with pooling='none' "
                             "(`mirkit extract --pooling none`) for frame-level features.")
        if layer not in self.recipe.layers:
            raise StoreError(f"layer {layer} is not stored for recipe {self.recipe.recipe_id} "
                             f"(stored layers: {list(self.recipe.layers)}).")
        out = []
        for item in item_ids:
            path = self.item_path(item)
            try:
                with np.load(path) as data:
                    frames, times = data[f"frames_{layer}"], data[f"times_{layer}"]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
                raise StoreError(f"item file {path} has no readable frames of layer {layer} ({exc}). Run "
                                 "`mirkit cache verify --repair` and extract again.") from exc
            order = np.argsort(times, kind="stable")
            times, frames = times[order], frames[order]
            keep = np.concatenate([[True], np.diff(times) > 1e-6])
            out.append((frames[keep], times[keep]))
        return out

    # -- claims: concurrent runs on one store ------------------------------------------------------
    def _claim_path(self, item_id: str) -> Path:
        return self.dir / "claims" / f"{item_id}.json"

    def claim_holder(self, item_id: str) -> dict[str, object] | None:
        """The live claim on ``item_id`` (its owner's record), or ``None`` when it is free or stale."""
        path = self._claim_path(item_id)
        try:
            record = json.loads(path.read_text())
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return None
        except (OSError, ValueError):  # being written right now: its owner is alive
            return {"run": "?", "pid": -1, "host": "?"}
        import socket

        if record.get("host") == socket.gethostname():
            return record if _alive(int(record.get("pid", -1))) else None
        return record if age < CLAIM_TTL_S else None

    def claim(self, item_id: str, owner: ClaimOwner) -> dict[str, object] | None:
        """Claim ``item_id`` for ``owner``; returns ``None`` when ``owner`` holds it now, else the record of
        the live run that does (a stale claim is taken over)."""
        path = self._claim_path(item_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"run": owner.run, "pid": owner.pid, "host": owner.host, "time": time.time()}
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.claim_holder(item_id)
                if holder is not None:
                    return None if holder.get("run") == owner.run else holder
                try:  # stale: its owner died; take it over
                    path.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(record))
            return None
        return self.claim_holder(item_id) or {"run": "?", "pid": -1, "host": "?"}

    def release(self, item_id: str, owner: ClaimOwner) -> None:
        """Remove ``owner``'s claim on ``item_id`` (another run's claim is left alone)."""
        path = self._claim_path(item_id)
        try:
            if json.loads(path.read_text()).get("run") == owner.run:
                path.unlink()
        except (OSError, ValueError):
            pass

    def record_error(self, record: dict[str, object]) -> None:
        """Append one skip record (item, path, reason, message, run) to ``errors.jsonl``."""
        append_jsonl(self.errors_path, {**record, "time": time.time()})

    def errors(self) -> list[dict[str, object]]:
        """Recorded skips; a line cut short by a crash is ignored."""
        return read_jsonl(self.errors_path, strict=False)

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Check every item loads with all layers, right shapes and finite values; optionally delete bad ones."""
        report = VerifyReport(repaired=repair)
        dims = self._expected_dims()
        for tmp in self.dir.rglob("*.tmp"):
            report.temporary.append(str(tmp))
            if repair:
                tmp.unlink(missing_ok=True)
        for path in sorted(self.items_dir.glob("*/*.npz")):
            problem = self._check_item(path, dims)
            if problem is None:
                report.ok += 1
                continue
            report.corrupt.append((str(path), problem))
            if repair:
                path.unlink(missing_ok=True)
        if repair and report.corrupt:
            for cache in (self.dir / "consolidated").glob("*.npz"):
                cache.unlink(missing_ok=True)
        return report

    def _expected_dims(self) -> dict[int, int | None]:
        """Each layer's dimension as most items have it (a checkpoint may differ from the registry shape)."""
        from collections import Counter

        seen: dict[int, Counter] = {layer: Counter() for layer in self.recipe.layers}
        for path in sorted(self.items_dir.glob("*/*.npz"))[:50]:
            try:
                with np.load(path) as data:
                    for layer in self.recipe.layers:
                        seen[layer][data[f"pooled_{layer}"].shape[0]] += 1
            except Exception:
                continue
        return {layer: (counts.most_common(1)[0][0] if counts else None) for layer, counts in seen.items()}

    def _check_item(self, path: Path, dims: dict[int, int | None]) -> str | None:
        try:
            arrays, meta = self.read(path.stem)
        except StoreError as exc:
            return str(exc.__cause__ or exc)
        except (ValueError, KeyError) as exc:
            return f"unreadable metadata: {exc}"
        for layer in self.recipe.layers:
            pooled = arrays.get(f"pooled_{layer}")
            if pooled is None:
                return f"layer {layer} is missing"
            if pooled.ndim != 1 or (dims.get(layer) and pooled.shape[0] != dims[layer]):
                return f"layer {layer} has shape {pooled.shape}, expected ({dims.get(layer)},)"
            if not np.isfinite(pooled).all():
                return f"layer {layer} holds non-finite values"
            if self.recipe.frames and f"frames_{layer}" not in arrays:
                return f"frame-level layer {layer} is missing"
        return None


class FeatureStore:
    """A folder holding features of any number of recipes."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def recipe(self, recipe: FeatureRecipe) -> RecipeStore:
        return RecipeStore(self.root, recipe)

    def recipes(self) -> list[FeatureRecipe]:
        found = []
        for path in sorted((self.root / "recipes").glob("*/recipe.json")):
            found.append(FeatureRecipe.from_dict(json.loads(path.read_text())))
        return found

    def hash_cache(self) -> HashCache:
        return HashCache(self.root / "hashes.json")

    def find(self, *, encoder: str | None = None) -> list[RecipeStore]:
        return [self.recipe(r) for r in self.recipes() if encoder is None or r.encoder == encoder]

