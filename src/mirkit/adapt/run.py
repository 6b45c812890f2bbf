"""``probe_task``: features from the store (extracting what is missing) -> probes per layer and seed.

Writes ``RUN/results/<job>.json`` atomically (one per job; finished jobs are skipped on rerun),
``RUN/models/<job>/`` (the trained head, reloadable with :meth:`TrainedProbe.load`) and ``RUN/summary.json`` (mean and std of each test metric over seeds, per layer).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mirkit.adapt.fit import ProbeJob, fit_probes
from mirkit.adapt.probe import ProbeConfig
from mirkit.data.manifest import SPLITS, read_manifest
from mirkit.data.tasks import TASKS, TIME_RESOLVED_KINDS
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_json, safe_stem


def task_vocabulary(task_dir: Path) -> tuple[str, ...]:
    """The class names of the task a folder holds (empty for regression/tempo or unknown folders)."""
    name = task_dir.resolve().name
    for candidate in (name, name.rsplit("-", 1)[-1]):
        if candidate in TASKS:
            return TASKS.get(candidate).vocabulary
    return ()


def task_kind(task_dir: Path, override: str | None = None) -> tuple[str, str]:
    """``(kind, label_field)`` from the task folder's name (``key``, ``nsynth-instrument``, ...)."""
    name = task_dir.resolve().name
    for candidate in (name, name.rsplit("-", 1)[-1]):
        if candidate in TASKS:
            spec = TASKS.get(candidate)
            return override or spec.kind, spec.label
    if override:
        raise ConfigError(f"task folder {name!r} is not a known task, so its label field is unknown; name the folder "
                          f"after a task ({', '.join(TASKS)}) or a '<dataset>-<task>' adapter folder.")
    raise ConfigError(f"cannot tell the task of folder {name!r}; expected one of {', '.join(TASKS)} "
                      "(or '<dataset>-<task>' from `mirkit data adapt`).")


def probe_task(*, task_dir: str | Path, encoder: str, out_dir: str | Path, store: str | Path,
               layers: str = "all", seeds: int = 3, config: ProbeConfig | None = None, weights_dir: str | None = None,
               device: str = "cpu", weighted: bool = False, force: bool = False, frame_rate_hz: float | None = None,
               loudness: str = "none", augment: str = "none", augment_copies: int = 1,
               progress: bool = True) -> dict[str, object]:
    """Probe every selected layer (and, with ``weighted``, a learned weighting of them) for ``seeds`` seeds.

    ``loudness`` (``none``, ``peak`` or ``lufs``): the level policy of the features' recipe
    (:mod:`mirkit.audio.loudness`), kept with the saved heads so that prediction applies it too.
    ``augment`` (names of :mod:`mirkit.audio.augment`, e.g. ``"eq,room"``): ``augment_copies`` augmented
    copies of every training clip (:mod:`mirkit.data.augmented`, under ``RUN/augmented/``) join the
    training split, with labels that follow label-changing augmentations by rule; validation and
    test stay as they are.
    Jobs whose result file exists are reused unless ``force``. The learned weighting covers the
    largest set of equal-width layers (all of them for transformer encoders); which ones is recorded.
    Returns the summary also written to ``RUN/summary.json``.
    """
    task_dir, out = Path(task_dir), Path(out_dir)
    kind, label = task_kind(task_dir)
    if kind == "separation":
        raise ConfigError(f"{task_dir.name!r} is a source-separation task; probes do not separate stems. Train a "
                          f"separation model with `mirkit boost --task {task_dir} --model open-unmix --encoder ENC`.")
    if kind in TIME_RESOLVED_KINDS:
        raise ConfigError(f"{task_dir.name!r} is a time-resolved task ({kind}); clip-level probes do not apply. Use "
                          "a clip-level task folder (key, tempo, instrument, pitch, genre, tagging).")
    if seeds < 1:
        raise ConfigError(f"seeds={seeds}: need at least 1 (3 or more for a mean +- std).")
    names = _augment_names(task_dir, label, augment, augment_copies)
    extract_config = ExtractConfig(encoder=encoder, layers=layers, weights_dir=weights_dir, device=device,
                                   frame_rate_hz=frame_rate_hz, loudness=loudness)
    training = {"augment": ",".join(names) or "none", "augment_copies": augment_copies if names else 0}
    items, by_split, missing = _features_by_split(task_dir, out, label=label, store=store, config=extract_config,
                                                  force=force, training=training, progress=progress)
    if names:
        by_split["train"], training["augmented_clips"] = _with_augmented_copies(
            by_split["train"], task_dir, out, names=names, copies=augment_copies, label=label, store=store,
            config=extract_config, progress=progress)
    base = config or ProbeConfig()
    pooled = {k: {s: items.read_pooled(k, ids) for s, (ids, _) in by_split.items()} for k in items.recipe.layers}
    jobs = [ProbeJob(f"layer{k}", [k], pooled[k]) for k in items.recipe.layers]
    mixed = weighted_layers({k: v["train"].shape[-1] for k, v in pooled.items()}) if weighted else []
    if mixed:
        jobs.append(ProbeJob("weighted", mixed, {s: np.stack([pooled[k][s] for k in mixed], axis=1) for s in SPLITS}))
    results_dir = out / "results"

    def job_id(name: str, seed: int) -> str:
        return f"{safe_stem(encoder)}__{name}__{base.model}__seed{seed}"

    todo = [job for job in jobs if force or any(not (results_dir / f"{job_id(job.name, s)}.json").is_file()
                                                for s in range(seeds))]
    trained = 0
    if todo:
        fits = fit_probes(todo, {s: v[1] for s, v in by_split.items()}, kind=kind, config=base, seeds=range(seeds),
                          keep=True, progress=progress, desc=f"probe {encoder} on {task_dir.name}",
                          vocabulary=task_vocabulary(task_dir))
        context = {"task": task_dir.name, "kind": kind, "encoder": encoder, "recipe_id": items.recipe.recipe_id,
                   "pooling": items.recipe.pooling, "frame_rate_hz": items.recipe.frame_rate_hz,
                   "loudness": loudness, **training}
        for fit in fits:
            path = results_dir / f"{job_id(fit.job, fit.seed)}.json"
            if path.is_file() and not force:
                continue
            dim = int(pooled[fit.result.layers[0]]["train"].shape[-1])
            _save_fit(fit, path, out / "models" / job_id(fit.job, fit.seed), {**context, "feature_dim": dim})
            trained += 1
    summary: dict[str, object] = {"task": task_dir.name, "kind": kind, "encoder": encoder,
                                  "recipe_id": items.recipe.recipe_id, "pooling": items.recipe.pooling,
                                  "clips": {s: len(v[0]) for s, v in by_split.items()}, "skipped_clips": missing,
                                  "model": base.model, "seeds": seeds, "layers": {}, **training,
                                  "jobs": {"trained": trained, "reused": len(jobs) * seeds - trained}}
    for job in jobs:
        runs = [json.loads((results_dir / f"{job_id(job.name, s)}.json").read_text()) for s in range(seeds)]
        summary["layers"][job.name] = {**aggregate(runs), "layer_indices": job.layers}  # type: ignore[index]
    atomic_write_json(out / "summary.json", summary)
    return summary


def check_results_recipe(out: Path, recipe_id: str, *, force: bool, training: dict[str, object] | None = None) -> None:
    """Results in ``out`` trained on features of another recipe (another encoder revision, frame rate
    or loudness policy), or on other training data (``training``: the augmentation), must not be
    reused as if they were these: refuse, unless ``force``."""
    summary = out / "summary.json"
    if force or not summary.is_file():
        return
    saved = json.loads(summary.read_text())
    before = saved.get("recipe_id")
    if before not in (None, recipe_id):
        raise ConfigError(f"{out} holds results on features of recipe {before}, but this run's features are recipe "
                          f"{recipe_id} (another encoder revision, frame rate or --loudness); use another --out "
                          "folder, or --force to redo every job.")
    for key, value in (training or {}).items():
        old = saved.get(key, "none" if key == "augment" else 0)  # runs from before --augment: none
        if old != value:
            raise ConfigError(f"{out} holds results trained with {key}={old!r}, not {value!r}; "
                              "use another --out folder, or --force to redo every job.")


def _features_by_split(task_dir: Path, out: Path, *, label: str, store: str | Path, config: ExtractConfig, force: bool,
                       training: dict[str, object], progress: bool):
    """The task's features (extracting what the store lacks) and, per split, the item ids and labels of the
    clips that have them; refuses results of another recipe or training in ``out`` and a split left empty."""
    manifest = task_dir / "manifest.jsonl"
    report = extract(manifest, store=store, progress=progress, config=config)
    record_extraction(out / "extract.json", report, config.encoder)
    items = FeatureStore(store).recipe(report.recipe)
    check_results_recipe(out, items.recipe.recipe_id, force=force, training=training)
    by_split, missing = _clips_by_split(read_manifest(manifest), manifest, report.item_ids, label)
    for split, (ids, _) in by_split.items():
        if not ids:
            raise ConfigError(f"task {task_dir.name!r} has no {split} clips with features for {config.encoder!r} "
                              f"({missing} skipped; see {report.errors_path}).")
    return items, by_split, missing


def _augment_names(task_dir: Path, label: str, augment: str, copies: int) -> tuple[str, ...]:
    """The augmentations of ``--augment``, checked before any work: known names, a label rule for each
    label-changing one, at least one copy."""
    from mirkit.audio.augment import parse_augment
    from mirkit.data.label_rules import check_rules

    names = parse_augment(augment)
    if names:
        check_rules(task_dir.name, label, names)
        if copies < 1:
            raise ConfigError(f"--augment-copies {copies}: need at least 1 augmented copy per training clip.")
    return names


def _with_augmented_copies(train: tuple[list[str], list[object]], task_dir: Path, out: Path, *, names: tuple[str, ...],
                           copies: int, label: str, store: str | Path, config: ExtractConfig,
                           progress: bool) -> tuple[tuple[list[str], list[object]], int]:
    """The training split's item ids and labels with those of its augmented copies after them (written
    once under ``RUN/augmented/<names>-x<copies>/``, their features extracted with the same recipe)."""
    from mirkit.data.augmented import write_augmented_copies

    folder = write_augmented_copies(task_dir, out / "augmented" / f"{'+'.join(names)}-x{copies}", names=names,
                                    copies=copies, label_name=label, audio_format="flac", progress=progress)
    manifest = folder / "manifest.jsonl"
    report = extract(manifest, store=store, progress=progress, config=config)
    record_extraction(out / "extract-augmented.json", report, config.encoder)
    extra, _ = _clips_by_split(read_manifest(manifest), manifest, report.item_ids, label)
    ids, labels = extra["train"]
    return (train[0] + ids, train[1] + labels), len(ids)


def _clips_by_split(entries, manifest: Path, item_ids: dict[str, str],
                    label: str) -> tuple[dict[str, tuple[list[str], list[object]]], int]:
    """Per split, the item ids and labels of the clips that have features, and how many have none."""
    by_split: dict[str, tuple[list[str], list[object]]] = {s: ([], []) for s in SPLITS}
    missing = 0
    for entry in entries:
        path = entry.path if Path(entry.path).is_absolute() else str(manifest.parent / entry.path)
        item_id = item_ids.get(path)
        if item_id is None:
            missing += 1
            continue
        by_split[entry.split][0].append(item_id)
        by_split[entry.split][1].append(entry.labels[label])
    return by_split, missing


def _save_fit(fit, path: Path, model_dir: Path, context: dict[str, object]) -> None:
    """The trained head, then its result file (the result marks the job done, so it is written last)."""
    if fit.probe is None:
        raise ConfigError(f"probe {fit.job} seed {fit.seed} kept no model to save; fit_probes needs keep=True.")
    fit.probe.save(model_dir)
    result = fit.result.to_dict()
    result.update({"job": fit.job, **context})
    atomic_write_json(path, result)


def validated_layer(summary: dict[str, object]) -> tuple[str, dict]:
    """The single-layer job with the best mean validation headline, as the report chooses it
    (the weighted sum is reported beside it, not chosen among layers)."""
    layers = {k: v for k, v in summary["layers"].items() if k != "weighted"}  # type: ignore[union-attr]
    name = max(layers, key=lambda k: layers[k]["valid_headline"])
    return name, layers[name]


def weighted_layers(dims: dict[int, int]) -> list[int]:
    """The largest set of equal-width layers (ties: the set reaching deepest); ``[]`` if no two layers match."""
    by_dim: dict[int, list[int]] = {}
    for layer, dim in sorted(dims.items()):
        by_dim.setdefault(dim, []).append(layer)
    best = max(by_dim.values(), key=lambda group: (len(group), max(group)))
    return best if len(best) > 1 else []


def record_extraction(path: Path, report, encoder: str) -> None:
    """Extraction cost for the report; kept from the run that computed the features (reruns find them stored)."""
    if report.computed == 0 and path.is_file():
        return
    record = {"encoder": encoder, "recipe_id": report.recipe_id, "computed": report.computed, "cached": report.cached,
              "skipped": report.num_skipped, "audio_s": round(report.audio_s, 3), "wall_s": round(report.wall_s, 3),
              "measured": report.computed > 0}
    atomic_write_json(path, record)


def aggregate(runs: list[dict]) -> dict[str, object]:
    metrics = sorted(runs[0]["test"])
    out: dict[str, object] = {}
    for metric in metrics:
        values = [r["test"][metric] for r in runs]
        out[metric] = {"mean": float(np.mean(values)), "std": float(np.std(values)) if len(values) > 1 else 0.0}
    # the layer choice reads validation (as the report does); test scores are only reported
    out["valid_headline"] = float(np.mean([r["valid"]["headline"] for r in runs]))
    out["parameters"] = runs[0]["parameters"]
    weights = [r["layer_weights"] for r in runs if r.get("layer_weights")]
    if weights:
        out["layer_weights"] = [float(w) for w in np.mean(weights, axis=0)]
    out["train_s"] = float(sum(r["train_s"] for r in runs))
    return out


def format_summary(summary: dict[str, object]) -> str:
    lines = [f"{summary['encoder']} on {summary['task']} ({summary['kind']}, {summary['model']} probe, "
             f"{summary['seeds']} seeds; clips {summary['clips']})"]
    for name, stats in summary["layers"].items():  # type: ignore[union-attr]
        head = stats["headline"]
        lines.append(f"  {name:<10} headline {head['mean']:.3f} +- {head['std']:.3f}   "
                     + "  ".join(f"{m} {v['mean']:.3f}" for m, v in stats.items()
                                 if isinstance(v, dict) and m != "headline" and not math.isnan(v["mean"])))
    return "\n".join(lines)
