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
from pathlib import Path

import numpy as np

from mirkit.adapt.predict import best_job
from mirkit.adapt.probe import TrainedProbe
from mirkit.data.manifest import read_manifest
from mirkit.data.task_folder import load_task
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_json, safe_stem
from mirkit.robustness.perturb import (
    resolve_perturbations,
)
from mirkit.robustness.split import perturbed_split, test_entries
from mirkit.robustness.timed import score_timed_run, score_timed_tune_run


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
    names = resolve_perturbations(perturbations)  # unknown or unavailable ones fail before any work
    task = load_task(task_dir)
    kind, label = task.clip_kind().name, task.label
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


def score_any_run(*, run_dir: str | Path, task_dir: str | Path, out_dir: str | Path, store: str | Path,
                  perturbations: list[str] | None = None, progress: bool = True) -> list[dict[str, object]]:
    """Score a probe or tune run, clip- or frame-level (the task's kind decides), on the clean and perturbed
    test split of ``task_dir``; returns its results (a beat run adds its tempo row)."""
    timed = load_task(task_dir).kind.frame_level
    names = resolve_perturbations(perturbations)  # unknown or unavailable ones fail before any work
    if (Path(run_dir) / "tune.json").is_file():
        if timed:
            return score_timed_tune_run(run_dir=run_dir, task_dir=task_dir, out_dir=out_dir, perturbations=names,
                                        progress=progress)
        return [score_tune_run(run_dir=run_dir, task_dir=task_dir, out_dir=out_dir, perturbations=names,
                               progress=progress)]
    if timed:
        return score_timed_run(run_dir=run_dir, task_dir=task_dir, out_dir=out_dir, store=store, perturbations=names,
                               progress=progress)
    return [score_run(run_dir=run_dir, task_dir=task_dir, out_dir=out_dir, store=store, perturbations=names,
                      progress=progress)]


def _stats(scores: list[float], clips: int) -> dict[str, object]:
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "min": float(min(scores)),
            "max": float(max(scores)), "clips": clips}


def score_bench(*, bench_dir: str | Path, suite_dir: str | Path | None = None, tasks: list[str] | None = None,
                encoders: list[str] | None = None, perturbations: list[str] | None = None,
                progress: bool = True) -> list[dict[str, object]]:
    """:func:`score_run` for every clip-level (task, encoder) pair of a bench folder, and
    :func:`score_tune_run` for each clip-level tune run under ``RUNS/tune/`` (as the report shows them);
    results under ``RUNS/robustness/``. A pair that fails is recorded with its error and the rest go on."""
    bench = Path(bench_dir)
    if not (bench / "bench.json").is_file():
        raise ConfigError(f"{bench} is not a bench folder (no bench.json); run `mirkit bench` first.")
    perturbations = resolve_perturbations(perturbations)  # unknown or unavailable ones fail before any work
    plan = json.loads((bench / "bench.json").read_text())
    suite = Path(suite_dir or plan["suite_dir"])
    if not suite.is_dir():
        raise ConfigError(f"the suite of bench {bench} ({suite}) is not there; pass --suite DIR where it is now.")
    out, results = bench / "robustness", []
    for task in tasks or plan["tasks"]:
        for encoder in encoders or plan["encoders"]:
            run = bench / "tasks" / task / safe_stem(encoder)
            if not (run / "results").is_dir():
                continue
            try:
                scored = score_any_run(run_dir=run, task_dir=suite / task, out_dir=out, store=bench / "features",
                                       perturbations=perturbations, progress=progress)
            except Exception as exc:  # recorded; the other pairs go on
                scored = [{"task": task, "encoder": encoder, "error": f"{type(exc).__name__}: {exc}"}]
                atomic_write_json(out / "failures" / f"{task}__{safe_stem(encoder)}.json", scored[0])
            results += scored
            for result in scored if progress else []:
                if "error" not in result:
                    worst = max(result["perturbed"].items(), key=lambda kv: kv[1]["drop"])  # type: ignore[union-attr]
                    print(f"  {result['task']:<10} {result['encoder']:<24} clean {result['clean']['mean']:.3f}  "  # type: ignore[index]
                          f"worst {worst[0]} {worst[1]['mean']:.3f} (drop {worst[1]['drop']:+.3f})", flush=True)
    for run in sorted((bench / "tune").glob("*/tune.json")) if (bench / "tune").is_dir() else []:
        meta = json.loads(run.read_text())
        if tasks and meta["task"] not in tasks:
            continue
        try:
            results += score_any_run(run_dir=run.parent, task_dir=suite / str(meta["task"]), out_dir=out,
                                     store=bench / "features", perturbations=perturbations, progress=progress)
        except Exception as exc:  # recorded; the other runs go on
            result = {"task": meta["task"], "encoder": f"{meta['name']} / {meta['method']}",
                      "error": f"{type(exc).__name__}: {exc}"}
            atomic_write_json(out / "failures" / f"{meta['task']}__tune-{safe_stem(run.parent.name)}.json", result)
            results.append(result)
    return results


def _decode_test(manifest: Path, label: str, *, sample_rate: int, min_duration_s: float, loudness: str):
    """``ClipSet`` of the test clips of ``manifest`` at ``sample_rate``, levelled by the run's ``loudness``
    policy (undecodable clips left out), and how many were left out."""
    from mirkit.audio import load
    from mirkit.audio.loudness import apply_loudness
    from mirkit.errors import AudioError
    from mirkit.tune.data import ClipSet

    clips, skipped = ClipSet([], [], []), 0
    for path, entry in test_entries(manifest):
        try:
            wave, _ = load(path, sample_rate=sample_rate, min_duration_s=min_duration_s)
        except AudioError:
            skipped += 1
            continue
        clips.waves.append(apply_loudness(wave.astype(np.float32), sample_rate=sample_rate, policy=loudness))
        clips.labels.append(entry.labels[label])
        clips.paths.append(path)
    return clips, skipped


def score_tune_run(*, run_dir: str | Path, task_dir: str | Path, out_dir: str | Path,
                   perturbations: list[str] | None = None, device: str = "cpu",
                   progress: bool = True) -> dict[str, object]:
    """:func:`score_run` for a ``mirkit tune`` run (clip-level tasks): every finished seed's best weights
    through the encoder on the clean and perturbed test clips; ``OUT/results/<task>__<encoder>__<method>.json``."""
    import math

    import torch

    from mirkit.tune.inference import label_units, predict
    from mirkit.tune.run import load_tuned

    run_dir, task_dir, out = Path(run_dir), Path(task_dir), Path(out_dir)
    names = resolve_perturbations(perturbations)  # unknown or unavailable ones fail before any work
    task = load_task(task_dir)
    kind, label = task.kind.name, task.label
    if task.kind.frame_level:
        raise ConfigError(f"{run_dir} is a time-resolved ({kind}) tune run; score it with "
                          "mirkit.robustness.timed.score_timed_tune_run (score_any_run and the CLI choose it).")
    seeds = sorted(json.loads(p.read_text())["seed"] for p in (run_dir / "results").glob("*.json"))
    if not seeds:
        raise ConfigError(f"{run_dir} has no finished seed (no results/*.json); let `mirkit tune` finish first.")
    started = time.perf_counter()
    manifests = {"clean": task_dir / "manifest.jsonl"}
    manifests.update({n: perturbed_split(task_dir, out / "audio", n, progress=progress) for n in names})
    scores: dict[str, list[float]] = {k: [] for k in manifests}
    counts: dict[str, int] = {}
    meta: dict[str, object] = {}
    decoded: dict[str, object] = {}  # every seed shares the encoder, so each split is decoded once
    for seed in seeds:
        model, targets, meta = load_tuned(run_dir, seed=seed, device=device, merge=True)
        spec, config = model.encoder.spec, meta["config"]  # type: ignore[union-attr]
        for name, manifest in manifests.items():
            if name not in decoded:
                decoded[name], _ = _decode_test(manifest, label, sample_rate=spec.sample_rate,
                                                min_duration_s=spec.min_duration_s,
                                                loudness=str(config.get("loudness") or "none"))
            clips = decoded[name]
            if not clips.waves:  # type: ignore[attr-defined]
                raise ConfigError(f"no test clip of {manifest} could be decoded.")
            outputs = predict(model, clips, window_samples=int(round(float(config["crop_s"]) * spec.sample_rate)),
                              min_samples=max(1, math.ceil(spec.min_duration_s * spec.sample_rate)),
                              batch_size=int(config["batch_size"]), device=torch.device(device),
                              method=str(meta["method"]))
            outputs = label_units(outputs, model, targets)
            scores[name].append(float(targets.evaluate(clips.labels, outputs)["headline"]))
            counts[name] = len(clips.waves)
    clean = scores.pop("clean")
    result: dict[str, object] = {
        "task": task_dir.name, "kind": kind, "encoder": f"{meta['name']} / {meta['method']}", "run": str(run_dir),
        "job": f"tune {meta['method']}", "method": meta["method"], "seeds": len(seeds),
        "clean": _stats(clean, counts["clean"]), "perturbed": {}}
    for name, values in scores.items():
        stats = _stats(values, counts[name])
        stats["drop"] = float(np.mean(clean) - np.mean(values))
        result["perturbed"][name] = stats  # type: ignore[index]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    atomic_write_json(out / "results" / f"{task_dir.name}__{safe_stem(str(meta['name']))}__{meta['method']}.json",
                      result)
    return result
