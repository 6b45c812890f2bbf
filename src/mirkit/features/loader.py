"""The input side of ``extract``: planning jobs, and worker processes that hash, decode and window.

The main process only stats files and looks their hashes up in the store's hash cache; files it
has not seen are hashed by the decoding workers (which read them anyway), so on a fresh job the
hashing overlaps the model instead of running before it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from mirkit.audio.io import load
from mirkit.audio.loudness import loudness_gain
from mirkit.audio.stream import iter_windows
from mirkit.errors import AudioDecodeError, AudioError, InvalidAudioError
from mirkit.features.recipe import FeatureRecipe
from mirkit.features.store import ClaimOwner, HashCache, RecipeStore, content_hash


@dataclass(frozen=True)
class Hashed:
    """A worker hashed a file the hash cache did not know (``key``/``size``/``mtime_ns`` for the cache)."""

    key: str
    size: int
    mtime_ns: int
    item_id: str
    stored: bool  # its content is already in the store: the job ends here


@dataclass
class WindowMessage:
    """One decoded window of a job; the job's first message carries ``hashed`` when the worker hashed it."""

    job: int
    index: int
    start: int  # first sample of the window in the file
    wave: torch.Tensor  # (samples,) at the recipe's rate
    last: bool
    hashed: Hashed | None = None

    def pin_memory(self) -> WindowMessage:
        """Called by the DataLoader's pinning thread on CUDA runs: the window in page-locked memory."""
        return replace(self, wave=self.wave.pin_memory())


@dataclass
class FailedMessage:
    """A job that failed in the worker, with the error in mirkit's hierarchy (its ``reason`` is the skip reason)."""

    job: int
    error: AudioError
    hashed: Hashed | None = None


@dataclass
class StoredMessage:
    """A job whose content turned out to be stored already (only its hash comes back)."""

    job: int
    hashed: Hashed


@dataclass
class ClaimedMessage:
    """A job whose item another live run is computing now (its claim's record in ``holder``)."""

    job: int
    item_id: str
    holder: dict
    hashed: Hashed | None = None


WorkerMessage = WindowMessage | FailedMessage | StoredMessage | ClaimedMessage


@dataclass(frozen=True)
class Job:
    """One file to extract: its position in the run, its path, and its item id when already known."""

    index: int
    path: str
    item_id: str | None = None


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)


def default_workers(device: str) -> int:
    """Decoding processes: none on a CPU with two cores or fewer, up to 4 on bigger CPUs, all but two
    when a GPU does the model's work (one decoding core keeps up with only a few hundred audio-s/s).

    On two cores the model's two threads use both: a decoding process preempts one of them, and the
    other waits for it at every parallel step, so overlapping cost more than it saved (2026-12-07, 2-core
    VM: musicnn 0.68 of the network's own speed with one worker, 0.86 decoding between batches;
    ``benchmarks/extract_throughput.py --workers 1`` against the default measures it again). With no workers the main process decodes the next window itself.
    """
    count = cores()
    if device.startswith("cpu"):
        return 0 if count <= 2 else min(4, count - 1)
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


def read_failure(path: str, exc: OSError) -> AudioDecodeError:
    """The error for a file that could not be read (reason ``missing`` when gone, else ``unreadable``)."""
    error = AudioDecodeError(f"{path!r} could not be read: {exc}. It may have been moved or deleted.")
    error.reason = "missing" if isinstance(exc, FileNotFoundError) else "unreadable"
    return error


class WindowStream(IterableDataset):
    """Per job (sharded across workers): :class:`WindowMessage` per window, or one :class:`FailedMessage`,
    or one :class:`StoredMessage` when the worker hashed the file and found its content stored."""

    def __init__(self, jobs: list[Job], recipe: FeatureRecipe, items: RecipeStore,
                 owner: ClaimOwner | None = None) -> None:
        self.jobs = jobs
        self.recipe = recipe
        self.items = items
        self.owner = owner  # claims each item before computing it (None: no claims)

    def __iter__(self) -> Iterator[WorkerMessage]:
        info = get_worker_info()
        jobs = self.jobs[info.id :: info.num_workers] if info else self.jobs
        for job in jobs:
            hashed: Hashed | None = None  # rides on the job's first message (one message fewer per file)
            if job.item_id is None:
                try:
                    hashed = self._hash(job.path)
                except OSError as exc:
                    yield FailedMessage(job.index, read_failure(job.path, exc))
                    continue
                if hashed.stored:
                    yield StoredMessage(job.index, hashed)
                    continue
            if self.owner is not None:
                item_id = job.item_id or hashed.item_id  # type: ignore[union-attr]
                holder = self.items.claim(item_id, self.owner)
                if holder is not None:
                    yield ClaimedMessage(job.index, item_id, holder, hashed)
                    continue
            yield from self._windows(job, hashed)

    def _hash(self, path: str) -> Hashed:
        stat = os.stat(path)
        item_id = content_hash(path)
        return Hashed(HashCache.key(path), stat.st_size, stat.st_mtime_ns, item_id, self.items.has(item_id))

    def _gain(self, path: str) -> float:
        """The recipe's loudness gain for the whole file (a first decoding pass; 1.0 without a policy)."""
        recipe = self.recipe
        if recipe.loudness is None:
            return 1.0
        wave, _ = load(path, sample_rate=recipe.sample_rate, channel_policy=recipe.channel_policy,
                       resample_quality=recipe.resampler.removeprefix("soxr-"))
        return loudness_gain(wave, sample_rate=recipe.sample_rate, policy=recipe.loudness)

    def _windows(self, job: Job, hashed: Hashed | None) -> Iterator[WorkerMessage]:
        recipe = self.recipe
        min_samples = max(1, round(recipe.min_duration_s * recipe.sample_rate))
        max_samples = round(recipe.max_window_s * recipe.sample_rate) if recipe.max_window_s else None
        try:
            gain = self._gain(job.path)
            for window in iter_windows(job.path, sample_rate=recipe.sample_rate, window_s=recipe.window_s,
                                       hop_s=recipe.hop_s, min_samples=min_samples, max_samples=max_samples,
                                       channel_policy=recipe.channel_policy,
                                       resample_quality=recipe.resampler.removeprefix("soxr-")):
                wave = window.waveform if gain == 1.0 else (window.waveform * gain).astype(np.float32)
                yield WindowMessage(job.index, window.index, window.start_sample, torch.from_numpy(wave),
                                    window.is_last, hashed)
                hashed = None
        except AudioError as exc:
            yield FailedMessage(job.index, exc, hashed)
        except Exception as exc:  # never let one file kill the run
            yield FailedMessage(job.index, InvalidAudioError(f"{job.path!r}: {type(exc).__name__}: {exc}",
                                                             reason="unexpected_error"), hashed)


class Batcher:
    """Groups window records into batches; equal lengths only when padding is not invariant.

    The first batches ramp up (1, 2, 4, ... windows up to ``batch_size``): the model starts on the
    first decoded window instead of idling until a whole batch is decoded (0.25 s of a 4 s CPU run
    with 8 windows of 30 s).
    """

    def __init__(self, batch_size: int, *, exact_length: bool) -> None:
        self.batch_size = batch_size
        self.exact_length = exact_length
        self.pending: dict[int, list[WindowMessage]] = {}
        self.limit = 1  # the size of the next batch while ramping up

    def add(self, record: WindowMessage) -> Iterator[list[WindowMessage]]:
        key = len(record.wave) if self.exact_length else 0
        group = self.pending.setdefault(key, [])
        group.append(record)
        if len(group) >= min(self.limit, self.batch_size):
            self.limit *= 2
            yield self.pending.pop(key)
        elif sum(len(g) for g in self.pending.values()) >= 4 * self.batch_size:
            yield self.pending.pop(max(self.pending, key=lambda k: len(self.pending[k])))

    def flush(self) -> Iterator[list[WindowMessage]]:
        while self.pending:
            yield self.pending.pop(next(iter(self.pending)))
