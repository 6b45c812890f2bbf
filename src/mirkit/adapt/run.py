"""``probe_task``: features from the store (extracting what is missing) -> probes per layer and seed.

Writes ``RUN/results/<job>.json`` atomically (one per job; finished jobs are skipped on rerun),
``RUN/models/<job>/`` (the trained head, reloadable with :meth:`TrainedProbe.load`) and ``RUN/summary.json`` (mean and std of each test metric over seeds, per layer).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mirkit.adapt.config import ProbeRunConfig
from mirkit.adapt.fit import ProbeJob, fit_probes
from mirkit.adapt.results import check_results_recipe, record_extraction, weighted_layers
from mirkit.data.manifest import SPLITS, read_manifest
from mirkit.data.task_folder import TaskFolder, aggregate, clips_by_split, load_task
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_json, safe_stem


def probe_task(run: ProbeRunConfig) -> dict[str, object]:
    """Probe every selected layer of ``run.encoder`` (and, with ``run.weighted``, a learned weighting of
    them) on ``run.task_dir`` for ``run.seeds`` seeds: clip-level heads on pooled features, or frame-level
    heads (:func:`mirkit.adapt.timed.run.probe_timed_task`) when the task's kind is frame-level.

    ``run.loudness`` (``none``, ``peak`` or ``lufs``): the level policy of the features' recipe
    (:mod:`mirkit.audio.loudness`), kept with the saved heads so that prediction applies it too.
    ``run.augment`` (names of :mod:`mirkit.audio.augment`, e.g. ``"eq,room"``): ``run.augment_copies``
    augmented copies of every training clip (:mod:`mirkit.data.augmented`, under ``RUN/augmented/``)
    join the training split, with labels that follow label-changing augmentations by rule; validation
    and test stay as they are.
    Jobs whose result file exists are reused unless ``run.force``. The learned weighting covers the
    largest set of equal-width layers (all of them for transformer encoders); which ones is recorded.
    Returns the summary also written to ``RUN/summary.json``.
    """
    run.validate()
    task = load_task(run.task_dir)
    if task.kind.frame_level:
        from mirkit.adapt.timed.run import probe_timed_task

        return probe_timed_task(run, task)
    return _probe_clip_task(run, task)


def _probe_clip_task(run: ProbeRunConfig, task: TaskFolder) -> dict[str, object]:
    kind, out, encoder = task.clip_kind(), Path(run.out_dir), run.encoder
    base = run.clip_probe()
    names = _augment_names(task, run.augment, run.augment_copies)
    extract_config = ExtractConfig(encoder=encoder, layers=run.layers, weights_dir=run.weights_dir, device=run.device,
                                   frame_rate_hz=run.frame_rate_hz, loudness=run.loudness)
    training = {"augment": ",".join(names) or "none", "augment_copies": run.augment_copies if names else 0}
    items, by_split, missing = _features_by_split(task, out, store=run.store, config=extract_config, force=run.force,
                                                  training=training, progress=run.progress)
    if names:
        by_split["train"], training["augmented_clips"] = _with_augmented_copies(
            by_split["train"], task, out, names=names, copies=run.augment_copies, store=run.store,
            config=extract_config, progress=run.progress)
    pooled = {k: {s: items.read_pooled(k, ids) for s, (ids, _) in by_split.items()} for k in items.recipe.layers}
    jobs = [ProbeJob(f"layer{k}", [k], pooled[k]) for k in items.recipe.layers]
    mixed = weighted_layers({k: v["train"].shape[-1] for k, v in pooled.items()}) if run.weighted else []
    if mixed:
        jobs.append(ProbeJob("weighted", mixed, {s: np.stack([pooled[k][s] for k in mixed], axis=1) for s in SPLITS}))
    results_dir = out / "results"

    def job_id(name: str, seed: int) -> str:
        return f"{safe_stem(encoder)}__{name}__{base.model}__seed{seed}"

    seeds = run.seeds
    todo = [job for job in jobs if run.force or any(not (results_dir / f"{job_id(job.name, s)}.json").is_file()
                                                    for s in range(seeds))]
    trained = 0
    if todo:
        fits = fit_probes(todo, {s: v[1] for s, v in by_split.items()}, kind=kind.name, config=base,
                          seeds=range(seeds), keep=True, progress=run.progress,
                          desc=f"probe {encoder} on {task.path.name}", vocabulary=task.vocabulary)
        context = {"task": task.path.name, "kind": kind.name, "encoder": encoder, "recipe_id": items.recipe.recipe_id,
                   "pooling": items.recipe.pooling, "frame_rate_hz": items.recipe.frame_rate_hz,
                   "loudness": run.loudness, **training}
        for fit in fits:
            path = results_dir / f"{job_id(fit.job, fit.seed)}.json"
            if path.is_file() and not run.force:
                continue
            dim = int(pooled[fit.result.layers[0]]["train"].shape[-1])
            _save_fit(fit, path, out / "models" / job_id(fit.job, fit.seed), {**context, "feature_dim": dim})
            trained += 1
    summary: dict[str, object] = {"task": task.path.name, "kind": kind.name, "encoder": encoder,
                                  "recipe_id": items.recipe.recipe_id, "pooling": items.recipe.pooling,
                                  "clips": {s: len(v[0]) for s, v in by_split.items()}, "skipped_clips": missing,
                                  "model": base.model, "seeds": seeds, "layers": {}, **training,
                                  "jobs": {"trained": trained, "reused": len(jobs) * seeds - trained}}
    for job in jobs:
        runs = [json.loads((results_dir / f"{job_id(job.name, s)}.json").read_text()) for s in range(seeds)]
        summary["layers"][job.name] = {**aggregate(runs), "layer_indices": job.layers}  # type: ignore[index]
    atomic_write_json(out / "summary.json", summary)
    return summary


def _features_by_split(task: TaskFolder, out: Path, *, store: str | Path, config: ExtractConfig, force: bool,
                       training: dict[str, object], progress: bool):
    """The task's features (extracting what the store lacks) and, per split, the item ids and labels of the
    clips that have them; refuses results of another recipe or training in ``out`` and a split left empty."""
    manifest = task.manifest
    report = extract(manifest, store=store, progress=progress, config=config)
    record_extraction(out / "extract.json", report, config.encoder)
    items = FeatureStore(store).recipe(report.recipe)
    check_results_recipe(out, items.recipe.recipe_id, force=force, training=training)
    by_split, missing = clips_by_split(task.entries(), manifest, report.item_ids, task.label)
    for split, (ids, _) in by_split.items():
        if not ids:
            raise ConfigError(f"task {task.path.name!r} has no {split} clips with features for {config.encoder!r} "
                              f"({missing} skipped; see {report.errors_path}).")
    return items, by_split, missing


def _augment_names(task: TaskFolder, augment: str, copies: int) -> tuple[str, ...]:
    """The augmentations of ``--augment``, checked before any work: known names, a label rule for each
    label-changing one, at least one copy."""
    from mirkit.audio.augment import parse_augment
    from mirkit.data.label_rules import check_rules

    names = parse_augment(augment)
    if names:
        check_rules(task.path.name, task.label, names)
        if copies < 1:
            raise ConfigError(f"--augment-copies {copies}: need at least 1 augmented copy per training clip.")
    return names


def _with_augmented_copies(train: tuple[list[str], list[object]], task: TaskFolder, out: Path, *,
                           names: tuple[str, ...], copies: int, store: str | Path, config: ExtractConfig,
                           progress: bool) -> tuple[tuple[list[str], list[object]], int]:
    """The training split's item ids and labels with those of its augmented copies after them (written
    once under ``RUN/augmented/<names>-x<copies>/``, their features extracted with the same recipe)."""
    from mirkit.data.augmented import write_augmented_copies

    folder = write_augmented_copies(task.path, out / "augmented" / f"{'+'.join(names)}-x{copies}", names=names,
                                    copies=copies, label_name=task.label, audio_format="flac", progress=progress)
    manifest = folder / "manifest.jsonl"
    report = extract(manifest, store=store, progress=progress, config=config)
    record_extraction(out / "extract-augmented.json", report, config.encoder)
    extra, _ = clips_by_split(read_manifest(manifest), manifest, report.item_ids, task.label)
    ids, labels = extra["train"]
    return (train[0] + ids, train[1] + labels), len(ids)


def _save_fit(fit, path: Path, model_dir: Path, context: dict[str, object]) -> None:
    """The trained head, then its result file (the result marks the job done, so it is written last)."""
    if fit.probe is None:
        raise ConfigError(f"probe {fit.job} seed {fit.seed} kept no model to save; fit_probes needs keep=True.")
    fit.probe.save(model_dir)
    result = fit.result.to_dict()
    result.update({"job": fit.job, **context})
    atomic_write_json(path, result)


def format_summary(summary: dict[str, object]) -> str:
    lines = [f"{summary['encoder']} on {summary['task']} ({summary['kind']}, {summary['model']} probe, "
             f"{summary['seeds']} seeds; clips {summary['clips']})"]
    for name, stats in summary["layers"].items():  # type: ignore[union-attr]
        head = stats["headline"]
        lines.append(f"  {name:<10} headline {head['mean']:.3f} +- {head['std']:.3f}   "
                     + "  ".join(f"{m} {v['mean']:.3f}" for m, v in stats.items()
                                 if isinstance(v, dict) and m != "headline" and not math.isnan(v["mean"])))
    return "\n".join(lines)
