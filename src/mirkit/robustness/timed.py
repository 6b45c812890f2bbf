"""Robustness of time-resolved probe runs (beat, chords, transcription): the run's validated layer,
seed by seed, decoded on the clean and perturbed test split and scored as the run scored it (beat
F-measure, chord ``majmin`` overlap, note F1 with mir_eval). A beat run also yields the tempo of its
activations, scored as Acc1 and written as a second result under the ``tempo`` task, named
``ENCODER (beat probe)``, so that the tempo table shows the time-resolved path beside the clip probes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mirkit.adapt.predict import best_job
from mirkit.adapt.run import task_kind
from mirkit.adapt.timed.fit import HEADLINE, Clip, evaluate_clips
from mirkit.adapt.timed.predict import TrainedFrameHead
from mirkit.adapt.timed.run import entries_by_split, frame_rate
from mirkit.data.manifest import read_manifest
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_json, safe_stem
from mirkit.robustness.split import perturbed_split


def _scores(manifest: Path, heads: list[TrainedFrameHead], config: ExtractConfig, store: Path, kind: str, *,
            progress: bool) -> tuple[dict[str, list[float]], int, str]:
    """Per metric, the score of each seed on the test clips of ``manifest``; clips scored; recipe id."""
    report = extract(manifest, store=store, config=config, progress=progress)
    items = FeatureStore(store).recipe(report.recipe)
    rows = entries_by_split(read_manifest(manifest), manifest, report, kind=kind, skipped=[])["test"]
    if not rows:
        raise ConfigError(f"no test clip of {manifest} has usable features ({report.num_skipped} skipped; see "
                          f"{report.errors_path}).")
    layers = list(heads[0].context["layers"])
    per_layer = [items.read_frames(layer, [item for item, _ in rows]) for layer in layers]
    clips = []
    for k, (_, entry) in enumerate(rows):
        times = per_layer[0][k][1]
        if len(times) < 2:
            continue
        frames = np.stack([per_layer[j][k][0] for j in range(len(layers))]).astype(np.float32)
        clips.append(Clip(frames, times, np.zeros(0), entry.labels, entry.duration_s))
    rate = float(heads[0].context.get("frame_rate_hz") or frame_rate(clips[0].times_s))
    tempo_range = heads[0].context.get("tempo_range_bpm")
    per_seed = [evaluate_clips(kind, clips, [head.activations(c.frames) for c in clips], rate_hz=rate,
                               tempo_range_bpm=tuple(tempo_range) if tempo_range else None) for head in heads]
    metrics = {m: [float(s[m]) for s in per_seed] for m in per_seed[0] if np.isscalar(per_seed[0][m])}
    return metrics, len(clips), report.recipe.recipe_id


def _stats(scores: list[float], clips: int) -> dict[str, object]:
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "min": float(min(scores)),
            "max": float(max(scores)), "clips": clips}


def score_timed_run(*, run_dir: str | Path, task_dir: str | Path, out_dir: str | Path, store: str | Path,
                    perturbations: list[str], progress: bool = True) -> list[dict[str, object]]:
    """Score frame-level probe run ``run_dir`` on the clean and perturbed test split of ``task_dir``; writes
    ``OUT/results/<task>__<encoder>.json`` (and, for a beat run, ``tempo__<encoder>-beat-probe.json``)."""
    run_dir, task_dir, out, store = Path(run_dir), Path(task_dir), Path(out_dir), Path(store)
    kind, _ = task_kind(task_dir)
    job, model_dirs, _ = best_job(run_dir, include_weighted=False)
    heads = [TrainedFrameHead(d) for d in model_dirs]
    context = heads[0].context
    config = ExtractConfig(encoder=str(context["encoder"]), layers=list(context["layers"]), pooling="none",
                           frame_rate_hz=context.get("extract_frame_rate_hz"),
                           loudness=str(context.get("loudness") or "none"))
    started = time.perf_counter()
    clean, clips, recipe_id = _scores(task_dir / "manifest.jsonl", heads, config, store, kind, progress=progress)
    perturbed = {}
    for name in perturbations:
        manifest = perturbed_split(task_dir, out / "audio", name, progress=progress)
        perturbed[name] = _scores(manifest, heads, config, store, kind, progress=progress)
    headlines = {HEADLINE[kind]: (task_dir.name, str(context["encoder"]))}
    if kind == "beat" and "tempo_acc1" in clean:
        headlines["tempo_acc1"] = ("tempo", f"{context['encoder']} (beat probe)")
    results = []
    for metric, (task, name) in headlines.items():
        result: dict[str, object] = {
            "task": task, "kind": kind, "encoder": name, "run": str(run_dir), "job": job, "seeds": len(heads),
            "headline_metric": metric, "recipe_id": recipe_id, "clean": _stats(clean[metric], clips),
            "clean_metrics": {m: float(np.mean(v)) for m, v in clean.items()}, "perturbed": {}}
        for pname, (metrics, n, _) in perturbed.items():
            stats = _stats(metrics[metric], n)
            stats["drop"] = float(np.mean(clean[metric]) - np.mean(metrics[metric]))
            stats["metrics"] = {m: float(np.mean(v)) for m, v in metrics.items()}
            result["perturbed"][pname] = stats  # type: ignore[index]
        result["wall_s"] = round(time.perf_counter() - started, 1)
        stem = f"{task}__{safe_stem(str(context['encoder']))}" + ("-beat-probe" if task != task_dir.name else "")
        atomic_write_json(out / "results" / f"{stem}.json", result)
        results.append(result)
    return results
