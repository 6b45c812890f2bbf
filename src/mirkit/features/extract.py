"""``extract``: audio files -> layer-wise features in the store, resumable and fault-tolerant.

Decoding, mixing down, resampling and windowing run in DataLoader worker processes while the
main process batches windows through the encoder. Each finished item is written atomically;
items already in the store are not recomputed; a bad file is skipped with a recorded reason and
never stops the run (unless ``on_error="raise"``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from mirkit.audio.loudness import POLICIES
from mirkit.audio.resample import DEFAULT_QUALITY
from mirkit.encoders.base import Encoder, parse_layers
from mirkit.encoders.onnx_runtime import select_runtime
from mirkit.encoders.spec import RUNTIMES
from mirkit.encoders.zoo import get_spec, load_encoder
from mirkit.errors import ConfigError
from mirkit.features.extract_run import DeviceMemoryError, ExtractHooks, ExtractionRun
from mirkit.features.inputs import scan_inputs
from mirkit.features.loader import Plan, plan_jobs, read_failure
from mirkit.features.recipe import FeatureRecipe
from mirkit.features.store import ClaimOwner, FeatureStore, HashCache, RecipeStore

log = logging.getLogger(__name__)


#: Default windows per forward pass. On a 2-core CPU 8 windows of 30 s ran mirkit-mel-small 12 % slower
#: than 2 or 4 (its activations fall out of cache; musicnn: 4 best by 3 %); GPUs want full batches.
CPU_BATCH = 4
GPU_BATCH = 8


@dataclass
class ExtractConfig:
    """Options of :func:`extract` (shared by the CLI and the Python API)."""

    encoder: str
    layers: str | Sequence[int] = "all"
    pooling: str = "mean"
    weights_dir: str | None = None
    device: str = "cpu"
    batch_size: int | None = None  # windows per forward pass; None: CPU_BATCH on the CPU, GPU_BATCH on a GPU
    num_workers: int | None = None
    window_s: float | None = None
    hop_s: float | None = None
    frame_rate_hz: float | None = None  # encoders with a free frame hop only (CREPE); None: the spec's rate
    channel_policy: str = "mean"
    dtype: str = "float32"
    on_error: str = "skip"
    runtime: str = "auto"  # auto: ONNX Runtime on the CPU where the encoder has it (musicnn), else PyTorch
    loudness: str = "none"  # none | peak | lufs: one gain per file before the encoder (mirkit.audio.loudness)

    @property
    def rows(self) -> int:
        """The batch size in use: ``batch_size``, or the device's default."""
        if self.batch_size is not None:
            return self.batch_size
        return CPU_BATCH if self.device.startswith("cpu") else GPU_BATCH

    def validate(self) -> None:
        if self.loudness not in POLICIES:
            raise ConfigError(f"loudness={self.loudness!r} must be one of {', '.join(POLICIES)} (--loudness).")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime={self.runtime!r} must be one of {RUNTIMES} (auto: ONNX Runtime on the CPU "
                              f"where the encoder supports it).")
        if self.runtime == "onnxruntime" and self.device != "cpu":
            raise ConfigError(f"runtime='onnxruntime' runs on the CPU only, not device={self.device!r}; "
                              f"use --runtime auto or torch.")
        if self.batch_size is not None and self.batch_size < 1:
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
    by_other_runs: int = 0  # of ``cached``: items that a concurrent run computed while this one waited
    #: where the main process's wall time went: hash_s (planning: stat + hash-cache lookups; files
    #: not in the cache are hashed by the workers), warmup_s (GPU only: one forward pass while the
    #: workers start), wait_input_s (waiting for decoded windows), model_s (encoder + pooling +
    #: copy to host), write_s (waiting for writes), wait_claims_s (waiting for items that concurrent runs
    #: were computing), other_s (the rest: scanning, batching, start-up)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        speed = f", {self.audio_s / self.wall_s:.1f}x real time" if self.wall_s > 0 and self.audio_s > 0 else ""
        other = f", {self.by_other_runs:,} of them by a concurrent run" if self.by_other_runs else ""
        line = (f"Extracted {self.computed + self.cached:,}/{self.total:,} files (computed {self.computed:,}, "
                f"already stored {self.cached:,}{other}) in {self.wall_s:.1f} s{speed}.")
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
        loudness=None if config.loudness == "none" else config.loudness,
    )


def extract(
    source: str | Path | Sequence[str | Path],
    *,
    store: str | Path | FeatureStore,
    config: ExtractConfig,
    encoder: Encoder | None = None,
    progress: bool = True,
    hooks: ExtractHooks | None = None,
) -> ExtractReport:
    """Extract features for every audio file in ``source`` into ``store``.

    Args:
        source: a folder (scanned recursively), a manifest, one file, or a list of files.
        store: feature store folder (or an open :class:`FeatureStore`).
        config: extraction options.
        encoder: an already built encoder (else built from ``config``).
        progress: show a progress bar on a terminal.
        hooks: test seams (see :class:`ExtractHooks`); ``None`` in normal use.

    Returns:
        An :class:`ExtractReport`; its ``summary()`` is the line the CLI prints.

    Raises:
        AudioError: the first bad file, only when ``config.on_error == "raise"``.
        DeviceMemoryError: the accelerator ran out of memory, only when ``config.on_error == "raise"``
            (else the batch's items are skipped as ``encoder_error`` with the same advice).
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
    skip = _Skips(report, items, run_id=uuid.uuid4().hex[:12])
    owner = ClaimOwner.current(skip.run_id)
    plan, cache = _plan(paths, not_audio, store, items, report, skip, raise_errors=config.on_error == "raise")
    while plan.jobs:
        threads = torch.get_num_threads()
        if not config.device.startswith("cpu"):
            # the host only feeds the GPU; many intra-op threads would fight the decoding workers
            torch.set_num_threads(min(threads, 2))
        try:
            run = ExtractionRun(plan, encoder, recipe, items, cache, report, skip, config, hooks=hooks,
                                progress=progress, owner=owner)
            for key, value in asdict(run.execute()).items():
                report.timings[key] = report.timings.get(key, 0.0) + value
        finally:
            torch.set_num_threads(threads)
            cache.save()  # the hashes the workers computed (planning only reads the cache)
        retry = _await_other_runs(run.elsewhere, items, report)
        if not retry:
            break
        plan = plan_jobs(retry, items, cache)  # items whose other run died or failed: this run computes them
        report.item_ids.update(plan.stored)
        report.item_ids.update((job.path, job.item_id) for job in plan.jobs if job.item_id is not None)
        report.cached += len(plan.stored)
    report.wall_s = time.perf_counter() - started
    report.timings["other_s"] = max(0.0, report.wall_s - sum(v for k, v in report.timings.items() if k != "other_s"))
    return report


def _await_other_runs(elsewhere: dict[str, str], items: RecipeStore, report: ExtractReport, *,
                      poll_s: float = 0.5) -> list[str]:
    """Wait for the items that other live runs claimed: each one stored counts as already stored
    (``report.by_other_runs``); the paths whose claim went away without an item (its run died or failed
    on it) are returned for this run to compute."""
    waited = time.perf_counter()
    pending, retry = dict(elsewhere), []
    while pending:
        for path, item_id in list(pending.items()):
            if items.has(item_id):
                report.item_ids[path] = item_id
                report.cached += 1
                report.by_other_runs += 1
                del pending[path]
            elif items.claim_holder(item_id) is None:
                retry.append(path)
                del pending[path]
        if pending:
            time.sleep(poll_s)
    report.timings["wait_claims_s"] = report.timings.get("wait_claims_s", 0.0) + time.perf_counter() - waited
    return retry


class _Skips:
    """Records skipped items: counted in the report, one line each in the recipe's ``errors.jsonl``."""

    def __init__(self, report: ExtractReport, items: RecipeStore, *, run_id: str) -> None:
        self.report, self.items, self.run_id = report, items, run_id

    def __call__(self, path: str, item_id: str | None, reason: str, message: str) -> None:
        self.report.skipped[reason] += 1
        self.items.record_error({"run": self.run_id, "item": item_id, "path": path, "reason": reason,
                                 "message": message})
        log.info("skipped %s: %s", path, message)


def _plan(paths: list[str], not_audio: list[tuple[str, str, str]], store: FeatureStore, items: RecipeStore,
          report: ExtractReport, skip: _Skips, *, raise_errors: bool) -> tuple[Plan, HashCache]:
    """Skip what is not audio or cannot be read, and find what is stored already (``report.timings["hash_s"]``:
    stat and hash-cache lookups only; files the cache does not know are hashed by the workers)."""
    for path, reason, message in not_audio:
        skip(path, None, reason, message)
    planned = time.perf_counter()
    cache = store.hash_cache()
    plan = plan_jobs(paths, items, cache)
    for path, exc in plan.unreadable:
        error = read_failure(path, exc)
        if raise_errors:
            raise error
        skip(path, None, error.reason, str(error))
    report.item_ids.update(plan.stored)
    report.item_ids.update((job.path, job.item_id) for job in plan.jobs if job.item_id is not None)
    report.cached += len(plan.stored)
    report.timings["hash_s"] = time.perf_counter() - planned
    return plan, cache


__all__ = ["DeviceMemoryError", "ExtractConfig", "ExtractHooks", "ExtractReport", "extract", "make_recipe"]
