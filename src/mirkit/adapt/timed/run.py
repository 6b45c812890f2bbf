"""``probe_timed_task``: frame-level probes of every layer (and a learned weighting) on a time-resolved
task folder, with frame-level features from the store (``pooling="none"``) read a layer at a time.

Output folder (like :func:`mirkit.adapt.run.probe_task`): ``results/<job>.json`` per layer and seed,
``models/<job>/`` (the head's weights, its standardisation and settings) and ``summary.json``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from mirkit.adapt.run import aggregate, check_results_recipe, record_extraction, task_kind, weighted_layers
from mirkit.adapt.timed.decode import tempo_range
from mirkit.adapt.timed.fit import HEADLINE, Clip, FrameProbeConfig, fit_frame_probes
from mirkit.adapt.timed.targets import FrameTargets
from mirkit.data.manifest import SPLITS, read_manifest
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from mirkit.files import atomic_write_bytes, atomic_write_json, safe_stem, write_jsonl

FRAME_KINDS = ("beat", "chords", "transcription")
#: the slowest frame rate a layer may have for a task: beats are scored within 70 ms; chords last a beat or more
MIN_FRAME_RATE_HZ = {"beat": 20.0, "chords": 4.0, "transcription": 20.0, "separation": 20.0}  # separation: the booster's


def frame_layers(encoder: str, kind: str, layers: str, *, frame_rate_hz: float | None = None) -> str:
    """The selected layers (``all`` or a comma list) whose frame rate suits ``kind``, as a comma list.

    Raises:
        ConfigError: a named layer is too slow, or the encoder has no layer fast enough.
    """
    from mirkit.encoders.base import parse_layers
    from mirkit.encoders.zoo import get_spec

    spec = get_spec(encoder)
    if frame_rate_hz is not None:
        spec = spec.with_frame_rate(frame_rate_hz)
    floor = MIN_FRAME_RATE_HZ[kind]
    chosen = parse_layers(layers, spec=spec)
    slow = [k for k in chosen if spec.layers[k].frame_rate_hz < floor]
    if slow and layers != "all":
        raise ConfigError(f"layers {slow} of {encoder!r} run at {spec.layers[slow[0]].frame_rate_hz:.3g} fps, below the "
                          f"{floor:g} fps the {kind} task needs; choose among "
                          f"{[k for k in range(spec.num_layers) if spec.layers[k].frame_rate_hz >= floor]}.")
    fast = [k for k in chosen if k not in slow]
    if not fast:
        raise ConfigError(f"{encoder!r} has no layer at {floor:g} fps or more, which the {kind} task needs.")
    return ",".join(str(k) for k in fast)


def frame_rate(times_s: np.ndarray) -> float:
    """Frames per second of a clip's frame times (the median spacing)."""
    if len(times_s) < 2:
        raise ConfigError("a clip has fewer than two frames; it is too short for frame-level probing.")
    return float(1.0 / np.median(np.diff(times_s)))


def _clips_of_layers(items, layers: list[int], by_split, targets: FrameTargets):
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
            clips.append(Clip(frames, times, targets.encode(entry.labels, times, rate_hz=rate), entry.labels,
                              entry.duration_s))
        out[split] = clips
    return out, rate


def label_problem(kind: str, labels: dict[str, object], *, duration_s: float) -> str | None:
    """Why a clip's time-resolved labels cannot train or score a probe (``None``: they can)."""
    from mirkit.data.annotations import beat_problem, chord_problem

    if kind == "beat":
        return beat_problem(labels, duration_s=duration_s)
    if kind == "chords":
        return chord_problem(labels, duration_s=duration_s)
    notes = labels.get("notes")
    if not isinstance(notes, list) or any(n["offset_s"] <= n["onset_s"] for n in notes):
        return "the note list is missing or has a note whose offset is not after its onset"
    return None


def entries_by_split(entries, manifest: Path, report, *, kind: str, skipped: list[dict]) -> dict[str, list]:
    """Per split, ``(item id, manifest entry)`` of the usable clips (a transcription entry's note list read
    from its sidecar file); each clip left out is appended to ``skipped`` with its reason."""
    by_split: dict[str, list] = {s: [] for s in SPLITS}
    for entry in entries:
        path = entry.path if Path(entry.path).is_absolute() else str(manifest.parent / entry.path)
        item = report.item_ids.get(path)
        if item is None:
            skipped.append({"path": entry.path, "reason": "no_features", "message": "extraction skipped it"})
            continue
        if kind == "transcription":
            try:
                notes = json.loads((manifest.parent / str(entry.labels["notes"])).read_text())
            except (OSError, ValueError, KeyError) as exc:
                skipped.append({"path": entry.path, "reason": "bad_labels", "message": f"note list unreadable ({exc})"})
                continue
            entry = replace(entry, labels={**entry.labels, "notes": notes})
        problem = label_problem(kind, entry.labels, duration_s=entry.duration_s)
        if problem:
            skipped.append({"path": entry.path, "reason": "bad_labels", "message": problem})
            continue
        by_split[entry.split].append((item, entry))
    return by_split


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


def _train_job(items, by_split, targets: FrameTargets, config: FrameProbeConfig, *, name: str, layers: list[int],
               seeds: list[int], out: Path, job_id, context: dict[str, object]) -> int:
    """Fit one layer job for ``seeds``; each seed's head, then its result file (the done-marker). Returns
    how many were trained (0 when the layers sit on different frame grids and cannot be mixed)."""
    splits, rate = _clips_of_layers(items, layers, by_split, targets)
    if splits is None:
        return 0
    kind = targets.kind
    for result, model, standardisation in fit_frame_probes(splits, kind=kind, layers=layers, config=config,
                                                           rate_hz=rate, seeds=seeds):
        for scores in (result.valid, result.test):
            scores["headline"] = scores[HEADLINE[kind]]
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


def probe_timed_task(*, task_dir: str | Path, encoder: str, out_dir: str | Path, store: str | Path,
                     layers: str = "all", seeds: int = 3, config: FrameProbeConfig | None = None,
                     weights_dir: str | None = None, device: str = "cpu", weighted: bool = False, force: bool = False,
                     frame_rate_hz: float | None = None, loudness: str = "none",
                     progress: bool = True) -> dict[str, object]:
    """Probe every selected layer frame by frame for ``seeds`` seeds; returns the summary also written to
    ``RUN/summary.json`` (per layer: test scores mean/std, validation headline, layer weights). Layers
    slower than :data:`MIN_FRAME_RATE_HZ` are left out of ``all`` (musicnn's patch-level layers, say);
    ``frame_rate_hz`` sets the rate of encoders with a free hop (CREPE)."""
    task_dir, out = Path(task_dir), Path(out_dir)
    kind, _ = task_kind(task_dir)
    if kind not in FRAME_KINDS:
        raise ConfigError(f"{task_dir.name!r} is a {kind} task; frame-level probing covers {', '.join(FRAME_KINDS)}. "
                          "Use `mirkit probe` for clip-level tasks.")
    if seeds < 1:
        raise ConfigError(f"seeds={seeds}: need at least 1 (3 or more for a mean +- std).")
    base = config or FrameProbeConfig()
    base.validate()
    layers = frame_layers(encoder, kind, layers, frame_rate_hz=frame_rate_hz)
    manifest = task_dir / "manifest.jsonl"
    entries = read_manifest(manifest)
    report = extract(manifest, store=store, progress=progress,
                     config=ExtractConfig(encoder=encoder, layers=layers, pooling="none", weights_dir=weights_dir,
                                          device=device, frame_rate_hz=frame_rate_hz, loudness=loudness))
    record_extraction(out / "extract.json", report, encoder)
    items = FeatureStore(store).recipe(report.recipe)
    check_results_recipe(out, items.recipe.recipe_id, force=force)
    skipped: list[dict] = []
    by_split = entries_by_split(entries, manifest, report, kind=kind, skipped=skipped)
    by_split = {s: _long_enough(items, rows, skipped) for s, rows in by_split.items()}
    write_jsonl(out / "skipped.jsonl", skipped)
    for split, rows in by_split.items():
        if not rows:
            raise ConfigError(f"task {task_dir.name!r} has no usable {split} clips for {encoder!r} ({len(skipped)} "
                              f"skipped with their reasons in {out / 'skipped.jsonl'}; extraction errors in "
                              f"{report.errors_path}).")
    targets = FrameTargets(kind)
    jobs = [(f"layer{k}", [k]) for k in items.recipe.layers]
    if weighted:
        first = by_split["train"][0][0]
        dims = {k: items.read_frames(k, [first])[0][0].shape[-1] for k in items.recipe.layers}
        mixed = weighted_layers(dims)
        if mixed:
            jobs.append(("weighted", mixed))
    results_dir = out / "results"

    def job_id(name: str, seed: int) -> str:
        return f"{safe_stem(encoder)}__{name}__{base.head}__seed{seed}"

    trained = 0
    context = {"task": task_dir.name, "kind": kind, "encoder": encoder, "recipe_id": items.recipe.recipe_id,
               "pooling": "none", "extract_frame_rate_hz": frame_rate_hz, "loudness": loudness, "head": base.head,
               "outputs": targets.output_dim,
               "tempo_range_bpm": tempo_range(e.labels for _, e in by_split["train"]) if kind == "beat" else None}
    for name, job_layers in jobs:
        todo = [s for s in range(seeds) if force or not (results_dir / f"{job_id(name, s)}.json").is_file()]
        if todo:
            trained += _train_job(items, by_split, targets, base, name=name, layers=job_layers, seeds=todo, out=out,
                                  job_id=job_id, context=context)
    summary: dict[str, object] = {"task": task_dir.name, "kind": kind, "encoder": encoder,
                                  "recipe_id": items.recipe.recipe_id, "pooling": "none",
                                  "clips": {s: len(v) for s, v in by_split.items()}, "skipped_clips": len(skipped),
                                  "model": base.head, "seeds": seeds, "layers": {},
                                  "jobs": {"trained": trained, "reused": len(jobs) * seeds - trained}}
    for name, job_layers in jobs:
        paths = [results_dir / f"{job_id(name, s)}.json" for s in range(seeds)]
        if all(p.is_file() for p in paths):
            runs = [json.loads(p.read_text()) for p in paths]
            summary["layers"][name] = {**aggregate(runs), "layer_indices": job_layers,  # type: ignore[index]
                                       "frame_rate_hz": runs[0]["frame_rate_hz"]}
    atomic_write_json(out / "summary.json", summary)
    return summary


__all__ = ["FRAME_KINDS", "frame_rate", "probe_timed_task"]
