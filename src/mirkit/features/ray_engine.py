"""``mirkit extract --engine ray``: the same extraction on a Ray cluster (optional extra ``mirkit[ray]``).

Ray Data spreads the file list over a pool of actors. Each actor builds the encoder once (on a GPU
when ``gpus_per_actor`` > 0) and runs mirkit's own :func:`~mirkit.features.extract.extract` on its
batches of files with in-process decoding, so items land in the same store layout, under the same
recipe id and content hash, written atomically and claimed as the local engine claims them: the
local and the Ray engine read and extend one store interchangeably, stored items are skipped,
concurrent runs split the work, and bad files are recorded in the recipe's ``errors.jsonl``. The
driver merges the actors' reports into one :class:`~mirkit.features.extract.ExtractReport` (same
summary line and exit codes). The store must be a path every Ray worker sees (a shared file system
on a cluster); each actor checks that before any work.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from mirkit.encoders.onnx_runtime import select_runtime
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, ExtractReport, extract, make_recipe
from mirkit.features.inputs import scan_inputs
from mirkit.features.recipe import FeatureRecipe
from mirkit.features.store import FeatureStore


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("the Ray engine needs Ray: pip install 'mirkit[ray]' (ray[data]), or use --engine local."
                          ) from None
    return ray


class _ExtractActor:
    """One encoder per actor; ``__call__`` extracts a batch of files with mirkit's local engine."""

    def __init__(self, store: str, config: ExtractConfig) -> None:
        from mirkit.files import private_numba_cache

        private_numba_cache()  # actors side by side must not write librosa's numba cache at once
        from mirkit.encoders import load_encoder

        if not Path(store).is_dir():
            raise ConfigError(f"feature store {store} is not visible on Ray node {os.uname().nodename}; put the store "
                              "on a file system every worker mounts at the same path.")
        self.store, self.config = store, config
        self.encoder = load_encoder(config.encoder, weights_dir=config.weights_dir, device=config.device,
                                    frame_rate_hz=config.frame_rate_hz)

    def __call__(self, batch: dict) -> dict:
        report = extract([str(p) for p in batch["path"]], store=self.store, config=self.config, encoder=self.encoder,
                         progress=False)
        return {"computed": [report.computed], "cached": [report.cached], "by_other_runs": [report.by_other_runs],
                "audio_s": [report.audio_s], "skipped": [json.dumps(dict(report.skipped))],
                "item_ids": [json.dumps(report.item_ids)], "recipe_id": [report.recipe_id],
                "model_s": [report.timings.get("model_s", 0.0)]}


def extract_ray(source: str | Path, *, store: str | Path, config: ExtractConfig, address: str | None = None,
                actors: int | None = None, gpus_per_actor: float = 0.0, batch_files: int = 16,
                progress: bool = True) -> ExtractReport:
    """Extract ``source`` into ``store`` on Ray (``address``: a running cluster, e.g. ``ray://host:10001`` or
    ``auto``; ``None`` starts a local instance). ``actors`` defaults to the cluster's CPUs (or GPUs /
    ``gpus_per_actor``). Returns the merged report."""
    config.validate()
    if actors is not None and actors < 1:
        raise ConfigError(f"--actors {actors} must be at least 1.")
    if gpus_per_actor < 0:
        raise ConfigError(f"--gpus-per-actor {gpus_per_actor} must be 0 (CPU actors) or more.")
    if config.on_error == "raise":
        raise ConfigError("--on-error raise is a local-engine option; the Ray engine skips bad files and records them.")
    ray = _ray()
    started = time.perf_counter()
    store = Path(store).resolve()
    store.mkdir(parents=True, exist_ok=True)
    paths, not_audio = scan_inputs(source)
    paths = [str(Path(p).resolve()) for p in paths]
    items = FeatureStore(store).recipe(actor_recipe(config, gpus_per_actor=gpus_per_actor))
    _connect(ray, address)
    resources = ray.cluster_resources()
    if gpus_per_actor > 0:
        gpus = float(resources.get("GPU", 0))
        if gpus < gpus_per_actor:
            raise ConfigError(f"--gpus-per-actor {gpus_per_actor}: the Ray cluster has {gpus:g} GPUs; use "
                              "--gpus-per-actor 0 for CPU actors, or a cluster with GPUs.")
        pool = actors or max(1, int(gpus // gpus_per_actor))
        actor_config = replace(config, device="cuda", num_workers=0)
    else:
        pool = actors or max(1, int(resources.get("CPU", 1)))
        actor_config = replace(config, device="cpu", num_workers=0)
    report = ExtractReport(recipe_id=items.recipe.recipe_id, recipe=items.recipe, store_dir=str(items.dir),
                           errors_path=str(items.errors_path), total=len(paths) + len(not_audio))
    for path, reason, message in not_audio:
        report.skipped[reason] += 1
        items.record_error({"run": "ray", "item": None, "path": path, "reason": reason, "message": message})
    if paths:
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        dataset = ray.data.from_items([{"path": p} for p in paths],
                                      override_num_blocks=max(1, min(len(paths), pool * 4, -(-len(paths) // batch_files))))
        rows = dataset.map_batches(_ExtractActor, fn_constructor_kwargs={"store": str(store), "config": actor_config},
                                   batch_size=batch_files, compute=ray.data.ActorPoolStrategy(size=pool),
                                   num_cpus=0 if gpus_per_actor else 1, num_gpus=gpus_per_actor or None).take_all()
        _merge(report, rows)
    report.wall_s = time.perf_counter() - started
    return report


def actor_recipe(config: ExtractConfig, *, gpus_per_actor: float = 0.0) -> FeatureRecipe:
    """The recipe the actors will store under, known before any work: the encoder is built here, on the
    CPU, and switched to ONNX Runtime where a CPU actor's local engine switches it (musicnn with
    ``runtime`` auto), since the runtime is part of the recipe."""
    from mirkit.encoders import load_encoder

    encoder = load_encoder(config.encoder, weights_dir=config.weights_dir, device="cpu",
                           frame_rate_hz=config.frame_rate_hz)
    if not gpus_per_actor:  # CPU actors: what extract() does with device cpu
        select_runtime(encoder, config.runtime, what=f"run encoder {encoder.spec.name!r}")
    return make_recipe(replace(config, device="cpu"), encoder)


def _merge(report: ExtractReport, rows: list[dict]) -> None:
    """Add the actors' per-batch reports to ``report``."""
    for row in rows:
        if row["recipe_id"] != report.recipe_id:
            raise ConfigError(f"a Ray actor stored features under recipe {row['recipe_id']}, the driver expected "
                              f"{report.recipe_id}: the workers run another mirkit or encoder version.")
        report.computed += int(row["computed"])
        report.cached += int(row["cached"])
        report.by_other_runs += int(row["by_other_runs"])
        report.audio_s += float(row["audio_s"])
        report.skipped.update(Counter(json.loads(row["skipped"])))
        report.item_ids.update(json.loads(row["item_ids"]))
        report.timings["model_s"] = report.timings.get("model_s", 0.0) + float(row["model_s"])


def _reachable(address: str, *, timeout_s: float = 5.0) -> str | None:
    """Why ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) cannot be reached, or ``None`` if a TCP connection
    opens (Ray itself retries an unreachable head node for minutes); ``auto`` and others are left to Ray."""
    import socket

    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _connect(ray, address: str | None) -> None:
    if ray.is_initialized():
        return
    problem = _reachable(address) if address else None
    if problem:
        raise ConfigError(f"could not connect to --address {address!r} ({problem}). Start the cluster (`ray start "
                          "--head`) and pass its address (e.g. ray://HOST:10001 or auto), or drop --address for a "
                          "local instance.")
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"--address {address!r}" if address else "a local Ray instance"
        raise ConfigError(f"could not connect to {where}: {exc}. Start the cluster (`ray start --head`) and pass its "
                          "address (e.g. ray://HOST:10001 or auto), or drop --address for a local instance.") from None
