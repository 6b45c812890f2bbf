"""One extraction run: decoded windows in, stored items out, with explicit state and named steps.

:class:`ExtractionRun` consumes the workers' typed messages (:mod:`mirkit.features.loader`),
batches windows through the encoder, accumulates each item's layer outputs across its windows and
hands finished items to :class:`ItemWriter`. State lives in the run object: which jobs ended,
each live item's accumulator, batches whose pooled sums are still on the device, pending writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from mirkit.encoders.base import Encoder
from mirkit.errors import AudioError, MirkitError
from mirkit.features.loader import (
    Batcher,
    ClaimedMessage,
    FailedMessage,
    Hashed,
    Plan,
    StoredMessage,
    WindowMessage,
    WindowStream,
    default_workers,
)
from mirkit.features.pooling import ItemAccumulator, PendingSums
from mirkit.features.recipe import FeatureRecipe
from mirkit.features.store import ClaimOwner, HashCache, RecipeStore

log = logging.getLogger(__name__)

#: records a skipped item: ``(path, item id or None, reason, message)``
SkipFn = Callable[[str, "str | None", str, str], None]


class DeviceMemoryError(MirkitError, RuntimeError):
    """The accelerator ran out of memory on a batch; the message names a batch size that fits."""


@dataclass
class ExtractHooks:
    """Seams for tests; production runs pass none.

    Attributes:
        pool_on_device: sum pooled frames where the model runs (the accelerator path) even on the CPU;
            ``None`` does so on accelerators only.
        before_write: called before each finished item is handed to the writer (a test slows the run
            with it so that a ``kill -9`` lands mid-run).
    """

    pool_on_device: bool | None = None
    before_write: Callable[[], None] | None = None


@dataclass
class RunTimings:
    """Seconds of the main process's wall time (see ``ExtractReport.timings``)."""

    warmup_s: float = 0.0
    wait_input_s: float = 0.0
    model_s: float = 0.0
    write_s: float = 0.0


class ItemWriter:
    """Writes items (temp file, fsync, rename) in threads so the model never waits on the disk; at
    most ``max_pending`` writes are in flight, which bounds memory when the disk is slower."""

    def __init__(self, items: RecipeStore, *, threads: int = 4, max_pending: int = 64) -> None:
        self.items = items
        self.max_pending = max_pending
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mirkit-write")
        self.pending: list[tuple[Future, int, float]] = []

    def submit(self, job: int, item_id: str, arrays: dict, meta: dict[str, object], duration_s: float) -> None:
        self.pending.append((self.pool.submit(self.items.write, item_id, arrays, meta), job, duration_s))
        if len(self.pending) > self.max_pending:
            wait([self.pending[0][0]])

    def finished(self, *, block: bool) -> list[tuple[int, float, OSError | None]]:
        """``(job, duration_s, error)`` for every write that is done (all of them when ``block``)."""
        out, keep = [], []
        for future, job, duration_s in self.pending:
            if not (block or future.done()):
                keep.append((future, job, duration_s))
                continue
            try:
                future.result()
                out.append((job, duration_s, None))
            except OSError as exc:
                out.append((job, duration_s, exc))
        self.pending = keep
        return out

    def close(self) -> None:
        self.pool.shutdown(wait=True)  # never leave a write half done, even on an error


@dataclass
class _Batch:
    messages: list[WindowMessage]
    outputs: object = None  # LayerOutputs when frames are pooled on the host
    sums: PendingSums | None = None


class ExtractionRun:
    """Runs ``plan.jobs`` through ``encoder`` into ``items``; results go into ``report``.

    Call :meth:`execute` once. ``skip`` records a skipped item (reason and message) in the store's
    error log and the report.
    """

    def __init__(self, plan: Plan, encoder: Encoder, recipe: FeatureRecipe, items: RecipeStore, cache: HashCache,
                 report, skip: SkipFn, config, *, hooks: ExtractHooks | None = None, progress: bool = True,
                 owner: ClaimOwner | None = None) -> None:
        from tqdm.auto import tqdm

        self.plan, self.encoder, self.recipe, self.items, self.cache = plan, encoder, recipe, items, cache
        self.owner = owner
        self.elsewhere: dict[str, str] = {}  # path -> item id that another live run claimed (waited for later)
        self.report, self.skip, self.config = report, skip, config
        self.hooks = hooks or ExtractHooks()
        self.raise_errors = config.on_error == "raise"
        self.device = torch.device(config.device)
        self.paths = {job.index: job.path for job in plan.jobs}
        self.ids = {job.index: job.item_id for job in plan.jobs if job.item_id is not None}  # once known
        self.rates = {layer: encoder.spec.layers[layer].frame_rate_hz for layer in recipe.layers}
        self.accumulators: dict[int, ItemAccumulator] = {}
        self.ended: set[int] = set()  # failed, stored or duplicate jobs: their windows are dropped
        self.on_device: list[_Batch] = []  # batches whose pooled sums are still on the way to the host
        self.batcher = Batcher(config.rows, exact_length=recipe.batching == "exact-length")
        pool = self.hooks.pool_on_device
        self.pool_on_device = (pool if pool is not None else self.device.type != "cpu") and not recipe.frames
        self.timings = RunTimings()
        self.writer = ItemWriter(items)
        self.bar = tqdm(total=len(plan.jobs), unit="file", desc=f"extract {encoder.spec.name}",
                        disable=not progress or None)

    # -- the run ----------------------------------------------------------------------------------
    def execute(self) -> RunTimings:
        workers = self.config.num_workers if self.config.num_workers is not None else default_workers(self.config.device)
        loader = DataLoader(WindowStream(self.plan.jobs, self.recipe, self.items, self.owner), batch_size=None,
                            num_workers=workers, prefetch_factor=8 if workers else None,
                            pin_memory=self.device.type == "cuda")
        try:
            messages = iter(loader)  # starts the workers; the device warms up while they decode
            if self.device.type == "cuda":
                started = time.perf_counter()
                self._warm_up(rows=min(self.config.rows, len(self.plan.jobs)))
                self.timings.warmup_s += time.perf_counter() - started
            while True:
                waited = time.perf_counter()
                message = next(messages, None)
                self.timings.wait_input_s += time.perf_counter() - waited
                if message is None:
                    break
                self._receive(message)
            for batch in self.batcher.flush():
                self._run(batch)
            self._settle()
            self._collect(block=True)
        finally:
            self.writer.close()
            self.bar.close()
            if self.owner is not None:  # an aborted run leaves no claim behind (finished items released theirs)
                for item_id in self.ids.values():
                    self.items.release(item_id, self.owner)
        return self.timings

    def _receive(self, message: WindowMessage | FailedMessage | StoredMessage | ClaimedMessage) -> None:
        if message.hashed is not None and self._hashed(message.job, message.hashed):
            return
        if isinstance(message, ClaimedMessage):  # another run computes it; extract() waits for it at the end
            self.ended.add(message.job)
            self.ids.pop(message.job, None)  # not ours to release
            self.report.item_ids.pop(self.paths[message.job], None)
            self.elsewhere[self.paths[message.job]] = message.item_id
            self.bar.update(1)
            return
        if isinstance(message, FailedMessage):
            if self.raise_errors:
                raise message.error
            self._fail(message.job, message.error.reason, str(message.error))
            return
        if isinstance(message, StoredMessage) or message.job in self.ended:
            return
        acc = self.accumulators.setdefault(
            message.job, ItemAccumulator(self.recipe.layers, self.rates, keep_frames=self.recipe.frames))
        if message.last:
            acc.windows_expected = message.index + 1
        for batch in self.batcher.add(message):
            self._run(batch)

    def _hashed(self, job: int, hashed: Hashed) -> bool:
        """A worker hashed a file the cache did not know: remember it. ``True`` when that ends the job
        (its content is stored already, or is another file's of this run)."""
        self.cache.remember(hashed.key, [hashed.size, hashed.mtime_ns, hashed.item_id])
        self.report.item_ids[self.paths[job]] = hashed.item_id
        if hashed.stored or hashed.item_id in self.plan.seen:
            self.ended.add(job)
            self.report.cached += 1
            self.bar.update(1)
            return True
        self.plan.seen.add(hashed.item_id)
        self.ids[job] = hashed.item_id
        return False

    def _fail(self, job: int, reason: str, message: str) -> None:
        if job in self.ended:
            return
        self.ended.add(job)
        self.accumulators.pop(job, None)
        self.report.item_ids.pop(self.paths[job], None)
        self.skip(self.paths[job], self.ids.get(job), reason, message)
        self._release(job)
        self.bar.update(1)

    def _release(self, job: int) -> None:
        if self.owner is not None and job in self.ids:
            self.items.release(self.ids[job], self.owner)

    # -- the model --------------------------------------------------------------------------------
    def _run(self, messages: list[WindowMessage]) -> None:
        """Encode one batch; pooled sums of accelerator runs are read back one batch later."""
        messages = [m for m in messages if m.job not in self.ended]
        if not messages:
            return
        started = time.perf_counter()
        try:
            outputs = self._forward(messages)
            sums = PendingSums(outputs.hidden, outputs.lengths, self.recipe.layers) if self.pool_on_device else None
        except Exception as exc:
            if self.raise_errors:
                raise
            for m in messages:
                self._fail(m.job, "encoder_error",
                           f"encoder {self.encoder.spec.name!r} failed on {self.paths[m.job]!r}: {exc}")
            return
        self.timings.model_s += time.perf_counter() - started
        # batch k+1 is queued on the device before batch k's sums are read, so the device never waits
        self._settle()
        if sums is None:
            self._accumulate(_Batch(messages, outputs=outputs))
        else:
            self.on_device.append(_Batch(messages, sums=sums))

    def _forward(self, messages: list[WindowMessage]):
        recipe, device = self.recipe, self.device
        lengths = torch.tensor([len(m.wave) for m in messages], dtype=torch.long)
        # the batch is assembled where the model runs: on a GPU the (pinned) windows are copied over
        # one by one and padded there, so the host does no large memset or copy per batch
        waves = torch.zeros(len(messages), int(lengths.max()), device=device)
        for j, m in enumerate(messages):
            waves[j, : lengths[j]].copy_(m.wave, non_blocking=True)
        try:
            with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                                         enabled=device.type == "cuda"):
                return self.encoder(waves, lengths.to(device), layers=recipe.layers)
        except torch.cuda.OutOfMemoryError:
            raise DeviceMemoryError(
                f"out of GPU memory at batch size {len(messages)} ({waves.shape[1] / recipe.sample_rate:.1f} s "
                f"windows); retry with --batch-size {max(1, len(messages) // 2)}") from None

    def _warm_up(self, *, rows: int) -> None:
        """One forward pass on silence of the batch shape while the workers start, so CUDA's lazy
        kernel loading and the allocator's first growth are not paid by the first real batch."""
        samples = round(self.recipe.window_s * self.recipe.sample_rate)
        waves = torch.zeros(max(1, rows), samples, device=self.device)
        try:
            with torch.inference_mode(), torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                self.encoder(waves, layers=self.recipe.layers)
            torch.cuda.synchronize()
        except Exception as exc:  # the real batch will report a real problem (e.g. out of memory) properly
            log.debug("warm-up of %s failed: %s", self.recipe.encoder, exc)
            torch.cuda.empty_cache()

    def _settle(self) -> None:
        while self.on_device:
            started = time.perf_counter()
            batch = self.on_device.pop(0)
            batch.sums.result()  # type: ignore[union-attr]
            self.timings.model_s += time.perf_counter() - started
            self._accumulate(batch)

    # -- items ------------------------------------------------------------------------------------
    def _accumulate(self, batch: _Batch) -> None:
        recipe = self.recipe
        sums, counts = batch.sums.result() if batch.sums is not None else (None, None)
        for j, m in enumerate(batch.messages):
            acc = self.accumulators.get(m.job)
            if acc is None:
                continue
            start_s = m.start / recipe.sample_rate
            for i, layer in enumerate(recipe.layers):
                if sums is not None:
                    acc.add_sum(layer, sums[i][j], int(counts[i, j]))
                    continue
                valid = int(batch.outputs.lengths[layer][j])  # type: ignore[attr-defined]
                acc.add(layer, batch.outputs.hidden[layer][j, :valid].float().cpu().numpy(),  # type: ignore[attr-defined]
                        start_s=start_s)
            acc.add_level(m.wave.numpy(), start=m.start, sample_rate=recipe.sample_rate)
            acc.duration_s = max(acc.duration_s, start_s + len(m.wave) / recipe.sample_rate)
            acc.windows_done += 1
            if acc.complete:
                self._finish_item(m.job)

    def _finish_item(self, job: int) -> None:
        acc = self.accumulators.pop(job)
        if self.hooks.before_write is not None:
            self.hooks.before_write()
        path = self.paths[job]
        try:
            arrays = acc.finish(name=path, dtype=self.recipe.dtype)
        except AudioError as exc:
            if self.raise_errors:
                raise
            self._fail(job, exc.reason, str(exc))
            return
        meta = {"path": path, "duration_s": acc.duration_s, "windows": acc.windows_done,
                "recipe_id": self.recipe.recipe_id, "frames": {str(k): v for k, v in acc.counts.items()},
                "level_dbfs": acc.level_dbfs()}
        self.writer.submit(job, self.ids[job], arrays, meta, acc.duration_s)
        self._collect(block=False)

    def _collect(self, *, block: bool) -> None:
        started = time.perf_counter()
        for job, duration_s, error in self.writer.finished(block=block):
            if error is not None:
                if self.raise_errors:
                    raise error
                self.report.item_ids.pop(self.paths[job], None)
                self.skip(self.paths[job], self.ids[job], "write_error",
                          f"features of {self.paths[job]!r} could not be written to {self.items.dir}: {error}. "
                          "Check free space and permissions, then rerun (stored items are kept).")
            else:
                self.report.computed += 1
                self.report.audio_s += duration_s
            self._release(job)
            self.bar.update(1)
        self.timings.write_s += time.perf_counter() - started
