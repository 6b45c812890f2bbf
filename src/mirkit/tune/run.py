"""``tune_task``: one method on one task for several seeds, results in the format of ``mirkit probe``.

Layout of ``RUN``::

    tune.json                      what was trained (task, encoder, method, settings, layers, labels)
    seed<k>/checkpoints/           the latest checkpoint of seed k (resumable)
    seed<k>/best.safetensors       the best weights: only what trained + head (adapters/LoRA: small)
    results/<job>.json             one per seed, same fields as probe results plus cost
    summary.json                   mean +- std over seeds

A seed whose result exists is skipped on rerun; ``resume="auto"`` continues a killed seed from
its checkpoint, ``"never"`` starts it over.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mirkit.adapt.config import ProbeConfig
from mirkit.adapt.targets import Targets
from mirkit.audio.augment import parse_augment
from mirkit.data.label_rules import check_rules
from mirkit.data.task_folder import TaskFolder, aggregate, load_task
from mirkit.encoders import load_encoder
from mirkit.errors import CheckpointError, ConfigError
from mirkit.files import atomic_write_json, safe_stem
from mirkit.kinds import FrameKind, TaskKind, frame_kind, get_kind, kinds_of_level
from mirkit.train.distributed import context, device_for
from mirkit.tune.config import TuneConfig
from mirkit.tune.data import load_task_audio
from mirkit.tune.loop import Outcome, Trainer, train
from mirkit.tune.methods import apply_method, get_method
from mirkit.tune.model import TuneModel, choose_layers
from mirkit.tune.timed import FrameTuneModel, choose_frame_layers, load_timed_audio
from mirkit.tune.timed_loop import FrameTrainer

FORMAT_VERSION = 1


def build_model(*, encoder: str, config: TuneConfig, output_dim: int, weights_dir: str | None = None,
                device: str = "cpu", frame_kind: FrameKind | None = None) -> TuneModel | FrameTuneModel:
    """The encoder as ``config.method`` leaves it, plus the head (random head, method modules at init);
    a frame-level head on every output frame for a time-resolved ``frame_kind`` (``output_dim`` unused)."""
    spec = get_method(config.method)
    if spec.build_encoder is not None:
        enc = spec.build_encoder(config.method_options, seed=config.seed, device=device)
    else:
        enc = load_encoder(encoder, weights_dir=weights_dir, device=device, frame_rate_hz=config.frame_rate_hz)
    torch.manual_seed(config.seed)
    state = apply_method(enc, config.method, config.method_options)
    if frame_kind is not None:
        layers = choose_frame_layers(enc.spec, spec.layer or config.layer, frame_kind)
        model: TuneModel | FrameTuneModel = FrameTuneModel(enc, layers, kind=frame_kind, head=config.head)
    else:
        layers = choose_layers(enc.spec, spec.layer or config.layer)
        model = TuneModel(enc, layers, output_dim=output_dim, head=ProbeConfig(model=config.head))
    model.method = state  # registered as a child: adapters/prefixes move, save and count with the model
    return model.to(device)


def count_parameters(model: TuneModel | FrameTuneModel, method: str) -> dict[str, object]:
    """Trainable parameters (with and without the head) and their share of the pretrained encoder's
    own parameters (method modules excluded; ``None`` for a method that brings its own encoder)."""
    spec = get_method(method)
    inserted = set(model.method.inserted)
    encoder_total = 0 if spec.build_encoder is not None else sum(
        p.numel() for n, p in model.encoder.named_parameters() if n not in inserted)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    head = sum(p.numel() for p in model.head.parameters())
    return {"trainable": trainable, "trainable_without_head": trainable - head, "encoder": encoder_total,
            "trainable_percent_of_encoder": round(100 * (trainable - head) / encoder_total, 4) if encoder_total else None}


def tune_task(*, task_dir: str | Path, encoder: str, out_dir: str | Path, config: TuneConfig, seeds: int = 3,
              weights_dir: str | None = None, device: str = "cpu", resume: str = "auto", progress: bool = True,
              stop_after_steps: int | None = None) -> dict[str, object]:
    """Train ``config.method`` on the task for ``seeds`` seeds; returns the summary (also ``RUN/summary.json``).

    ``stop_after_steps`` ends the first unfinished seed abruptly after that many optimizer steps and
    returns ``{"stopped": True}`` (how tests stand in for a killed process).
    """
    config.validate()
    if resume not in ("auto", "never"):
        raise ConfigError(f"resume={resume!r} must be 'auto' (continue from the last checkpoint) or 'never'.")
    if seeds < 1:
        raise ConfigError(f"seeds={seeds}: need at least 1 (3 or more for a mean +- std).")
    task_dir, out = Path(task_dir), Path(out_dir)
    dist = context(device)  # under torchrun: this process's rank; rank 0 alone writes
    device = device_for(device, dist)
    progress = progress and dist.is_main
    task = load_task(task_dir)
    kind, label = task.kind, task.label
    check_rules(task_dir.name, label, parse_augment(config.augment))  # no label may change silently
    timed = kind.frame_level
    config = config_for_task(config, kind)
    method = get_method(config.method)
    name = method.encoder_name(config.method_options) if method.encoder_name is not None else encoder
    frames = task.frame_kind() if timed else None
    probe_model = build_model(encoder=encoder, config=config, output_dim=1, weights_dir=weights_dir, device="cpu",
                              frame_kind=frames)
    spec = probe_model.encoder.spec
    audio, targets, classes, dims, decoding = _task_audio(task, frames, spec, loudness=config.loudness,
                                                          progress=progress)
    meta = {"format_version": FORMAT_VERSION, "task": task_dir.name, "task_dir": str(task_dir.resolve()),
            "kind": kind.name, "label": label, "encoder": encoder, "name": name, "weights_dir": weights_dir,
            "method": config.method, "config": config.to_dict(), "layers": probe_model.layers, "classes": classes,
            "dims": dims, "sample_rate": spec.sample_rate, "weights_revision": probe_model.encoder.weights_revision,
            **decoding}
    if dist.is_main:
        _claim_run_folder(out, meta)
    dist.barrier()
    job = f"{safe_stem(name)}__{config.method}__{config.head}"
    runs = []
    for seed in range(seeds):
        path = out / "results" / f"{job}__seed{seed}.json"
        if path.is_file():
            runs.append(json.loads(path.read_text()))
            continue
        seed_config = replace(config, seed=seed)
        model = build_model(encoder=encoder, config=seed_config, output_dim=targets.output_dim,
                            weights_dir=weights_dir, device=device, frame_kind=frames)
        counts = count_parameters(model, config.method)
        started = time.perf_counter()
        outcome = train(model, audio.splits, targets, config=seed_config, run_dir=out / f"seed{seed}", device=device,
                        resume=resume == "auto", progress=progress, stop_after_steps=stop_after_steps,
                        trainer_cls=FrameTrainer if timed else Trainer, label=label)
        if outcome is None:  # stopped on request (tests): no result yet
            return {"stopped": True}
        result = _seed_result(model, outcome, meta, seed_config, counts=counts, device=device,
                              wall_s=time.perf_counter() - started, skipped_clips=audio.skipped)
        result["cost"]["processes"] = dist.world_size
        if dist.is_main:
            atomic_write_json(path, result)
        dist.barrier()
        runs.append(result)
    summary = {"task": task_dir.name, "kind": kind.name, "encoder": name, "method": config.method, "seeds": seeds,
               "model": config.head, "layers": {config.method: {**aggregate(runs), "layer_indices": runs[0]["layers"]}},
               "cost": {k: float(np.mean([r["cost"][k] for r in runs])) for k in ("step_s", "epoch_s", "wall_s",
                                                                                   "peak_memory_mib")},
               "parameters": runs[0]["cost"]}
    if dist.is_main:
        atomic_write_json(out / "summary.json", summary)
    return summary


def _task_audio(task: TaskFolder, frames: FrameKind | None, spec, *, loudness: str, progress: bool):
    """The task's decoded clips and their label encoding: ``(audio, targets, classes, dims, decoding)``, where
    ``targets`` is the frame kind itself or the clip-level :class:`Targets` fitted on the training split and
    ``decoding`` what a frame kind's decoder learns from the training labels (the beat tempo range)."""
    min_duration_s = max(spec.min_duration_s, 0.0)
    if frames is not None:
        audio = load_timed_audio(task.path, kind=frames, sample_rate=spec.sample_rate, min_duration_s=min_duration_s,
                                 loudness=loudness, progress=progress)
        decoding = frames.decode_context(audio.splits["train"].labels)  # type: ignore[arg-type]
        return audio, frames, list(frames.classes), frames.outputs, decoding
    audio = load_task_audio(task.path, label=task.label, sample_rate=spec.sample_rate, min_duration_s=min_duration_s,
                            loudness=loudness, progress=progress)
    targets = Targets.fit(task.clip_kind().name, audio.splits["train"].labels, task.vocabulary)
    return audio, targets, targets.classes, targets.dims, {}


def config_for_task(config: TuneConfig, kind: TaskKind) -> TuneConfig:
    """``config`` with what depends on the task settled: ``--head tcn`` only on a time-resolved task, and the
    from-scratch CNN pooling time for clip-level tasks but keeping its frame rate for time-resolved ones."""
    if kind.level == "stems":
        raise ConfigError("a source-separation task is not trained by `mirkit tune`; use `mirkit boost --task TASK "
                          "--model open-unmix --encoder ENC`.")
    timed = kind.frame_level
    if config.head == "tcn" and not timed:
        raise ConfigError(f"--head tcn is a temporal head for the time-resolved tasks "
                          f"({', '.join(kinds_of_level('frame'))}); a {kind.name} task takes --head linear or mlp.")
    options = config.method_options
    if getattr(options, "scratch_time_pool", None) == "auto":
        config = replace(config, options=replace(options, scratch_time_pool="no" if timed else "yes"))
    return config


def _claim_run_folder(out: Path, meta: dict[str, object]) -> None:
    """Write ``tune.json``, refusing a folder that holds a run of another task, encoder, method or settings."""
    meta_path = out / "tune.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if isinstance(old.get("config"), dict):  # settings added since (with their defaults) are not a difference
            old["config"] = TuneConfig.from_dict(old["config"]).to_dict()
        differ = [k for k in ("task", "encoder", "method", "config", "layers", "weights_revision") if old.get(k) != meta[k]]
        if differ:
            raise CheckpointError(f"{out} holds a tune run with other {', '.join(differ)}; use another --out, or "
                                  "delete it to start over.")
    atomic_write_json(meta_path, meta)


def _seed_result(model: TuneModel | FrameTuneModel, outcome: Outcome, meta: dict[str, object], config: TuneConfig, *,
                 counts: dict[str, object], device: str, wall_s: float, skipped_clips: object) -> dict[str, object]:
    """One seed's result file: the fields of a probe result plus the cost record."""
    weights = [float(w) for w in torch.as_tensor(model.head.layer_weights()).tolist()] \
        if model.head.layer_logits is not None else []
    layer = model.encoder.spec.layers[model.layers[0]]
    timed = isinstance(model, FrameTuneModel)
    window = (f"train: random {config.crop_s:g} s crops; eval: " + (
        f"frames of consecutive {config.crop_s:g} s windows covering each clip, decoded" if timed
        else f"mean over non-overlapping {config.crop_s:g} s windows"))
    device_name = (torch.cuda.get_device_name(device) if device.startswith("cuda")
                   else platform.processor() or platform.machine())
    return {
        "job": config.method, "method": config.method, "task": meta["task"], "kind": meta["kind"],
        "encoder": meta["name"], "base_encoder": meta["encoder"], "layers": model.layers, "seed": config.seed,
        "model": config.head, "learning_rate": config.encoder_learning_rate,
        "head_learning_rate": config.head_learning_rate, "best_epoch": outcome.best_epoch, "valid": outcome.valid,
        "test": outcome.test, "parameters": counts["trainable"], "cost": {
            **counts, "epochs": outcome.epochs, "steps": outcome.steps, "skipped_steps": outcome.skipped_steps,
            "step_s": round(outcome.step_s, 4), "epoch_s": round(outcome.epoch_s, 2), "wall_s": round(wall_s, 2),
            "peak_memory_mib": outcome.peak_memory_mib, "memory_kind": outcome.memory_kind, "device": device,
            "device_name": device_name, "resumed_from_step": outcome.resumed_from_step},
        "train_s": round(outcome.train_s, 2), "layer_weights": weights, "pooling": "none" if timed else "mean",
        "frame_rate_hz": layer.frame_rate_hz, "feature_dim": layer.dim, "window": window,
        "history": outcome.history, "skipped_clips": skipped_clips,
    }


def load_tuned(run_dir: str | Path, *, seed: int | None = None, device: str = "cpu",
               merge: bool = False) -> tuple[TuneModel | FrameTuneModel, Targets | FrameKind, dict[str, object]]:
    """Rebuild a tuned model: base encoder + the method's modules + the saved weights (best seed by validation)."""
    from safetensors.torch import load_file

    run = Path(run_dir)
    try:
        meta = json.loads((run / "tune.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{run} is not a tune run ({exc}); expected the --out folder of `mirkit tune`.") from None
    if seed is None:
        results = [json.loads(p.read_text()) for p in sorted((run / "results").glob("*.json"))]
        if not results:
            raise CheckpointError(f"{run} has no finished seed yet (no results/*.json); let `mirkit tune` finish.")
        seed = max(results, key=lambda r: (r["valid"]["headline"], -r["seed"]))["seed"]
    config = replace(TuneConfig.from_dict(meta["config"]), seed=seed)
    frames = frame_kind(meta["kind"]) if get_kind(meta["kind"]).frame_level else None
    targets: Targets | FrameKind = frames or Targets(meta["kind"], list(meta["classes"]), int(meta["dims"]))
    model = build_model(encoder=meta["encoder"], config=config, output_dim=targets.output_dim,
                        weights_dir=meta.get("weights_dir"), device=device, frame_kind=frames)
    weights = run / f"seed{seed}" / "best.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing; seed {seed} of {run} did not finish.")
    tensors = load_file(str(weights), device=device)
    unexpected = set(tensors) - set(model.state_dict())
    if unexpected:
        raise CheckpointError(f"{weights} holds tensors the rebuilt model lacks ({sorted(unexpected)[:3]}); "
                              f"was it made by another mirkit version?")
    model.load_state_dict(tensors, strict=False)
    spec = get_method(config.method)
    if merge and spec.merge is not None:
        spec.merge(model.encoder)
    model.eval()
    meta["seed"] = seed
    return model, targets, meta


def format_tune_summary(summary: dict[str, object]) -> str:
    stats = next(iter(summary["layers"].values()))  # type: ignore[union-attr]
    head = stats["headline"]
    params = summary["parameters"]  # type: ignore[index]
    cost = summary["cost"]  # type: ignore[index]
    pct = params["trainable_percent_of_encoder"]
    return (f"{summary['encoder']} {summary['method']} on {summary['task']} ({summary['seeds']} seeds): "
            f"test headline {head['mean']:.3f} +- {head['std']:.3f}; trainable {params['trainable']:,} params"
            + (f" ({pct:g}% of the encoder)" if pct is not None and not math.isnan(pct) else "")
            + f"; {cost['step_s']:.3f} s/step, {cost['epoch_s']:.1f} s/epoch, peak {cost['peak_memory_mib']:.0f} MiB")


__all__ = ["TuneConfig", "build_model", "load_tuned", "tune_task"]
