"""Tuning on the time-resolved tasks (frame-level kinds: beat, chords, notes, onsets...): the encoder in the graph and a
frame-level head of ``mirkit probe`` (linear, MLP or the small TCN) on every output frame.

This module holds the model, the choice of layers and the task audio with its time-stamped labels;
:mod:`mirkit.tune.timed_loop` trains and scores it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mirkit.adapt.timed.heads import FrameHead
from mirkit.adapt.timed.windows import covering_windows
from mirkit.encoders.base import Encoder
from mirkit.encoders.spec import EncoderSpec
from mirkit.errors import ConfigError
from mirkit.kinds import FrameKind
from mirkit.tune.data import ClipSet, TaskAudio, load_task_audio
from mirkit.tune.model import layer_index


def choose_frame_layers(spec: EncoderSpec, layer: str, kind: FrameKind) -> list[int]:
    """The layers a frame-level head reads, among those fast enough for ``kind`` (its ``min_frame_rate_hz``).

    ``auto``: a learned weighting of all fast layers when they share one width and frame rate
    (transformers), else the deepest fast layer that is not an output of logits; ``weighted``: the
    largest group of fast layers of equal width and rate; or an index.
    """
    floor = kind.min_frame_rate_hz
    fast = [i for i, l in enumerate(spec.layers) if l.frame_rate_hz >= floor]
    if not fast:
        raise ConfigError(f"encoder {spec.name!r} has no layer at {floor:g} fps or more, which the {kind.name} task needs "
                          f"(its fastest runs at {max(l.frame_rate_hz for l in spec.layers):.3g} fps).")

    def grid(i: int) -> tuple[int, float]:
        return spec.layers[i].dim, round(spec.layers[i].frame_rate_hz, 6)

    if layer in ("auto", "weighted"):
        groups: dict[tuple[int, float], list[int]] = {}
        for i in fast:
            groups.setdefault(grid(i), []).append(i)
        largest = max(groups.values(), key=len)
        if layer == "weighted" or len(groups) == 1:
            if len(largest) > 1:
                return largest
            if layer == "weighted":
                raise ConfigError(f"encoder {spec.name!r} has no two layers of equal width and frame rate at "
                                  f"{floor:g} fps or more to weight; pass --layer N (one of {fast}).")
        hidden = [i for i in fast if not spec.layers[i].name.endswith("logits")]
        return [hidden[-1] if hidden else fast[-1]]
    index = layer_index(spec, layer)
    if index not in fast:
        raise ConfigError(f"--layer {index} of {spec.name!r} runs at {spec.layers[index].frame_rate_hz:.3g} fps, below "
                          f"the {floor:g} fps the {kind.name} task needs; choose one of {fast}.")
    return [index]


class FrameTuneModel(nn.Module):
    """Encoder + per-layer standardisation + :class:`~mirkit.adapt.timed.heads.FrameHead`.

    ``forward(waveform, lengths)`` returns ``(logits (batch, frames, outputs), valid frames (batch,))``;
    frame ``j`` of an input starting at sample ``s`` sits at ``s / sample_rate + j / frame_rate_hz``
    seconds, as in the feature store. ``norm_*`` buffers hold the standardisation fitted on training
    frames.
    """

    def __init__(self, encoder: Encoder, layers: list[int], *, kind: FrameKind, head: str = "linear") -> None:
        super().__init__()
        self.encoder, self.layers, self.kind = encoder, layers, kind
        grids = {(encoder.spec.layers[i].dim, encoder.spec.layers[i].frame_rate_hz) for i in layers}
        if len(grids) != 1:
            raise ConfigError(f"layers {layers} of {encoder.spec.name!r} differ in width or frame rate "
                              f"({sorted(grids)}); a weighted frame head needs one grid.")
        dim, self.frame_rate_hz = grids.pop()
        self.head = FrameHead(layers=len(layers), dim=dim, outputs=kind.outputs, head=head)
        self.register_buffer("norm_mean", torch.zeros(len(layers), dim))
        self.register_buffer("norm_std", torch.ones(len(layers), dim))

    def features(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unstandardised frames ``(batch, layers, frames, dim)`` and valid frames per item."""
        out = self.encoder(waveform, lengths, layers=self.layers)
        frames = min(out.hidden[i].shape[1] for i in self.layers)
        x = torch.stack([out.hidden[i][:, :frames].float() for i in self.layers], dim=1)
        return x, out.lengths[self.layers[0]].clamp(max=frames)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, frames = self.features(waveform, lengths)
        x = (x - self.norm_mean[None, :, None]) / self.norm_std[None, :, None]
        return self.head(x), frames


def load_timed_audio(task_dir: Path, *, kind: FrameKind, sample_rate: int, min_duration_s: float,
                     loudness: str = "none", progress: bool = True) -> TaskAudio:
    """The task's clips with their whole label dicts (sidecar files read: a transcription clip's note
    list); a clip whose labels cannot train or score (unsorted beats, a chord outside the clip, ...) is
    skipped with its reason, like a file that does not decode."""
    audio = load_task_audio(task_dir, label=None, sample_rate=sample_rate, min_duration_s=min_duration_s,
                            loudness=loudness, progress=progress)
    for split, clips in audio.splits.items():
        kept = ClipSet([], [], [])
        for wave, labels, path in zip(clips.waves, clips.labels, clips.paths):
            try:
                labels = kind.read_labels(dict(labels), folder=task_dir)  # type: ignore[call-overload]
            except (OSError, ValueError, KeyError) as exc:
                audio.skipped.append({"path": path, "reason": f"labels unreadable ({exc})"})
                continue
            problem = kind.label_problem(labels, duration_s=len(wave) / sample_rate)
            if problem:
                audio.skipped.append({"path": path, "reason": f"bad labels: {problem}"})
                continue
            kept.waves.append(wave)
            kept.labels.append(labels)
            kept.paths.append(path)
        if not kept.waves:
            raise ConfigError(f"task {task_dir.name!r} has no {split} clip with usable {kind.name} labels "
                              f"({len(audio.skipped)} skipped, e.g. {audio.skipped[-1]['reason'] if audio.skipped else '-'}); "
                              "check it with `mirkit data validate`.")
        audio.splits[split] = kept
    return audio


def clip_frame_times(length: int, *, sample_rate: int, frame_rate_hz: float) -> np.ndarray:
    """Frame times of a whole clip of ``length`` samples (for statistics over training targets)."""
    return np.arange(max(1, int(length / sample_rate * frame_rate_hz))) / frame_rate_hz


__all__ = ["FrameTuneModel", "choose_frame_layers", "clip_frame_times", "covering_windows", "load_timed_audio"]
