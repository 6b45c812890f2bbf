"""``mirkit analyze``: every analysis head of a bundle on a folder of music, one feature extraction per encoder.

The heads are grouped by the features they read (encoder, level policy, frame rate); each group is
extracted once through the feature store (frames and clip vectors together, so a rerun resumes and
reuses what is stored) and every head of the group reads it. Clip-level heads (key, instrument, tags)
read each file's mean vector over the whole file; frame-level heads (beats, chords, notes) read its
frames and are decoded as in the benchmark. The outputs of a head's seeds are averaged.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mirkit.adapt.predict import best_job
from mirkit.adapt.probe import TrainedProbe
from mirkit.adapt.timed.predict import TrainedFrameHead
from mirkit.analysis.bundle import Bundle, HeadEntry, parse_tasks
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.inputs import scan_inputs
from mirkit.features.store import FeatureStore


@dataclass
class LoadedHead:
    """One task's heads (a head per seed) and what they read."""

    entry: HeadEntry
    clip: list[TrainedProbe] = field(default_factory=list)
    frame: list[TrainedFrameHead] = field(default_factory=list)

    @property
    def layers(self) -> list[int]:
        return list(self.clip[0].layers) if self.clip else [int(k) for k in self.frame[0].context["layers"]]

    @property
    def group(self) -> tuple[str, str, float | None]:
        return self.entry.encoder, self.entry.loudness, self.entry.frame_rate_hz


def load_heads(bundle: Bundle, tasks: list[str]) -> dict[str, LoadedHead]:
    """The heads of ``tasks`` from ``bundle`` (each task's folder is a probe run cut down to one job)."""
    heads = {}
    for task in tasks:
        entry = bundle.entry(task)
        _, model_dirs, _ = best_job(bundle.head_dir(task))
        head = LoadedHead(entry)
        if entry.level == "frame":
            head.frame = [TrainedFrameHead(d) for d in model_dirs]
        else:
            head.clip = [TrainedProbe.load(d) for d in model_dirs]
        heads[task] = head
    return heads


@dataclass
class AnalyzeReport:
    """What one analysis run did: per file its analysis, the files skipped and why, the time spent."""

    results: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    audio_s: float = 0.0
    wall_s: float = 0.0
    extract_s: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        speed = f", {self.audio_s / self.wall_s:.1f}x real time" if self.wall_s > 0 and self.audio_s > 0 else ""
        line = (f"Analysed {len(self.results):,}/{len(self.results) + len(self.skipped):,} files "
                f"({self.audio_s / 60:.1f} min of audio) in {self.wall_s:.1f} s{speed}.")
        if self.skipped:
            counts: dict[str, int] = defaultdict(int)
            for row in self.skipped:
                counts[row["reason"]] += 1
            line += " Skipped " + ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items())) + "."
        return line


def collect_inputs(sources: list[str | Path]) -> tuple[list[str], list[dict[str, str]]]:
    """Audio files under each source (folder, file or manifest), in order and without repeats; what is not
    audio is returned as skipped with its reason."""
    paths: list[str] = []
    skipped: list[dict[str, str]] = []
    for source in sources:
        if not Path(source).exists():
            raise ConfigError(f"input {str(source)!r} does not exist; pass audio files or folders of them.")
        found, not_audio = scan_inputs(source)
        paths += [p for p in found if p not in paths]
        skipped += [{"path": p, "reason": r, "message": m} for p, r, m in not_audio]
    return paths, skipped


def _skip_reasons(items, paths: list[str]) -> dict[str, dict[str, str]]:
    """The latest recorded error of each of ``paths`` in a recipe's errors file."""
    wanted, out = set(paths), {}
    for record in items.errors():
        if record.get("path") in wanted:
            out[record["path"]] = {"path": record["path"], "reason": str(record.get("reason")),
                                   "message": str(record.get("message"))}
    return out


def _clip_result(head: LoadedHead, pooled: np.ndarray) -> list[dict[str, Any]]:
    """Per file the clip head's prediction and class scores (``pooled``: ``(files, layers, dim)``)."""
    probes = head.clip
    features = pooled[:, 0] if pooled.shape[1] == 1 else pooled
    outputs = np.mean([probe.predict_outputs(features) for probe in probes], axis=0)
    targets = probes[0].targets
    rows = []
    for output, value in zip(outputs, targets.decode(outputs)):
        row = targets.prediction_row("", output, value, top_k=len(targets.classes))
        row.pop("path", None)
        rows.append(row)
    return rows


def _shape_clip(task: str, row: dict[str, Any]) -> dict[str, Any]:
    """A clip head's row as the analysis JSON names it."""
    scores = row["scores"]
    if task == "key":
        return {"key": row["prediction"], "confidence": scores.get(row["prediction"]),
                "scores": dict(list(scores.items())[:5])}
    if task == "instrument":
        return {"instrument": row["prediction"], "scores": scores}
    return {"tags": row["prediction"], "scores": scores}


def _frame_result(head: LoadedHead, per_layer: dict[int, list], index: int) -> dict[str, Any]:
    """One file's decoded events from the frame head's seeds (activations averaged)."""
    first = head.frame[0]
    layers = head.layers
    times = per_layer[layers[0]][index][1]
    frames = np.stack([per_layer[k][index][0] for k in layers]).astype(np.float32)
    activation = np.mean([h.activations(frames) for h in head.frame], axis=0)
    rate = float(first.context["frame_rate_hz"])
    return first.kind.to_row(first.kind.decode(activation, times, rate_hz=rate, context=first.context))


def analyze_paths(paths: list[str], *, bundle: Bundle, tasks: list[str], store: str | Path,
                  progress: bool = True) -> AnalyzeReport:
    """Analyse ``paths`` with ``bundle``'s heads of ``tasks``; returns a report with one result per file
    that every needed encoder could read (the others are skipped with their reason)."""
    started = time.perf_counter()
    report = AnalyzeReport()
    heads = load_heads(bundle, tasks)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for task, head in heads.items():
        groups[head.group].append(task)
    results: dict[str, dict[str, Any]] = {p: {"path": p} for p in paths}
    missing: dict[str, dict[str, str]] = {}
    for (encoder, loudness, rate), group_tasks in groups.items():
        layers = sorted({k for t in group_tasks for k in heads[t].layers})
        config = ExtractConfig(encoder=encoder, layers=",".join(map(str, layers)), pooling="none",
                               frame_rate_hz=rate, loudness=loudness)
        extracted = extract(paths, store=store, config=config, progress=progress)
        report.extract_s[encoder] = round(extracted.wall_s, 2)
        items = FeatureStore(store).recipe(extracted.recipe)
        done = [p for p in paths if p in extracted.item_ids]
        missing.update(_skip_reasons(items, [p for p in paths if p not in extracted.item_ids]))
        if not done:
            continue
        ids = [extracted.item_ids[p] for p in done]
        for p, item in zip(done, ids):
            results[p].setdefault("duration_s", round(float(items.read_meta(item).get("duration_s", 0.0)), 3))
        frame_tasks = [t for t in group_tasks if heads[t].frame]
        per_layer = {k: items.read_frames(k, ids) for k in sorted({k for t in frame_tasks for k in heads[t].layers})}
        for task in group_tasks:
            head = heads[task]
            if head.clip:
                pooled = np.stack([items.read_pooled(k, ids) for k in head.layers], axis=1)
                for p, row in zip(done, _clip_result(head, pooled)):
                    results[p][task] = _shape_clip(task, row)
            else:
                for i, p in enumerate(done):
                    results[p][task] = _frame_result(head, per_layer, i)
    for p in paths:
        if p in missing or not all(t in results[p] for t in tasks):
            report.skipped.append(missing.get(p, {"path": p, "reason": "not_analysed",
                                                  "message": "an encoder could not read it"}))
        else:
            report.results.append(results[p])
    report.audio_s = float(sum(r.get("duration_s", 0.0) for r in report.results))
    report.wall_s = time.perf_counter() - started
    return report


def analyze(path: str | Path | list[str | Path], *, tasks: str | None = None, heads: str | Path | None = None,
            store: str | Path | None = None, progress: bool = False) -> dict[str, Any] | list[dict[str, Any]]:
    """Key, tempo, beats, chords, notes, instrument and tags of one audio file (a dict) or of every audio file
    under a folder or in a list (a list of dicts, one per file read; files that cannot be read are left out).

    Args:
        path: an audio file, a folder (searched recursively), a manifest, or a list of them.
        tasks: comma list of analysis tasks (default: every task of the bundle).
        heads: an analysis bundle folder (default: the heads shipped with mirkit).
        store: feature store (default: ``$MIRKIT_CACHE/analyze-features``; a second call reuses it).

    Example:
        >>> import mirkit
        >>> result = mirkit.analyze("song.flac")                    # doctest: +SKIP
        >>> result["key"]["key"], result["beats"]["tempo_bpm"]     # doctest: +SKIP
        ('D:minor', 121.3)
    """
    from mirkit.files import cache_dir

    sources = list(path) if isinstance(path, (list, tuple)) else [path]
    paths, _ = collect_inputs(sources)
    bundle = Bundle.load(heads)
    report = analyze_paths(paths, bundle=bundle, tasks=parse_tasks(tasks) if tasks else bundle.tasks,
                           store=store or cache_dir("analyze-features"), progress=progress)
    single = len(sources) == 1 and Path(sources[0]).is_file() and Path(sources[0]).suffix not in (".jsonl", ".txt")
    if single:
        if not report.results:
            reason = report.skipped[0] if report.skipped else {"reason": "unknown", "message": ""}
            raise ConfigError(f"{sources[0]} could not be analysed: {reason['reason']} ({reason['message']}).")
        return report.results[0]
    return report.results


__all__ = ["AnalyzeReport", "LoadedHead", "analyze", "analyze_paths", "collect_inputs", "load_heads"]
