"""The input side of ``extract``: planning jobs, and worker processes that hash, decode and window.

The main process only stats files and looks their hashes up in the store's hash cache; files it
has not seen are hashed by the decoding workers (which read them anyway), so on a fresh job the
hashing overlaps the model instead of running before it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import IterableDataset, get_worker_info

from mirkit.audio.stream import iter_windows
from mirkit.errors import AudioError
from mirkit.features.recipe import FeatureRecipe
from mirkit.features.store import HashCache, RecipeStore, content_hash


@dataclass(frozen=True)
class Job:
    """One file to extract: its position in the run, its path, and its item id when already known."""

    index: int
    path: str
    item_id: str | None = None


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)


def default_workers(device: str) -> int:
    """Decoding processes: up to 4 on CPU (the model needs the cores), all but two when a GPU
    does the model's work (one decoding core keeps up with only a few hundred audio-s/s)."""
    count = cores()
    if device.startswith("cpu"):
        return min(4, max(1, count - 1))
    return max(1, min(count - 2, 32))


@dataclass
class Plan:
    """What :func:`plan_jobs` found: files to run, files already stored, files that could not be read."""

    jobs: list[Job]
    stored: dict[str, str]  # path -> item id, already in the store (or the same content as an earlier job)
    unreadable: list[tuple[str, OSError]]
    seen: set[str]  # item ids this run will compute


def plan_jobs(paths: list[str], items: RecipeStore, cache: HashCache) -> Plan:
    """Stat every file and look its hash up; drop those already stored and known duplicates.

    Files whose hash is not cached get a job without an item id; the worker hashes them.
    """
    plan = Plan(jobs=[], stored={}, unreadable=[], seen=set())
    for path in paths:
        try:
            _key, _stat, item_id = cache.known(path)
        except OSError as exc:
            plan.unreadable.append((path, exc))
            continue
        if item_id is not None and (items.has(item_id) or item_id in plan.seen):
            plan.stored[path] = item_id
            continue
        if item_id is not None:
            plan.seen.add(item_id)
        plan.jobs.append(Job(len(plan.jobs), path, item_id))
    return plan


def read_error(path: str, exc: OSError) -> tuple[str, str]:
    """``(reason, message)`` for a file that could not be read (gone, or no permission)."""
    reason = "missing" if isinstance(exc, FileNotFoundError) else "unreadable"
    return reason, f"{path!r} could not be read: {exc}. It may have been moved or deleted."


class WindowStream(IterableDataset):
    """Per job (sharded across workers): its window records, or an error record.

    Records are dicts with ``job``; a window record adds ``index``, ``start``, ``wave``, ``last``;
    an error record ``reason`` and ``message``. When the worker hashed the file, the job's first
    record also carries ``hashed`` (``[key, size, mtime_ns, id]`` for the hash cache) and
    ``stored``; a file whose content is already stored gets only that record.
    """

    def __init__(self, jobs: list[Job], recipe: FeatureRecipe, items: RecipeStore) -> None:
        self.jobs = jobs
        self.recipe = recipe
        self.items = items

    def __iter__(self) -> Iterator[dict[str, object]]:
        info = get_worker_info()
        jobs = self.jobs[info.id :: info.num_workers] if info else self.jobs
        recipe = self.recipe
        min_samples = max(1, round(recipe.min_duration_s * recipe.sample_rate))
        max_samples = round(recipe.max_window_s * recipe.sample_rate) if recipe.max_window_s else None
        for job in jobs:
            extra: dict[str, object] = {}  # rides on the job's first record (one message fewer per file)
            if job.item_id is None:
                try:
                    stat = os.stat(job.path)
                    item_id = content_hash(job.path)
                except OSError as exc:
                    reason, message = read_error(job.path, exc)
                    yield {"job": job.index, "reason": reason, "message": message}
                    continue
                stored = self.items.has(item_id)
                extra = {"hashed": [HashCache.key(job.path), stat.st_size, stat.st_mtime_ns, item_id],
                         "stored": stored}
                if stored:
                    yield {"job": job.index, **extra}
                    continue
            try:
                for window in iter_windows(job.path, sample_rate=recipe.sample_rate, window_s=recipe.window_s,
                                           hop_s=recipe.hop_s, min_samples=min_samples, max_samples=max_samples,
                                           channel_policy=recipe.channel_policy,
                                           resample_quality=recipe.resampler.removeprefix("soxr-")):
                    yield {"job": job.index, "index": window.index, "start": window.start_sample,
                           "wave": torch.from_numpy(window.waveform), "last": window.is_last, **extra}
                    extra = {}
            except AudioError as exc:
                yield {"job": job.index, "reason": exc.reason, "message": str(exc), **extra}
            except Exception as exc:  # never let one file kill the run
                yield {"job": job.index, "reason": "unexpected_error",
                       "message": f"{job.path!r}: {type(exc).__name__}: {exc}", **extra}


class Batcher:
    """Groups window records into batches; equal lengths only when padding is not invariant."""

    def __init__(self, batch_size: int, *, exact_length: bool) -> None:
        self.batch_size = batch_size
        self.exact_length = exact_length
        self.pending: dict[int, list[dict[str, object]]] = {}

    def add(self, record: dict[str, object]) -> Iterator[list[dict[str, object]]]:
        key = len(record["wave"]) if self.exact_length else 0  # type: ignore[arg-type]
        group = self.pending.setdefault(key, [])
        group.append(record)
        if len(group) >= self.batch_size:
            yield self.pending.pop(key)
        elif sum(len(g) for g in self.pending.values()) >= 4 * self.batch_size:
            yield self.pending.pop(max(self.pending, key=lambda k: len(self.pending[k])))

    def flush(self) -> Iterator[list[dict[str, object]]]:
        while self.pending:
            yield self.pending.pop(next(iter(self.pending)))
