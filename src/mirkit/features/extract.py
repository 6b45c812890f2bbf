"""``extract``: audio files -> layer-wise features in the store, resumable and fault-tolerant.

Decoding, mixing down, resampling and windowing run in DataLoader worker processes while the
main process batches windows through the encoder. Each finished item is written atomically;
items already in the store are not recomputed; a bad file is skipped with a recorded reason and
never stops the run (unless ``on_error="raise"``).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from mirkit.audio.io import is_audio_path
from mirkit.audio.resample import DEFAULT_QUALITY
from mirkit.audio.stream import iter_windows
from mirkit.encoders.base import Encoder, parse_layers
from mirkit.encoders.onnx_runtime import RUNTIMES, select_runtime
from mirkit.encoders.zoo import get_spec, load_encoder
from mirkit.errors import AudioError, ConfigError
from mirkit.features.pooling import ItemAccumulator, sum_valid_frames
from mirkit.features.recipe import FeatureRecipe
from mirkit.features.store import FeatureStore, RecipeStore

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
    #: where the wall time went: hash_s (content hashes), wait_input_s (main process waiting for
    #: decoded windows), model_s (encoder + pooling + copy to host), write_s (waiting for writes)
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


def _read_manifest(manifest: Path) -> list[str]:
    paths = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if manifest.suffix == ".jsonl":
            try:
                value = json.loads(line)["path"]
            except (ValueError, KeyError, TypeError):
                raise ConfigError(f"{manifest}:{number}: expected a JSON object with a 'path' field, got {line[:80]!r}.") from None
        else:
            value = line.strip()
        path = Path(value)
        paths.append(str(path if path.is_absolute() else manifest.parent / path))
    return paths


class _WindowStream(IterableDataset):
    """Yields window records (or one error record) for each job, sharded across workers."""

    def __init__(self, jobs: list[tuple[str, str]], recipe: FeatureRecipe) -> None:
        self.jobs = jobs
        self.recipe = recipe

    def __iter__(self) -> Iterator[dict[str, object]]:
        info = get_worker_info()
        jobs = self.jobs[info.id :: info.num_workers] if info else self.jobs
        recipe = self.recipe
        min_samples = max(1, round(recipe.min_duration_s * recipe.sample_rate))
        max_samples = round(recipe.max_window_s * recipe.sample_rate) if recipe.max_window_s else None
        for item_id, path in jobs:
            try:
                for window in iter_windows(path, sample_rate=recipe.sample_rate, window_s=recipe.window_s,
                                           hop_s=recipe.hop_s, min_samples=min_samples, max_samples=max_samples,
                                           channel_policy=recipe.channel_policy,
                                           resample_quality=recipe.resampler.removeprefix("soxr-")):
                    yield {"item": item_id, "path": path, "index": window.index, "start": window.start_sample,
                           "wave": torch.from_numpy(window.waveform), "last": window.is_last}
            except AudioError as exc:
                yield {"item": item_id, "path": path, "reason": exc.reason, "message": str(exc)}
            except Exception as exc:  # never let one file kill the run
                yield {"item": item_id, "path": path, "reason": "unexpected_error",
                       "message": f"{path!r}: {type(exc).__name__}: {exc}"}


class _Batcher:
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
    reason = encoder.use_onnx_runtime()
    if reason is not None:
        if config.runtime == "onnxruntime":
            raise ConfigError(f"ONNX Runtime cannot run encoder {encoder.spec.name!r}: {reason}. "
                              f"Use --runtime auto or torch.")
        log.debug("encoder %s runs in PyTorch: %s", encoder.spec.name, reason)
    return encoder.runtime


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
    jobs = _plan_jobs(paths, store, items, report, skip, config)
    report.timings["hash_s"] = time.perf_counter() - planned
    if jobs:
        threads = torch.get_num_threads()
        if not config.device.startswith("cpu"):
            # the host only feeds the GPU; many intra-op threads would fight the decoding workers
            torch.set_num_threads(min(threads, 2))
        try:
            _run_jobs(jobs, encoder, recipe, items, report, skip, config, progress=progress)
        finally:
            torch.set_num_threads(threads)
    report.wall_s = time.perf_counter() - started
    return report


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)


def default_workers(device: str) -> int:
    """Decoding processes: up to 4 on CPU (the model needs the cores), all but two when a GPU
    does the model's work (one decoding core keeps up with only a few hundred audio-s/s)."""
    cores = _cores()
    if device.startswith("cpu"):
        return min(4, max(1, cores - 1))
    return max(1, min(cores - 2, 32))


def _plan_jobs(paths: list[str], store: FeatureStore, items: RecipeStore, report: ExtractReport,
               skip, config: ExtractConfig) -> list[tuple[str, str]]:
    """Hash every file, drop those already stored and content duplicates; return ``(item_id, path)`` jobs."""
    cache = store.hash_cache()
    jobs: list[tuple[str, str]] = []
    seen: set[str] = set()
    hashes = cache.get_many(paths, workers=min(8, max(2, _cores())))
    for path, item_id in zip(paths, hashes):
        if isinstance(item_id, OSError):
            exc = item_id
            reason = "missing" if isinstance(exc, FileNotFoundError) else "unreadable"
            if config.on_error == "raise":
                raise exc
            skip(path, None, reason, f"{path!r} could not be read: {exc}. It may have been moved or deleted.")
            continue
        report.item_ids[path] = item_id
        if items.has(item_id):
            report.cached += 1
        elif item_id not in seen:
            seen.add(item_id)
            jobs.append((item_id, path))
        else:
            report.cached += 1  # same content as an earlier file in this run
    cache.save()
    return jobs


def _run_jobs(jobs: list[tuple[str, str]], encoder: Encoder, recipe: FeatureRecipe, items: RecipeStore,
              report: ExtractReport, skip, config: ExtractConfig, *, progress: bool) -> None:
    from tqdm.auto import tqdm

    spec = encoder.spec
    workers = config.num_workers if config.num_workers is not None else default_workers(config.device)
    loader = DataLoader(_WindowStream(jobs, recipe), batch_size=None, num_workers=workers,
                        prefetch_factor=8 if workers else None, pin_memory=config.device.startswith("cuda"))
    rates = {layer: spec.layers[layer].frame_rate_hz for layer in recipe.layers}
    accumulators: dict[str, ItemAccumulator] = {}
    failed: set[str] = set()
    paths = dict(jobs)
    batcher = _Batcher(config.batch_size, exact_length=recipe.batching == "exact-length")
    pool_on_device = (_POOL_ON_DEVICE or not config.device.startswith("cpu")) and not recipe.frames
    bar = tqdm(total=len(jobs), unit="file", desc=f"extract {spec.name}", disable=not progress or None)

    def fail(item_id: str, reason: str, message: str) -> None:
        if item_id in failed:
            return
        failed.add(item_id)
        accumulators.pop(item_id, None)
        report.item_ids.pop(paths[item_id], None)
        skip(paths[item_id], item_id, reason, message)
        bar.update(1)

    # items are written (temp file, fsync, rename) by threads, so the GPU does not wait on the disk
    writer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mirkit-write")
    writes: list[tuple[Future, str, float]] = []
    timings = report.timings
    for key in ("wait_input_s", "model_s", "write_s"):
        timings.setdefault(key, 0.0)

    def collect(*, block: bool) -> None:
        started = time.perf_counter()
        keep = []
        for future, item_id, duration_s in writes:
            if not (block or future.done()):
                keep.append((future, item_id, duration_s))
                continue
            try:
                future.result()
            except OSError as exc:
                if config.on_error == "raise":
                    raise
                report.item_ids.pop(paths[item_id], None)
                skip(paths[item_id], item_id, "write_error",
                     f"features of {paths[item_id]!r} could not be written to {items.dir}: {exc}. Check free space "
                     "and permissions, then rerun (stored items are kept).")
                bar.update(1)
                continue
            report.computed += 1
            report.audio_s += duration_s
            bar.update(1)
        writes[:] = keep
        timings["write_s"] += time.perf_counter() - started

    def finish(item_id: str) -> None:
        acc = accumulators.pop(item_id)
        if _TEST_DELAY_S:
            time.sleep(_TEST_DELAY_S)  # lets the kill -9 test land mid-run
        try:
            arrays = acc.finish(name=paths[item_id], dtype=recipe.dtype)
        except AudioError as exc:
            if config.on_error == "raise":
                raise
            fail(item_id, exc.reason, str(exc))
            return
        meta = {"path": paths[item_id], "duration_s": acc.duration_s, "windows": acc.windows_done,
                "recipe_id": recipe.recipe_id, "frames": {str(k): v for k, v in acc.counts.items()}}
        writes.append((writer.submit(items.write, item_id, arrays, meta), item_id, acc.duration_s))
        if len(writes) > 64:  # bounded memory when the disk is slower than the model
            wait([writes[0][0]])
        collect(block=False)

    def run(batch: list[dict[str, object]]) -> None:
        batch = [r for r in batch if r["item"] not in failed]
        if not batch:
            return
        started = time.perf_counter()
        try:
            outputs = _forward(encoder, batch, recipe, config)
        except Exception as exc:
            if config.on_error == "raise":
                raise
            for record in batch:
                fail(str(record["item"]), "encoder_error", f"encoder {spec.name!r} failed on {record['path']!r}: {exc}")
            return
        sums = counts = None
        if pool_on_device:  # one small transfer per batch instead of every frame of every layer
            sums, counts = sum_valid_frames(outputs.hidden, outputs.lengths, recipe.layers)
        timings["model_s"] += time.perf_counter() - started
        for j, record in enumerate(batch):
            item_id = str(record["item"])
            acc = accumulators.get(item_id)
            if acc is None:
                continue
            start_s = int(record["start"]) / recipe.sample_rate  # type: ignore[arg-type]
            for i, layer in enumerate(recipe.layers):
                if sums is not None:
                    acc.add_sum(layer, sums[i][j], int(counts[i, j]))
                    continue
                valid = int(outputs.lengths[layer][j])
                acc.add(layer, outputs.hidden[layer][j, :valid].float().cpu().numpy(), start_s=start_s)
            acc.duration_s = max(acc.duration_s, start_s + len(record["wave"]) / recipe.sample_rate)  # type: ignore[arg-type]
            acc.windows_done += 1
            if acc.complete:
                finish(item_id)

    try:
        records = iter(loader)
        while True:
            waited = time.perf_counter()
            record = next(records, None)
            timings["wait_input_s"] += time.perf_counter() - waited
            if record is None:
                break
            item_id = str(record["item"])
            if "reason" in record:
                if config.on_error == "raise":
                    raise _reraise(record)
                fail(item_id, str(record["reason"]), str(record["message"]))
                continue
            if item_id in failed:
                continue
            acc = accumulators.setdefault(item_id, ItemAccumulator(recipe.layers, rates, keep_frames=recipe.frames))
            if record["last"]:
                acc.windows_expected = int(record["index"]) + 1  # type: ignore[arg-type]
            for batch in batcher.add(record):
                run(batch)
        for batch in batcher.flush():
            run(batch)
        collect(block=True)
    finally:
        writer.shutdown(wait=True)  # never leave a write half done, even on an error
        bar.close()


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
