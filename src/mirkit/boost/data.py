"""What ``mirkit boost`` trains on, all from the feature store (extracted once, then reused by every
system, fraction and seed): the task model's handcrafted input frames, the injected encoder layers
resampled onto those frames' times, the frame targets, and the low-data subsets of the training split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirkit.adapt.results import record_extraction
from mirkit.adapt.targets import Targets
from mirkit.adapt.timed.run import frame_layers, frame_rate
from mirkit.data.manifest import SPLITS, read_manifest
from mirkit.data.task_folder import clip_path, entries_by_split, load_task
from mirkit.errors import ConfigError
from mirkit.features.extract import ExtractConfig, extract
from mirkit.features.store import FeatureStore
from mirkit.files import safe_stem
from mirkit.kinds import FrameKind, get_kind


@dataclass
class BoostClip:
    """One clip: input frames ``x (frames, bins)``, frame ``times_s``, ``target`` per frame, labels."""

    path: str
    piece: str
    x: np.ndarray
    times_s: np.ndarray
    target: np.ndarray
    labels: dict[str, object]
    duration_s: float


@dataclass
class BoostData:
    """Per split the clips; ``rate_hz`` and ``bins`` of the input; clips left out, with reasons."""

    splits: dict[str, list[BoostClip]]
    rate_hz: float
    bins: int
    input_encoder: str
    skipped: list[dict[str, str]] = field(default_factory=list)
    targets: Targets | None = None  # clip-level tasks (tagging): the label encoding; None for frame tasks


@dataclass
class Injected:
    """An encoder's chosen layers resampled onto every clip's input frames: ``{path: [(frames, dim_l)]}``."""

    encoder: str
    layers: list[int]
    dims: list[int]
    rates_hz: list[float]
    frames: dict[str, list[np.ndarray]]


def load_inputs(task_dir: Path, *, kind: str, input_encoder: str, store: str | Path, out: Path,
                only: tuple[str, ...] = SPLITS, targets_of: BoostData | None = None,
                progress: bool = True) -> BoostData:
    """The task model's input frames and targets for every usable clip of the ``only`` splits (bad labels,
    unreadable note lists and clips too short for two frames are skipped with their reason).
    ``targets_of``: encode clip-level labels as that data does (augmented copies use the originals' classes)."""
    manifest = task_dir / "manifest.jsonl"
    report = extract(manifest, store=store, progress=progress,
                     config=ExtractConfig(encoder=input_encoder, layers="0", pooling="none"))
    record_extraction(out / f"extract-{input_encoder}{'' if only == SPLITS else '-augmented'}.json", report,
                      input_encoder)
    items = FeatureStore(store).recipe(report.recipe)
    skipped: list[dict] = []
    entries = read_manifest(manifest)
    clip_targets = None
    spec = get_kind(kind)
    targets = spec if isinstance(spec, FrameKind) else None
    if targets is not None:
        by_split = entries_by_split(entries, manifest, report.item_ids, kind=targets, skipped=skipped)
    else:  # clip-level: one label per clip
        task = load_task(task_dir)
        label = task.label
        by_split = _clip_entries(entries, manifest, report, label=label, skipped=skipped)
        clip_targets = targets_of.targets if targets_of is not None else Targets.fit(
            kind, [e.labels[label] for _, e in by_split["train"]], task.vocabulary)
    splits: dict[str, list[BoostClip]] = {}
    rate = None
    for split, rows in by_split.items():
        if split not in only:
            continue
        clips = []
        for (item, entry), (frames, times) in zip(rows, items.read_frames(0, [item for item, _ in rows])):
            if len(times) < 2:
                skipped.append({"path": entry.path, "reason": "too_short", "message": f"{len(times)} input frame(s)"})
                continue
            rate = rate or frame_rate(times)
            path = clip_path(entry, manifest)
            if targets is not None:
                target, labels = targets.encode(entry.labels, times, rate_hz=rate), entry.labels
            else:
                labels = entry.labels[label]
                target = clip_targets.encode([labels])[0]  # type: ignore[union-attr]
            clips.append(BoostClip(path, entry.piece, frames.astype(np.float32), times, target, labels,
                                   entry.duration_s))
        if not clips:
            raise ConfigError(f"task {task_dir.name!r} has no usable {split} clips ({len(skipped)} skipped, e.g. "
                              f"{skipped[0] if skipped else '-'}); check it with `mirkit data validate`.")
        splits[split] = clips
    return BoostData(splits, float(rate), splits["train"][0].x.shape[1], input_encoder, skipped,  # type: ignore[arg-type]
                     clip_targets)


def _clip_entries(entries, manifest: Path, report, *, label: str, skipped: list[dict]) -> dict[str, list]:
    """Per split ``(item id, entry)`` of the clips with features and a ``label`` field."""
    by_split: dict[str, list] = {s: [] for s in SPLITS}
    for entry in entries:
        item = report.item_ids.get(clip_path(entry, manifest))
        if item is None or label not in entry.labels:
            skipped.append({"path": entry.path, "reason": "no_features" if item is None else "bad_labels",
                            "message": "extraction skipped it" if item is None else f"no {label!r} label"})
            continue
        by_split[entry.split].append((item, entry))
    return by_split


def align(frames: np.ndarray, source_times_s: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """``frames`` (at ``source_times_s``) linearly interpolated at ``times_s``; held at the ends."""
    if len(source_times_s) == 1:
        return np.repeat(frames[:1], len(times_s), axis=0).astype(np.float32)
    position = np.interp(times_s, source_times_s, np.arange(len(source_times_s)))
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(source_times_s) - 1)
    weight = (position - low)[:, None]
    return ((1 - weight) * frames[low] + weight * frames[high]).astype(np.float32)


def injected_layers(encoder: str, kind: str, layers: str, *, frame_rate_hz: float | None = None) -> str:
    """The encoder's layers to inject, as a comma list: ``weighted`` is every layer fast enough to align
    with a frame task's frames (all layers for a clip-level task, whose injected frames are aggregated).

    Raises:
        ConfigError: a named layer, or every layer, is too slow for the frame task (names the rates).
    """
    spec = get_kind(kind)
    if not spec.clip_level:  # frames or stems: layers fast enough to align with the task model's frames
        return frame_layers(encoder, spec, "all" if layers == "weighted" else layers, frame_rate_hz=frame_rate_hz)
    from mirkit.encoders.base import parse_layers
    from mirkit.encoders.zoo import get_spec

    return ",".join(str(k) for k in parse_layers("all" if layers == "weighted" else layers, spec=get_spec(encoder)))


def load_injected(data: BoostData, task_dir: Path, *, encoder: str, kind: str, layers: str, store: str | Path,
                  out: Path, weights_dir: str | None = None, frame_rate_hz: float | None = None, device: str = "cpu",
                  progress: bool = True) -> Injected:
    """Extract (or reuse) ``encoder``'s layers for the task and resample them onto each clip's input frames.

    ``layers``: ``weighted`` (every layer fast enough for the task, mixed by learned weights) or an index.

    Raises:
        ConfigError: no layer of the encoder runs fast enough to be aligned with the task's frames (a
            clip-level encoder on a beat task, say), or a clip has no features (extraction skipped it).
    """
    chosen = injected_layers(encoder, kind, layers, frame_rate_hz=frame_rate_hz)
    report = extract(task_dir / "manifest.jsonl", store=store, progress=progress,
                     config=ExtractConfig(encoder=encoder, layers=chosen, pooling="none", weights_dir=weights_dir,
                                          device=device, frame_rate_hz=frame_rate_hz))
    record_extraction(out / f"extract-{safe_stem(encoder)}{'' if len(data.splits) == len(SPLITS) else '-augmented'}.json",
                      report, encoder)
    items = FeatureStore(store).recipe(report.recipe)
    indices = [int(k) for k in chosen.split(",")]
    clips = [c for split in data.splits.values() for c in split]
    missing = [c.path for c in clips if c.path not in report.item_ids]
    if missing:
        raise ConfigError(f"{encoder!r} has no features for {len(missing)} clip(s), e.g. {missing[0]} (extraction "
                          f"errors in {report.errors_path}); fix or remove them from the manifest.")
    ids = [report.item_ids[c.path] for c in clips]
    frames: dict[str, list[np.ndarray]] = {c.path: [] for c in clips}
    dims, rates = [], []
    for layer in indices:
        per_clip = items.read_frames(layer, ids)
        dims.append(int(per_clip[0][0].shape[-1]))
        rates.append(frame_rate(per_clip[0][1]) if len(per_clip[0][1]) > 1 else math.nan)
        for clip, (values, times) in zip(clips, per_clip):
            frames[clip.path].append(align(values, times, clip.times_s))
    return Injected(encoder, indices, dims, rates, frames)


def training_subset(clips: list[BoostClip], *, fraction: float, seed: int,
                    targets: Targets | None = None) -> list[BoostClip]:
    """The clips of ``ceil(fraction x pieces)`` training pieces (at least one), drawn by ``seed``: whole
    pieces, so that no piece is split between what trains and what does not.

    For a clip-level task (``targets``), a draw that would leave a class (a tag) of the full training
    split without any training clip is redrawn to cover every class: pieces are taken in the same
    random order, first each one that brings a class not yet covered, then the next ones up to the
    count (a draw that already covers every class is kept as is).

    Raises:
        ConfigError: when even that cannot cover every class within the count of pieces.
    """
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction {fraction} must be in (0, 1], e.g. 0.01, 0.1 or 1.")
    pieces = sorted({c.piece for c in clips})
    take = max(1, math.ceil(fraction * len(pieces)))
    order = [str(p) for p in np.random.default_rng([seed, 7]).permutation(pieces)]
    chosen = set(order[:take])
    if targets is not None:
        carries = {p: np.zeros(len(targets.classes), dtype=bool) for p in pieces}
        for c in clips:
            carries[c.piece] |= np.asarray(c.target).reshape(-1) > 0  # multi-hot tags
        present = np.any(list(carries.values()), axis=0)
        if (present & ~np.any([carries[p] for p in chosen], axis=0)).any():
            chosen = set(_covering(order, carries, present, take=take, fraction=fraction, seed=seed, targets=targets))
    return [c for c in clips if c.piece in chosen]


def _covering(order: list[str], carries: dict[str, np.ndarray], present: np.ndarray, *, take: int, fraction: float,
              seed: int, targets: Targets) -> list[str]:
    """``take`` pieces in ``order`` that cover every ``present`` class: first those that add a class, then the rest."""
    covered = np.zeros_like(present)
    cover = []
    for piece in order:
        if (carries[piece] & ~covered).any():
            cover.append(piece)
            covered |= carries[piece]
        if not (present & ~covered).any():
            break
    if len(cover) > take:
        lost = [targets.classes[i] for i in np.flatnonzero(present & ~np.any([carries[p] for p in cover[:take]], axis=0))]
        raise ConfigError(f"fraction {fraction:g} (seed {seed}) keeps {take} of {len(carries)} training pieces, too few "
                          f"to give every class a training clip: {len(cover)} are needed, and {take} leave "
                          f"{len(lost)} class(es) without a training clip ({', '.join(lost[:5])}); use a larger "
                          "fraction (a class needs at least one piece).")
    rest = [p for p in order if p not in set(cover)]
    return cover + rest[: take - len(cover)]


__all__ = ["BoostClip", "BoostData", "Injected", "align", "injected_layers", "load_injected", "load_inputs",
           "training_subset"]
