"""Audio for training through the encoder: decoded once into memory, random crops for training,
non-overlapping windows for evaluation. Batch order and crops are a pure function of
``(seed, epoch, batch)``, so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mirkit.audio import load
from mirkit.audio.loudness import apply_loudness
from mirkit.data.manifest import SPLITS, read_manifest
from mirkit.errors import AudioError, ConfigError


@dataclass
class ClipSet:
    """Waveforms and labels of one split."""

    waves: list[np.ndarray]
    labels: list[object]
    paths: list[str]


@dataclass
class TaskAudio:
    splits: dict[str, ClipSet]
    sample_rate: int
    skipped: list[dict[str, str]] = field(default_factory=list)


def load_task_audio(task_dir: Path, *, label: str | None, sample_rate: int, min_duration_s: float,
                    loudness: str = "none", progress: bool = True) -> TaskAudio:
    """Decode every clip of a task folder at ``sample_rate``, levelled by the ``loudness`` policy
    (:mod:`mirkit.audio.loudness`); bad files are skipped with their reason.
    Each clip's label is its ``labels[label]`` (``label=None``: the whole labels dict)."""
    from tqdm import tqdm

    manifest = task_dir / "manifest.jsonl"
    entries = read_manifest(manifest)
    splits = {s: ClipSet([], [], []) for s in SPLITS}
    skipped = []
    for entry in tqdm(entries, desc=f"decode {task_dir.name}", unit="clip", disable=not progress or None):
        path = entry.path if Path(entry.path).is_absolute() else str(task_dir / entry.path)
        try:
            wave, _ = load(path, sample_rate=sample_rate, min_duration_s=min_duration_s)
        except AudioError as exc:
            skipped.append({"path": path, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        splits[entry.split].waves.append(apply_loudness(wave.astype(np.float32), sample_rate=sample_rate,
                                                        policy=loudness))
        splits[entry.split].labels.append(entry.labels if label is None else entry.labels[label])
        splits[entry.split].paths.append(path)
    for split, clips in splits.items():
        if not clips.waves:
            raise ConfigError(f"task {task_dir.name!r} has no usable {split} clips ({len(skipped)} skipped); "
                              "check the manifest with `mirkit data validate`.")
    return TaskAudio(splits, sample_rate, skipped)


def pad_batch(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    out = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        out[i, : len(w)] = torch.from_numpy(w)
    return out, lengths


def train_batches(clips: ClipSet, *, batch_size: int, crop_samples: int, seed: int, epoch: int,
                  start: int = 0, augment: tuple[str, ...] = (), sample_rate: int = 0,
                  accept: Callable[[int, dict[str, float]], bool] | None = None, loudness: str = "none"):
    """Yield ``(batch_index, indices, waveform, lengths, offsets, changes)`` for one epoch from batch
    ``start`` on (``offsets``: each crop's first sample in its clip, for time-resolved labels;
    ``changes``: per crop, the label facets its augmentations changed, e.g. ``{"semitones": 2.0}``).
    ``augment`` names augmentations (:mod:`mirkit.audio.augment`) applied to each crop at
    ``sample_rate``; ``accept(clip index, changes)`` may refuse a label-changing draw for a clip.
    Augmented crops are levelled again by the ``loudness`` policy, so that the encoder sees what
    evaluation shows it (with ``peak`` or ``lufs``, the ``gain`` augmentation is thus undone).

    Clips shorter than the crop are taken whole (padded; lengths say so). The last partial batch
    is dropped when it would hold fewer than 2 clips (batch norm needs 2).
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(clips.waves))
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches = batches[:-1]
    for b in range(start, len(batches)):
        rng = np.random.default_rng([seed, epoch, b, 1])
        waves, offsets = [], []
        for i in batches[b]:
            w = clips.waves[i]
            offset = int(rng.integers(0, len(w) - crop_samples + 1)) if len(w) > crop_samples else 0
            waves.append(w[offset: offset + crop_samples])
            offsets.append(offset)
        changes: list[dict[str, float]] = [{} for _ in waves]
        if augment:
            from mirkit.audio.augment import augment_crop

            draws = np.random.default_rng([seed, epoch, b, 2])
            for k, i in enumerate(batches[b]):
                check = None if accept is None else (lambda ch, i=int(i): accept(i, ch))
                waves[k], changes[k] = augment_crop(waves[k], sample_rate, augment, draws, accept=check)
                waves[k] = apply_loudness(waves[k], sample_rate=sample_rate, policy=loudness)
        wave, lengths = pad_batch(waves)
        yield b, batches[b], wave, lengths, np.asarray(offsets), changes


def batches_per_epoch(clips: ClipSet, batch_size: int) -> int:
    n = -(-len(clips.waves) // batch_size)
    return n - 1 if n > 1 and len(clips.waves) % batch_size == 1 else n


def eval_windows(wave: np.ndarray, *, window_samples: int, min_samples: int) -> list[np.ndarray]:
    """Non-overlapping windows covering the clip; a last piece shorter than a quarter window (or than
    the encoder's minimum) is dropped unless it is the whole clip."""
    pieces = [wave[i: i + window_samples] for i in range(0, len(wave), window_samples)]
    keep = [p for p in pieces if len(p) >= max(min_samples, window_samples // 4)]
    return keep or pieces[:1]
