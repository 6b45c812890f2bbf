"""``probe_task``: features from the store (extracting what is missing) -> probes per layer and seed.

Writes ``RUN/results/<job>.json`` atomically (one per job; finished jobs are skipped on rerun),
``RUN/models/<job>/`` (the trained head, reloadable with :meth:`TrainedProbe.load`) and ``RUN/summary.json`` (mean and std of each test metric over seeds, per layer).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from mirkit.adapt.probe import ProbeConfig, TrainedProbe, fit_probe
from mirkit.data.manifest import SPLITS, read_manifest
from mirkit.data.tasks import TASKS
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore, atomic_write_bytes


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
               device: str = "cpu", weighted: bool = False, progress: bool = True) -> dict[str, object]:
    task_dir, out = Path(task_dir), Path(out_dir)
    kind, label = task_kind(task_dir)
    if kind == "transcription":
        raise ConfigError("transcription is a frame-level task; clip-level probes do not apply (see issue #5 booster).")
    manifest = task_dir / "manifest.jsonl"
    entries = read_manifest(manifest)
    report = extract(manifest, store=store, progress=progress,
                     config=ExtractConfig(encoder=encoder, layers=layers, weights_dir=weights_dir, device=device))
    items = FeatureStore(store).recipe(report.recipe)
    by_split: dict[str, tuple[list[str], list[object]]] = {s: ([], []) for s in SPLITS}
    missing = 0
    for entry in entries:
        path = entry.path if Path(entry.path).is_absolute() else str(manifest.parent / entry.path)
        item_id = report.item_ids.get(path)
        if item_id is None:
            missing += 1
            continue
        by_split[entry.split][0].append(item_id)
        by_split[entry.split][1].append(entry.labels[label])
    base = config or ProbeConfig()
    jobs: list[tuple[str, list[int]]] = [(f"layer{k}", [k]) for k in items.recipe.layers]
    if weighted:
        jobs.append(("weighted", list(items.recipe.layers)))
    results_dir = out / "results"
    summary: dict[str, object] = {"task": task_dir.name, "kind": kind, "encoder": encoder, "recipe_id": items.recipe.recipe_id,
                                  "clips": {s: len(v[0]) for s, v in by_split.items()}, "skipped_clips": missing,
                                  "model": base.model, "seeds": seeds, "layers": {}}
    for name, job_layers in jobs:
        features = {s: _stack(items, job_layers, ids) for s, (ids, _) in by_split.items()}
        runs = []
        for seed in range(seeds):
            job = f"{encoder.replace(':', '_')}__{name}__{base.model}__seed{seed}"
            path = results_dir / f"{job}.json"
            if path.is_file():
                runs.append(json.loads(path.read_text()))
                continue
            kept: list[TrainedProbe] = []
            result = fit_probe(features, {s: v[1] for s, v in by_split.items()}, kind=kind,
                               config=replace(base, seed=seed), layers=job_layers, keep=kept).to_dict()
            kept[0].save(out / "models" / job)  # before the result: the result file marks the job done
            result.update({"task": task_dir.name, "encoder": encoder, "recipe_id": items.recipe.recipe_id,
                           "feature_dim": int(features["train"].shape[-1])})
            atomic_write_bytes(path, json.dumps(result, indent=2).encode())
            runs.append(result)
        summary["layers"][name] = _aggregate(runs)  # type: ignore[index]
    atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def _stack(items, layers: list[int], ids: list[str]) -> np.ndarray:
    if len(layers) == 1:
        return items.read_pooled(layers[0], ids)
    parts = [items.read_pooled(layer, ids) for layer in layers]
    dims = {p.shape[-1] for p in parts}
    if len(dims) > 1:
        raise ConfigError(f"learned layer weighting needs layers of one dimension; these have {sorted(dims)}. "
                          "Select equal-width layers with --layers.")
    return np.stack(parts, axis=1)


def _aggregate(runs: list[dict]) -> dict[str, object]:
    metrics = sorted(runs[0]["test"])
    out: dict[str, object] = {}
    for metric in metrics:
        values = [r["test"][metric] for r in runs]
        out[metric] = {"mean": float(np.mean(values)), "std": float(np.std(values)) if len(values) > 1 else 0.0}
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
