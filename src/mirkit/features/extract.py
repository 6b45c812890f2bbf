"""``extract``: audio files -> layer-wise features in the store, resumable and fault-tolerant.

Decoding, mixing down, resampling and windowing run in DataLoader worker processes while the
main process batches windows through the encoder. Each finished item is written atomically;
items already in the store are not recomputed; a bad file is skipped with a recorded reason and
never stops the run (unless ``on_error="raise"``).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mirkit.audio.resample import DEFAULT_QUALITY
from mirkit.encoders.base import Encoder, parse_layers
from mirkit.encoders.onnx_runtime import RUNTIMES, select_runtime
from mirkit.encoders.zoo import get_spec, load_encoder
from mirkit.errors import AudioError, ConfigError
from mirkit.features.inputs import scan_inputs
from mirkit.features.loader import Batcher, Plan, WindowStream, default_workers, plan_jobs, read_error
from mirkit.features.pooling import ItemAccumulator, PendingSums
from mirkit.features.recipe import FeatureRecipe
from mirkit.features.store import FeatureStore, HashCache, RecipeStore

log = logging.getLogger(__name__)
_TEST_DELAY_S = float(os.environ.get("MIRKIT_TEST_DELAY_S", "0") or 0)
_POOL_ON_DEVICE = False  # tests set this to run the accelerator's pooling path on the CPU


@dataclass
class ExtractConfig:
    """Options of :func:`extract` (shared by the CLI and the Python API)."""

    encoder: str
    layers: str | Sequence[int] = "all"
    pooling: str = "mean"
    weights_dir: str | None = None
    device: str = "cpu"
    batch_size: int = 8
    num_workers: int | None = None
    window_s: float | None = None
    hop_s: float | None = None
    frame_rate_hz: float | None = None  # encoders with a free frame hop only (CREPE); None: the spec's rate
    channel_policy: str = "mean"
    dtype: str = "float32"
    on_error: str = "skip"
    runtime: str = "auto"  # auto: ONNX Runtime on the CPU where the encoder has it (musicnn), else PyTorch

    def validate(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime={self.runtime!r} must be one of {RUNTIMES} (auto: ONNX Runtime on the CPU "
                              f"where the encoder supports it).")
        if self.runtime == "onnxruntime" and self.device != "cpu":
            raise ConfigError(f"runtime='onnxruntime' runs on the CPU only, not device={self.device!r}; "
                              f"use --runtime auto or torch.")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} must be a positive integer (e.g. 8).")
        if self.on_error not in ("skip", "raise"):
            raise ConfigError(f"on_error={self.on_error!r} must be 'skip' or 'raise'.")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device={self.device!r} must be 'cpu' or 'cuda'.")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device={self.device!r} was requested but CUDA is not available here; use --device cpu.")


@dataclass
class ExtractReport:
    """What one extract run did."""

    recipe_id: str
    store_dir: str
    recipe: FeatureRecipe | None = None  # the recipe the features were stored under
    total: int = 0
    computed: int = 0
    cached: int = 0
    skipped: Counter = field(default_factory=Counter)
    audio_s: float = 0.0
    wall_s: float = 0.0
    errors_path: str = ""
    item_ids: dict[str, str] = field(default_factory=dict)  # path -> item id, for items now in the store
    #: where the main process's wall time went: hash_s (planning: stat + hash-cache lookups; files
    #: not in the cache are hashed by the workers), warmup_s (GPU only: one forward pass while the
    #: workers start), wait_input_s (waiting for decoded windows), model_s (encoder + pooling +
    #: copy to host), write_s (waiting for writes), other_s (the rest: scanning, batching, start-up)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        speed = f", {self.audio_s / self.wall_s:.1f}x real time" if self.wall_s > 0 and self.audio_s > 0 else ""
        line = (f"Extracted {self.computed + self.cached:,}/{self.total:,} files (computed {self.computed:,}, "
                f"already stored {self.cached:,}) in {self.wall_s:.1f} s{speed}.")
        if self.skipped:
            reasons = ", ".join(f"{reason} {count}" for reason, count in self.skipped.most_common())
            line += f" Skipped {self.num_skipped:,}: {reasons}. Details: {self.errors_path}"
        return line + f" Features: {self.store_dir}"


def make_recipe(config: ExtractConfig, encoder: Encoder) -> FeatureRecipe:
    """The recipe of ``config`` with ``encoder`` (its weights revision and the runtime it uses now)."""
    spec = encoder.spec
    window_s = config.window_s or spec.default_window_s
    if spec.max_window_s is not None and window_s > spec.max_window_s + 1e-9:
        raise ConfigError(f"window_s={window_s} is longer than encoder {spec.name!r} accepts "
                          f"({spec.max_window_s} s); pass --window-s {spec.max_window_s} or less.")
    hop_s = config.hop_s or window_s
    # the last window may absorb a tail shorter than the minimum, up to the encoder's limit
    max_window_s = spec.max_window_s if spec.max_window_s is not None else window_s + spec.min_duration_s
    return FeatureRecipe(
        encoder=spec.name, weights_revision=encoder.weights_revision, sample_rate=spec.sample_rate,
        window_s=float(window_s), hop_s=float(hop_s), min_duration_s=spec.min_duration_s,
        max_window_s=float(max_window_s),
        batching="pad-zero" if spec.padding_invariant else "exact-length",
        layers=parse_layers(config.layers, spec=spec), pooling=config.pooling,
        channel_policy=config.channel_policy, resampler=f"soxr-{DEFAULT_QUALITY}", dtype=config.dtype,
        frame_rate_hz=spec.frame_rate_hz if spec.frame_rate_hz != get_spec(spec.name).frame_rate_hz else None,
        runtime=None if encoder.runtime == "torch" else encoder.runtime,
    )


def extract(
    source: str | Path | Sequence[str | Path],
    *,
    store: str | Path | FeatureStore,
    config: ExtractConfig,
    encoder: Encoder | None = None,
    progress: bool = True,
) -> ExtractReport:
    """Extract features for every audio file in ``source`` into ``store``.

    Args:
        source: a folder (scanned recursively), a manifest, one file, or a list of files.
        store: feature store folder (or an open :class:`FeatureStore`).
        config: extraction options.
        encoder: an already built encoder (else built from ``config``).
        progress: show a progress bar on a terminal.

    Returns:
        An :class:`ExtractReport`; its ``summary()`` is the line the CLI prints.

    Raises:
        AudioError: the first bad file, only when ``config.on_error == "raise"``.
    """
    config.validate()
    started = time.perf_counter()
    store = store if isinstance(store, FeatureStore) else FeatureStore(store)
    get_spec(config.encoder)  # unknown names fail before any work
    if isinstance(source, (str, Path)):
        paths, not_audio = scan_inputs(source)
    else:
        paths, not_audio = [str(p) for p in source], []
    if encoder is None:
        encoder = load_encoder(config.encoder, weights_dir=config.weights_dir, device=config.device,
                               frame_rate_hz=config.frame_rate_hz)
    if config.device == "cpu":  # ONNX Runtime is a CPU path (validate() refuses it elsewhere)
        select_runtime(encoder, config.runtime, what=f"run encoder {encoder.spec.name!r}")
    recipe = make_recipe(config, encoder)
    items = store.recipe(recipe)
    report = ExtractReport(recipe_id=recipe.recipe_id, recipe=recipe, store_dir=str(items.dir), errors_path=str(items.errors_path),
                           total=len(paths) + len(not_audio))
    run_id = uuid.uuid4().hex[:12]

    def skip(path: str, item_id: str | None, reason: str, message: str) -> None:
        report.skipped[reason] += 1
        items.record_error({"run": run_id, "item": item_id, "path": path, "reason": reason, "message": message})
        log.info("skipped %s: %s", path, message)

    for path, reason, message in not_audio:
        skip(path, None, reason, message)
    planned = time.perf_counter()
    cache = store.hash_cache()
    plan = plan_jobs(paths, items, cache)
    for path, exc in plan.unreadable:
        if config.on_error == "raise":
            raise exc
        skip(path, None, *read_error(path, exc))
    report.item_ids.update(plan.stored)
    report.item_ids.update((job.path, job.item_id) for job in plan.jobs if job.item_id is not None)
    report.cached += len(plan.stored)
    report.timings["hash_s"] = time.perf_counter() - planned  # planning; new files are hashed by the workers
    if plan.jobs:
        threads = torch.get_num_threads()
        if not config.device.startswith("cpu"):
            # the host only feeds the GPU; many intra-op threads would fight the decoding workers
            torch.set_num_threads(min(threads, 2))
        try:
            _run_jobs(plan, encoder, recipe, items, cache, report, skip, config, progress=progress)
        finally:
            torch.set_num_threads(threads)
            cache.save()  # the hashes the workers computed (planning only reads the cache)
    report.wall_s = time.perf_counter() - started
    report.timings["other_s"] = max(0.0, report.wall_s - sum(v for k, v in report.timings.items() if k != "other_s"))
    return report


def _run_jobs(plan: Plan, encoder: Encoder, recipe: FeatureRecipe, items: RecipeStore, cache: HashCache,
              report: ExtractReport, skip, config: ExtractConfig, *, progress: bool) -> None:
    from tqdm.auto import tqdm

    spec = encoder.spec
    jobs = plan.jobs
    workers = config.num_workers if config.num_workers is not None else default_workers(config.device)
    loader = DataLoader(WindowStream(jobs, recipe, items), batch_size=None, num_workers=workers,
                        prefetch_factor=8 if workers else None, pin_memory=config.device.startswith("cuda"))
    rates = {layer: spec.layers[layer].frame_rate_hz for layer in recipe.layers}
    ids = {job.index: job.item_id for job in jobs if job.item_id is not None}  # job -> item id, once known
    paths = {job.index: job.path for job in jobs}
    accumulators: dict[int, ItemAccumulator] = {}
    ended: set[int] = set()  # jobs that failed, or turned out stored or duplicate: their windows are dropped
    batcher = Batcher(config.batch_size, exact_length=recipe.batching == "exact-length")
    pool_on_device = (_POOL_ON_DEVICE or not config.device.startswith("cpu")) and not recipe.frames
    bar = tqdm(total=len(jobs), unit="file", desc=f"extract {spec.name}", disable=not progress or None)

    def fail(job: int, reason: str, message: str) -> None:
        if job in ended:
            return
        ended.add(job)
        accumulators.pop(job, None)
        report.item_ids.pop(paths[job], None)
        skip(paths[job], ids.get(job), reason, message)
        bar.update(1)

    def hashed(record: dict[str, object]) -> None:
        """A worker hashed a file the cache did not know: remember it; end the job if its content
        is already stored or is another file's of this run."""
        job = int(record["job"])  # type: ignore[call-overload]
        key, size, mtime_ns, item_id = record["hashed"]  # type: ignore[misc]
        cache.remember(key, [size, mtime_ns, item_id])
        report.item_ids[paths[job]] = item_id
        if record["stored"] or item_id in plan.seen:  # stored, or the same content as another file of this run
            ended.add(job)
            report.cached += 1
            bar.update(1)
            return
        plan.seen.add(item_id)
        ids[job] = item_id

    # items are written (temp file, fsync, rename) by threads, so the GPU does not wait on the disk
    writer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mirkit-write")
    writes: list[tuple[Future, int, float]] = []
    timings = report.timings
    for key in ("warmup_s", "wait_input_s", "model_s", "write_s"):
        timings.setdefault(key, 0.0)

    def collect(*, block: bool) -> None:
        started = time.perf_counter()
        keep = []
        for future, job, duration_s in writes:
            if not (block or future.done()):
                keep.append((future, job, duration_s))
                continue
            try:
                future.result()
            except OSError as exc:
                if config.on_error == "raise":
                    raise
                report.item_ids.pop(paths[job], None)
                skip(paths[job], ids[job], "write_error",
                     f"features of {paths[job]!r} could not be written to {items.dir}: {exc}. Check free space "
                     "and permissions, then rerun (stored items are kept).")
                bar.update(1)
                continue
            report.computed += 1
            report.audio_s += duration_s
            bar.update(1)
        writes[:] = keep
        timings["write_s"] += time.perf_counter() - started

    def finish(job: int) -> None:
        acc = accumulators.pop(job)
        if _TEST_DELAY_S:
            time.sleep(_TEST_DELAY_S)  # lets the kill -9 test land mid-run
        try:
            arrays = acc.finish(name=paths[job], dtype=recipe.dtype)
        except AudioError as exc:
            if config.on_error == "raise":
                raise
            fail(job, exc.reason, str(exc))
            return
        meta = {"path": paths[job], "duration_s": acc.duration_s, "windows": acc.windows_done,
                "recipe_id": recipe.recipe_id, "frames": {str(k): v for k, v in acc.counts.items()}}
        writes.append((writer.submit(items.write, ids[job], arrays, meta), job, acc.duration_s))
        if len(writes) > 64:  # bounded memory when the disk is slower than the model
            wait([writes[0][0]])
        collect(block=False)

    def accumulate(batch: list[dict[str, object]], outputs=None, sums=None) -> None:
        if sums is not None:
            sums, counts = sums.result()
        for j, record in enumerate(batch):
            job = int(record["job"])  # type: ignore[call-overload]
            acc = accumulators.get(job)
            if acc is None:
                continue
            start_s = int(record["start"]) / recipe.sample_rate  # type: ignore[call-overload]
            for i, layer in enumerate(recipe.layers):
                if sums is not None:
                    acc.add_sum(layer, sums[i][j], int(counts[i, j]))
                    continue
                valid = int(outputs.lengths[layer][j])
                acc.add(layer, outputs.hidden[layer][j, :valid].float().cpu().numpy(), start_s=start_s)
            acc.duration_s = max(acc.duration_s, start_s + len(record["wave"]) / recipe.sample_rate)  # type: ignore[arg-type]
            acc.windows_done += 1
            if acc.complete:
                finish(job)

    # pooled recipes on an accelerator run one batch ahead: batch k+1 is queued on the device
    # before batch k's sums are read back, so the device does not wait while the host works
    pending: list[tuple[list[dict[str, object]], PendingSums]] = []

    def settle() -> None:
        while pending:
            started = time.perf_counter()
            batch, sums = pending.pop(0)
            sums.result()
            timings["model_s"] += time.perf_counter() - started
            accumulate(batch, sums=sums)

    def run(batch: list[dict[str, object]]) -> None:
        batch = [r for r in batch if int(r["job"]) not in ended]  # type: ignore[call-overload]
        if not batch:
            return
        started = time.perf_counter()
        try:
            outputs = _forward(encoder, batch, recipe, config)
            sums = PendingSums(outputs.hidden, outputs.lengths, recipe.layers) if pool_on_device else None
        except Exception as exc:
            if config.on_error == "raise":
                raise
            for record in batch:
                job = int(record["job"])  # type: ignore[call-overload]
                fail(job, "encoder_error", f"encoder {spec.name!r} failed on {paths[job]!r}: {exc}")
            return
        timings["model_s"] += time.perf_counter() - started
        settle()
        if sums is None:
            accumulate(batch, outputs=outputs)
        else:
            pending.append((batch, sums))

    try:
        records = iter(loader)  # starts the workers; the device warms up while they decode
        if config.device.startswith("cuda"):
            started = time.perf_counter()
            _warm_up(encoder, recipe, config, rows=min(config.batch_size, len(jobs)))
            timings["warmup_s"] += time.perf_counter() - started
        while True:
            waited = time.perf_counter()
            record = next(records, None)
            timings["wait_input_s"] += time.perf_counter() - waited
            if record is None:
                break
            job = int(record["job"])  # type: ignore[call-overload]
            if "hashed" in record:
                hashed(record)
            if "reason" in record:
                if config.on_error == "raise":
                    raise _reraise(record)
                fail(job, str(record["reason"]), str(record["message"]))
                continue
            if job in ended or "wave" not in record:
                continue
            acc = accumulators.setdefault(job, ItemAccumulator(recipe.layers, rates, keep_frames=recipe.frames))
            if record["last"]:
                acc.windows_expected = int(record["index"]) + 1  # type: ignore[call-overload]
            for batch in batcher.add(record):
                run(batch)
        for batch in batcher.flush():
            run(batch)
        settle()
        collect(block=True)
    finally:
        writer.shutdown(wait=True)  # never leave a write half done, even on an error
        bar.close()


def _warm_up(encoder: Encoder, recipe: FeatureRecipe, config: ExtractConfig, *, rows: int) -> None:
    """One forward pass on silence of the batch shape while the workers start, so CUDA's lazy
    kernel loading and the allocator's first growth are not paid by the first real batch."""
    samples = round(recipe.window_s * recipe.sample_rate)
    waves = torch.zeros(max(1, rows), samples, device=config.device)
    try:
        with torch.inference_mode(), torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            encoder(waves, layers=recipe.layers)
        torch.cuda.synchronize()
    except Exception as exc:  # the real batch will report a real problem (e.g. out of memory) properly
        log.debug("warm-up of %s failed: %s", recipe.encoder, exc)
        torch.cuda.empty_cache()


def _reraise(record: dict[str, object]) -> AudioError:
    from mirkit.errors import AudioDecodeError, AudioTooShortError, InvalidAudioError

    reason, message = str(record["reason"]), str(record["message"])
    if reason in ("decode_error", "missing", "empty_file"):
        return AudioDecodeError(message)
    if reason == "too_short":
        return AudioTooShortError(message)
    return InvalidAudioError(message, reason=reason)


def _forward(encoder: Encoder, batch: list[dict[str, object]], recipe: FeatureRecipe, config: ExtractConfig):
    lengths = torch.tensor([len(r["wave"]) for r in batch], dtype=torch.long)  # type: ignore[arg-type]
    device = torch.device(config.device)
    # the batch is assembled where the model runs: on a GPU the (pinned) windows are copied over
    # one by one and padded there, so the host does no large memset or copy per batch
    waves = torch.zeros(len(batch), int(lengths.max()), device=device)
    for j, record in enumerate(batch):
        waves[j, : lengths[j]].copy_(record["wave"], non_blocking=True)  # type: ignore[index]
    try:
        with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                                     enabled=device.type == "cuda"):
            return encoder(waves, lengths.to(device), layers=recipe.layers)
    except torch.cuda.OutOfMemoryError as exc:
        raise RuntimeError(f"out of GPU memory at batch size {len(batch)} ({waves.shape[1] / recipe.sample_rate:.1f} s "
                           f"windows); retry with --batch-size {max(1, len(batch) // 2)}") from exc
