"""``mirkit robustness``: probe runs scored on perturbed copies of their task's test split.

For a task, every test clip is perturbed once per perturbation (:mod:`mirkit.robustness.perturb`)
into ``OUT/audio/<task>/<perturbation>/`` with a ``manifest.jsonl`` beside it (same labels, split
``test``); the folders are shared by every encoder and reused on rerun. For a probe run (``mirkit
probe`` or a pair folder of ``mirkit bench``), the single layer chosen on the *validation* split (as
the report's leaderboard chooses it) is applied, seed by seed, to features of the perturbed
clips, extracted with the run's own feature recipe; scores are mean +- std (and range) over seeds,
with the drop from the clean test split scored the same way. Clips that fail to decode or extract
are skipped with the reason, as everywhere else.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mirkit.adapt.predict import best_job
from mirkit.adapt.probe import TrainedProbe
from mirkit.adapt.run import task_kind
from mirkit.data.manifest import read_manifest
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_json, safe_stem, write_jsonl
from mirkit.robustness.perturb import PERTURBATIONS, perturb_file


def perturbed_split(task_dir: Path, audio_root: Path, perturbation: str, *, progress: bool = False) -> Path:
    """``audio_root/<task>/<perturbation>/manifest.jsonl``: the task's test clips, perturbed (reused when written)."""
    spec = PERTURBATIONS.get(perturbation)
    folder = audio_root / task_dir.name / perturbation
    manifest = folder / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    entries = [e for e in read_manifest(task_dir / "manifest.jsonl") if e.split == "test"]
    if not entries:
        raise ConfigError(f"task {task_dir} has no test clips to perturb.")
    rows, skipped = [], []
    iterator = entries
    if progress:
        from tqdm import tqdm

        iterator = tqdm(entries, desc=f"{perturbation} on {task_dir.name}", unit="clip", leave=False)
    for entry in iterator:
        source = task_dir / entry.path
        stem = folder / "audio" / Path(entry.path).with_suffix("").name
        try:
            written = perturb_file(source, stem, perturbation=perturbation, clip=entry.path)
        except Exception as exc:  # a clip that cannot be decoded or written is skipped with the reason
            skipped.append({"path": entry.path, "reason": type(exc).__name__, "message": str(exc)[:300]})
            continue
        rows.append({**asdict(entry), "path": written.relative_to(folder).as_posix(), "sha256": "",
                     "rendering": {**entry.rendering, "perturbation": perturbation,
                                   "perturbation_description": spec.description}})
    if skipped:
        write_jsonl(folder / "skipped.jsonl", skipped)
    write_jsonl(manifest, rows)  # last: its presence marks the folder complete
    return manifest


def _run_recipe(run_dir: Path, store: Path, record: dict) -> ExtractConfig:
    """The extraction settings of the run's own features (so clean features are reused, not recomputed)."""
    recipe_file = store / "recipes" / str(record.get("recipe_id")) / "recipe.json"
    if not recipe_file.is_file():
        raise ConfigError(f"the features of run {run_dir} (recipe {record.get('recipe_id')}) are not in store {store}; "
                          "pass the --store the run was made with (a bench's is RUNS/features).")
    recipe = json.loads(recipe_file.read_text())
    return ExtractConfig(encoder=str(record["encoder"]), layers=list(recipe["layers"]), pooling=recipe["pooling"],
                         window_s=recipe.get("window_s"), hop_s=recipe.get("hop_s"),
                         frame_rate_hz=recipe.get("frame_rate_hz"), channel_policy=recipe["channel_policy"],
                         dtype=recipe["dtype"], loudness=recipe.get("loudness") or "none")


def _scores(manifest: Path, probes: list[TrainedProbe], config: ExtractConfig, store: Path, label: str, *,
            progress: bool) -> tuple[list[float], dict[str, list[float]], int, str]:
    """Per seed, the headline and every metric on the test clips of ``manifest``; clips scored; recipe id."""
    report = extract(manifest, store=store, config=config, progress=progress)
    items = FeatureStore(store).recipe(report.recipe)
    ids, labels = [], []
    for entry in read_manifest(manifest):
        if entry.split != "test":
            continue
        path = entry.path if Path(entry.path).is_absolute() else str(manifest.parent / entry.path)
        if path in report.item_ids:
            ids.append(report.item_ids[path])
            labels.append(entry.labels[label])
    if not ids:
        raise ConfigError(f"no test clip of {manifest} has features ({report.num_skipped} skipped; see "
                          f"{report.errors_path}).")
    layers = probes[0].layers
    parts = [items.read_pooled(layer, ids) for layer in layers]
    features = parts[0] if len(parts) == 1 else np.stack(parts, axis=1)
    per_seed = [probe.targets.evaluate(labels, probe.predict_outputs(features)) for probe in probes]
    metrics = {m: [float(s[m]) for s in per_seed] for m in per_seed[0] if np.isscalar(per_seed[0][m])}
    return metrics["headline"], metrics, len(ids), report.recipe.recipe_id


def score_run(*, run_dir: str | Path, task_dir: str | Path, out_dir: str | Path, store: str | Path,
              perturbations: list[str] | None = None, progress: bool = True) -> dict[str, object]:
    """Score probe run ``run_dir`` (its validated job, every seed) on the clean and perturbed test split of
    ``task_dir``; writes and returns ``OUT/results/<task>__<encoder>.json``."""
    run_dir, task_dir, out, store = Path(run_dir), Path(task_dir), Path(out_dir), Path(store)
    names = list(perturbations or PERTURBATIONS)
    for name in names:
        PERTURBATIONS.get(name)  # unknown names fail before any work, with a suggestion
    kind, label = task_kind(task_dir)
    job, model_dirs, record = best_job(run_dir, include_weighted=False)
    probes = [TrainedProbe.load(d) for d in model_dirs]
    config = _run_recipe(run_dir, store, record)
    started = time.perf_counter()
    clean, clean_metrics, clips, recipe_id = _scores(task_dir / "manifest.jsonl", probes, config, store, label,
                                                     progress=progress)
    result: dict[str, object] = {
        "task": task_dir.name, "kind": kind, "encoder": record["encoder"], "run": str(run_dir), "job": job,
        "seeds": len(probes), "recipe_id": recipe_id, "clean_features_reused": recipe_id == record.get("recipe_id"),
        "clean": _stats(clean, clips), "clean_metrics": {m: float(np.mean(v)) for m, v in clean_metrics.items()},
        "perturbed": {}}
    for name in names:
        manifest = perturbed_split(task_dir, out / "audio", name, progress=progress)
        scores, metrics, clips, _ = _scores(manifest, probes, config, store, label, progress=progress)
        stats = _stats(scores, clips)
        stats["drop"] = float(np.mean(clean) - np.mean(scores))
        stats["metrics"] = {m: float(np.mean(v)) for m, v in metrics.items()}
        result["perturbed"][name] = stats  # type: ignore[index]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    atomic_write_json(out / "results" / f"{task_dir.name}__{safe_stem(str(record['encoder']))}.json", result)
    return result


def _stats(scores: list[float], clips: int) -> dict[str, object]:
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "min": float(min(scores)),
            "max": float(max(scores)), "clips": clips}


def score_bench(*, bench_dir: str | Path, suite_dir: str | Path | None = None, tasks: list[str] | None = None,
                encoders: list[str] | None = None, perturbations: list[str] | None = None,
                progress: bool = True) -> list[dict[str, object]]:
    """:func:`score_run` for every clip-level (task, encoder) pair of a bench folder; results under
    ``RUNS/robustness/``. A pair that fails is recorded with its error and the rest go on."""
    bench = Path(bench_dir)
    if not (bench / "bench.json").is_file():
        raise ConfigError(f"{bench} is not a bench folder (no bench.json); run `mirkit bench` first.")
    for name in perturbations or []:
        PERTURBATIONS.get(name)  # unknown names fail before any work, with a suggestion
    plan = json.loads((bench / "bench.json").read_text())
    suite = Path(suite_dir or plan["suite_dir"])
    if not suite.is_dir():
        raise ConfigError(f"the suite of bench {bench} ({suite}) is not there; pass --suite DIR where it is now.")
    out, results = bench / "robustness", []
    for task in tasks or plan["tasks"]:
        kind, _ = task_kind(suite / task)
        if kind in ("beat", "chords", "transcription"):
            continue  # time-resolved runs are scored by their own decoders: not covered yet
        for encoder in encoders or plan["encoders"]:
            run = bench / "tasks" / task / safe_stem(encoder)
            if not (run / "results").is_dir():
                continue
            try:
                result = score_run(run_dir=run, task_dir=suite / task, out_dir=out, store=bench / "features",
                                   perturbations=perturbations, progress=progress)
            except Exception as exc:  # recorded; the other pairs go on
                result = {"task": task, "encoder": encoder, "error": f"{type(exc).__name__}: {exc}"}
                atomic_write_json(out / "failures" / f"{task}__{safe_stem(encoder)}.json", result)
            results.append(result)
            if progress and "error" not in result:
                worst = max(result["perturbed"].items(), key=lambda kv: kv[1]["drop"])  # type: ignore[union-attr]
                print(f"  {task:<10} {encoder:<24} clean {result['clean']['mean']:.3f}  worst {worst[0]} "  # type: ignore[index]
                      f"{worst[1]['mean']:.3f} (drop {worst[1]['drop']:+.3f})", flush=True)
    return results
