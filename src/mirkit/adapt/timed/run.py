"""``probe_timed_task``: frame-level probes of every layer (and a learned weighting) on a time-resolved
task folder, with frame-level features from the store (``pooling="none"``) read a layer at a time.

Output folder (like :func:`mirkit.adapt.run.probe_task`): ``results/<job>.json`` per layer and seed,
``models/<job>/`` (the head's weights, its standardisation and settings) and ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mirkit.adapt.config import FrameProbeConfig, ProbeRunConfig
from mirkit.adapt.results import check_results_recipe, record_extraction, weighted_layers
from mirkit.adapt.timed.fit import Clip, fit_frame_probes
from mirkit.data.task_folder import TaskFolder, aggregate, entries_by_split
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_bytes, atomic_write_json, safe_stem, write_jsonl
from mirkit.kinds import FrameKind, TaskKind


def frame_layers(encoder: str, kind: TaskKind, layers: str, *, frame_rate_hz: float | None = None) -> str:
    """The selected layers (``all`` or a comma list) whose frame rate suits ``kind`` (at least its
    ``min_frame_rate_hz``), as a comma list.

    Raises:
        ConfigError: a named layer is too slow, or the encoder has no layer fast enough.
    """
    from mirkit.encoders.base import parse_layers
    from mirkit.encoders.zoo import get_spec

    spec = get_spec(encoder)
    if frame_rate_hz is not None:
        spec = spec.with_frame_rate(frame_rate_hz)
    floor = kind.min_frame_rate_hz
    chosen = parse_layers(layers, spec=spec)
    slow = [k for k in chosen if spec.layers[k].frame_rate_hz < floor]
    if slow and layers != "all":
        raise ConfigError(f"layers {slow} of {encoder!r} run at {spec.layers[slow[0]].frame_rate_hz:.3g} fps, below the "
                          f"{floor:g} fps the {kind.name} task needs; choose among "
                          f"{[k for k in range(spec.num_layers) if spec.layers[k].frame_rate_hz >= floor]}.")
    fast = [k for k in chosen if k not in slow]
    if not fast:
        raise ConfigError(f"{encoder!r} has no layer at {floor:g} fps or more, which the {kind.name} task needs.")
    return ",".join(str(k) for k in fast)


def frame_rate(times_s: np.ndarray) -> float:
    """Frames per second of a clip's frame times (the median spacing)."""
    if len(times_s) < 2:
        raise ConfigError("a clip has fewer than two frames; it is too short for frame-level probing.")
    return float(1.0 / np.median(np.diff(times_s)))


def _clips_of_layers(items, layers: list[int], by_split, kind: FrameKind):
    """Per split, clips with the frames of ``layers`` stacked ``(layers, frames, dim)``; ``None`` when the
    layers' frame times differ (they cannot be mixed frame by frame)."""
    out, rate = {}, None
    for split, rows in by_split.items():
        ids = [item for item, _ in rows]
        per_layer = [items.read_frames(layer, ids) for layer in layers]
        clips = []
        for k, (_, entry) in enumerate(rows):
            times = per_layer[0][k][1]
            if any(len(per_layer[j][k][1]) != len(times) for j in range(1, len(layers))):
                return None, None
            rate = rate or frame_rate(times)
            frames = np.stack([per_layer[j][k][0] for j in range(len(layers))]).astype(np.float32)
            clips.append(Clip(frames, times, kind.encode(entry.labels, times, rate_hz=rate), entry.labels,
                              entry.duration_s))
        out[split] = clips
    return out, rate


def _long_enough(items, rows: list, skipped: list[dict]) -> list:
    """The rows whose clip has at least two frames in the first stored layer (a rate needs two)."""
    if not rows:
        return rows
    frames = items.read_frames(items.recipe.layers[0], [item for item, _ in rows])
    kept = []
    for (item, entry), (_, times) in zip(rows, frames):
        if len(times) < 2:
            skipped.append({"path": entry.path, "reason": "too_short",
                            "message": f"{len(times)} frame(s); a clip needs two or more"})
        else:
            kept.append((item, entry))
    return kept


def _train_job(items, by_split, kind: FrameKind, config: FrameProbeConfig, *, name: str, layers: list[int],
               seeds: list[int], out: Path, job_id, context: dict[str, object]) -> int:
    """Fit one layer job for ``seeds``; each seed's head, then its result file (the done-marker). Returns
    how many were trained (0 when the layers sit on different frame grids and cannot be mixed)."""
    splits, rate = _clips_of_layers(items, layers, by_split, kind)
    if splits is None:
        return 0
    for result, model, standardisation in fit_frame_probes(splits, kind=kind, layers=layers, config=config,
                                                           rate_hz=rate, seeds=seeds):
        record = {**context, "frame_rate_hz": rate, "feature_dim": int(splits["train"][0].frames.shape[-1]),
                  "layers": layers, "job": name}
        _save_head(out / "models" / job_id(name, result.seed), model, standardisation, record)
        atomic_write_json(out / "results" / f"{job_id(name, result.seed)}.json", {**result.to_dict(), **record})
    return len(seeds)


def _save_head(model_dir: Path, model, standardisation: dict[str, np.ndarray], context: dict[str, object]) -> None:
    import torch
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    state.update({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in standardisation.items()})
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(model_dir / "head.safetensors", save(state))
    atomic_write_json(model_dir / "head.json", context)


def probe_timed_task(run: ProbeRunConfig, task: TaskFolder) -> dict[str, object]:
    """Probe every selected layer of ``run`` frame by frame on the frame-level ``task``; returns the summary
    also written to ``RUN/summary.json`` (per layer: test scores mean/std, validation headline, layer
    weights). Layers slower than the kind's ``min_frame_rate_hz`` are left out of ``all`` (musicnn's
    patch-level layers, say); ``run.frame_rate_hz`` sets the rate of encoders with a free hop (CREPE).
    Called by :func:`mirkit.adapt.run.probe_task`, which loads the task and reads its kind."""
    kind, out, encoder = task.frame_kind(), Path(run.out_dir), run.encoder
    if run.augment != "none":
        raise ConfigError(f"--augment is for clip-level probes; a {kind.name} task trains frame heads on stored "
                          "features of the original clips. Use `mirkit tune --augment` for an augmented "
                          "time-resolved model.")
    base = run.frame_probe()
    layers = frame_layers(encoder, kind, run.layers, frame_rate_hz=run.frame_rate_hz)
    report = extract(task.manifest, store=run.store, progress=run.progress,
                     config=ExtractConfig(encoder=encoder, layers=layers, pooling="none", weights_dir=run.weights_dir,
                                          device=run.device, frame_rate_hz=run.frame_rate_hz, loudness=run.loudness))
    record_extraction(out / "extract.json", report, encoder)
    items = FeatureStore(run.store).recipe(report.recipe)
    check_results_recipe(out, items.recipe.recipe_id, force=run.force)
    skipped: list[dict] = []
    by_split = entries_by_split(task.entries(), task.manifest, report.item_ids, kind=kind, skipped=skipped)
    by_split = {s: _long_enough(items, rows, skipped) for s, rows in by_split.items()}
    write_jsonl(out / "skipped.jsonl", skipped)
    for split, rows in by_split.items():
        if not rows:
            raise ConfigError(f"task {task.path.name!r} has no usable {split} clips for {encoder!r} ({len(skipped)} "
                              f"skipped with their reasons in {out / 'skipped.jsonl'}; extraction errors in "
                              f"{report.errors_path}).")
    jobs = [(f"layer{k}", [k]) for k in items.recipe.layers]
    if run.weighted:
        first = by_split["train"][0][0]
        dims = {k: items.read_frames(k, [first])[0][0].shape[-1] for k in items.recipe.layers}
        mixed = weighted_layers(dims)
        if mixed:
            jobs.append(("weighted", mixed))
    results_dir = out / "results"

    def job_id(name: str, seed: int) -> str:
        return f"{safe_stem(encoder)}__{name}__{base.head}__seed{seed}"

    trained = 0
    context = {"task": task.path.name, "kind": kind.name, "encoder": encoder, "recipe_id": items.recipe.recipe_id,
               "pooling": "none", "extract_frame_rate_hz": run.frame_rate_hz, "loudness": run.loudness,
               "head": base.head, "outputs": kind.outputs,
               **kind.decode_context([e.labels for _, e in by_split["train"]])}
    for name, job_layers in jobs:
        todo = [s for s in range(run.seeds) if run.force or not (results_dir / f"{job_id(name, s)}.json").is_file()]
        if todo:
            trained += _train_job(items, by_split, kind, base, name=name, layers=job_layers, seeds=todo, out=out,
                                  job_id=job_id, context=context)
    summary: dict[str, object] = {"task": task.path.name, "kind": kind.name, "encoder": encoder,
                                  "recipe_id": items.recipe.recipe_id, "pooling": "none",
                                  "clips": {s: len(v) for s, v in by_split.items()}, "skipped_clips": len(skipped),
                                  "model": base.head, "seeds": run.seeds, "layers": {},
                                  "jobs": {"trained": trained, "reused": len(jobs) * run.seeds - trained}}
    for name, job_layers in jobs:
        paths = [results_dir / f"{job_id(name, s)}.json" for s in range(run.seeds)]
        if all(p.is_file() for p in paths):
            runs = [json.loads(p.read_text()) for p in paths]
            summary["layers"][name] = {**aggregate(runs), "layer_indices": job_layers,  # type: ignore[index]
                                       "frame_rate_hz": runs[0]["frame_rate_hz"]}
    atomic_write_json(out / "summary.json", summary)
    return summary


__all__ = ["frame_layers", "frame_rate", "probe_timed_task"]
