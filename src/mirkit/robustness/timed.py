"""Robustness of time-resolved probe runs (the frame-level kinds): the run's validated layer, seed by
seed, decoded on the clean and perturbed test split and scored as the run scored it (the kind's
decoder and metrics: beat F-measure, chord ``majmin`` overlap, note F1...). A beat run also yields the tempo of its
activations, scored as Acc1 and written as a second result under the ``tempo`` task, named
``ENCODER (beat probe)``, so that the tempo table shows the time-resolved path beside the clip probes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mirkit.adapt.predict import best_job
from mirkit.adapt.timed.fit import Clip, evaluate_clips
from mirkit.adapt.timed.predict import TrainedFrameHead
from mirkit.adapt.timed.run import frame_rate
from mirkit.data.manifest import read_manifest
from mirkit.data.task_folder import entries_by_split, load_task, usable_entry
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_json, safe_stem
from mirkit.kinds import FrameKind
from mirkit.robustness.split import perturbed_split, test_entries


def _scores(manifest: Path, heads: list[TrainedFrameHead], config: ExtractConfig, store: Path, kind: FrameKind, *,
            progress: bool) -> tuple[dict[str, list[float]], int, str]:
    """Per metric, the score of each seed on the test clips of ``manifest``; clips scored; recipe id."""
    report = extract(manifest, store=store, config=config, progress=progress)
    items = FeatureStore(store).recipe(report.recipe)
    rows = entries_by_split(read_manifest(manifest), manifest, report.item_ids, kind=kind, skipped=[])["test"]
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
    per_seed = [evaluate_clips(kind, clips, [head.activations(c.frames) for c in clips], rate_hz=rate,
                               context=heads[0].context) for head in heads]
    metrics = {m: [float(s[m]) for s in per_seed] for m in per_seed[0] if np.isscalar(per_seed[0][m])}
    return metrics, len(clips), report.recipe.recipe_id


def _stats(scores: list[float], clips: int) -> dict[str, object]:
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "min": float(min(scores)),
            "max": float(max(scores)), "clips": clips}


def score_timed_run(*, run_dir: str | Path, task_dir: str | Path, out_dir: str | Path, store: str | Path,
                    perturbations: list[str], progress: bool = True) -> list[dict[str, object]]:
    """Score frame-level probe run ``run_dir`` on the clean and perturbed test split of ``task_dir``; writes
    ``OUT/results/<task>__<encoder>.json`` (and, for a beat run, the tempo row under ``tempo__...``)."""
    run_dir, task_dir, out, store = Path(run_dir), Path(task_dir), Path(out_dir), Path(store)
    kind = load_task(task_dir).frame_kind()
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
    return _write_results(out, task_dir.name, kind, str(context["encoder"]), clean, clips,
                          {n: (m, c) for n, (m, c, _) in perturbed.items()},
                          extra={"run": str(run_dir), "job": job, "seeds": len(heads), "recipe_id": recipe_id},
                          started=started, tempo_suffix="beat probe")


def _write_results(out: Path, task: str, kind: FrameKind, name: str, clean: dict[str, list[float]], clips: int,
                   perturbed: dict[str, tuple[dict[str, list[float]], int]], *, extra: dict[str, object],
                   started: float, tempo_suffix: str) -> list[dict[str, object]]:
    """One result per headline (and, for a run whose decoding reads a tempo (beat), its tempo as a row of the
    tempo table)."""
    headlines = {kind.headline: (task, name)}
    if "tempo_acc1" in clean:
        headlines["tempo_acc1"] = ("tempo", f"{name} ({tempo_suffix})")
    results = []
    for metric, (row_task, row_name) in headlines.items():
        result: dict[str, object] = {
            "task": row_task, "kind": kind.name, "encoder": row_name, **extra, "headline_metric": metric,
            "clean": _stats(clean[metric], clips), "clean_metrics": {m: float(np.mean(v)) for m, v in clean.items()},
            "perturbed": {}}
        for pname, (metrics, n) in perturbed.items():
            stats = _stats(metrics[metric], n)
            stats["drop"] = float(np.mean(clean[metric]) - np.mean(metrics[metric]))
            stats["metrics"] = {m: float(np.mean(v)) for m, v in metrics.items()}
            result["perturbed"][pname] = stats  # type: ignore[index]
        result["wall_s"] = round(time.perf_counter() - started, 1)
        atomic_write_json(out / "results" / f"{row_task}__{safe_stem(row_name)}.json", result)
        results.append(result)
    return results


def _decode_test(manifest: Path, kind: FrameKind, *, sample_rate: int, min_duration_s: float, loudness: str):
    """Waves (levelled by the run's ``loudness`` policy) and whole label dicts of the test clips of ``manifest``
    (sidecars read); clips that fail to decode or whose labels cannot be scored are left out."""
    from mirkit.audio import load
    from mirkit.audio.loudness import apply_loudness
    from mirkit.errors import AudioError

    waves, labels = [], []
    for path, entry in test_entries(manifest):
        try:
            wave, _ = load(path, sample_rate=sample_rate, min_duration_s=min_duration_s)
        except AudioError:
            continue
        usable = usable_entry(kind, entry, manifest.parent, [])  # sidecars read, labels checked against the clip
        if usable is not None:
            waves.append(apply_loudness(wave.astype(np.float32), sample_rate=sample_rate, policy=loudness))
            labels.append(usable.labels)
    return waves, labels


def score_timed_tune_run(*, run_dir: str | Path, task_dir: str | Path, out_dir: str | Path, perturbations: list[str],
                         device: str = "cpu", progress: bool = True) -> list[dict[str, object]]:
    """A time-resolved ``mirkit tune`` run: every finished seed's best weights, through the encoder, decoded
    and scored on the clean and perturbed test clips as the run scored its test split."""
    import json

    import torch

    from mirkit.tune.run import load_tuned
    from mirkit.tune.timed_loop import activations, frame_outputs

    run_dir, task_dir, out = Path(run_dir), Path(task_dir), Path(out_dir)
    kind = load_task(task_dir).frame_kind()
    seeds = sorted(json.loads(p.read_text())["seed"] for p in (run_dir / "results").glob("*.json"))
    if not seeds:
        raise ConfigError(f"{run_dir} has no finished seed (no results/*.json); let `mirkit tune` finish first.")
    started = time.perf_counter()
    manifests = {"clean": task_dir / "manifest.jsonl"}
    manifests.update({n: perturbed_split(task_dir, out / "audio", n, progress=progress) for n in perturbations})
    per_split: dict[str, dict[str, list[float]]] = {k: {} for k in manifests}
    counts: dict[str, int] = {}
    decoded: dict[str, tuple[list, list]] = {}
    meta: dict[str, object] = {}
    for seed in seeds:
        model, _, meta = load_tuned(run_dir, seed=seed, device=device, merge=True)
        spec, config = model.encoder.spec, meta["config"]  # type: ignore[union-attr]
        for name, manifest in manifests.items():
            if name not in decoded:
                decoded[name] = _decode_test(manifest, kind, sample_rate=spec.sample_rate,
                                             min_duration_s=spec.min_duration_s,
                                             loudness=str(config.get("loudness") or "none"))
            waves, labels = decoded[name]
            if not waves:
                raise ConfigError(f"no test clip of {manifest} could be decoded and scored.")
            outputs = frame_outputs(model, waves, window_samples=int(round(float(config["crop_s"]) * spec.sample_rate)),  # type: ignore[arg-type]
                                    batch_size=int(config["batch_size"]), device=torch.device(device),  # type: ignore[index]
                                    method=str(meta["method"]))
            scored = [Clip(np.empty(0), times, np.empty(0), clip, len(wave) / spec.sample_rate)
                      for (_, times), clip, wave in zip(outputs, labels, waves)]
            scores = evaluate_clips(kind, scored, [activations(kind, logits) for logits, _ in outputs],
                                    rate_hz=model.frame_rate_hz, context=meta)  # type: ignore[union-attr]
            for metric, value in scores.items():
                if np.isscalar(value):
                    per_split[name].setdefault(metric, []).append(float(value))
            counts[name] = len(waves)
    clean = per_split.pop("clean")
    name = f"{meta['name']} / {meta['method']}"
    return _write_results(out, task_dir.name, kind, name, clean, counts["clean"],
                          {n: (m, counts[n]) for n, m in per_split.items()},
                          extra={"run": str(run_dir), "job": f"tune {meta['method']}", "method": meta["method"],
                                 "seeds": len(seeds)}, started=started, tempo_suffix="beat")
