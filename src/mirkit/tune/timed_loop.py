"""The training loop of :mod:`mirkit.tune.loop` for time-resolved tasks.

Training crops carry their labels along: each crop's beat, chord and note times are moved by the
crop's offset and turned into targets on the crop's own frame times (the widening and the chord
vocabulary of the task's kind, :mod:`mirkit.kinds`); padding frames are left out of the loss.
Evaluation runs the model over consecutive windows covering each whole clip (the last one
overlapping its neighbour, so no tail is lost), joins their frames and decodes them as
``mirkit probe`` does (beat tracker, Viterbi chords, note events), so tuned and probed models are
scored alike. The headline (beat F-measure, chord ``majmin``, note F1) chooses the best epoch on
the validation split; the test split is scored once, at the end.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mirkit.adapt.timed.fit import Clip, evaluate_clips, frame_loss, positive_weight
from mirkit.data.label_rules import relabel_timed
from mirkit.errors import TrainingError
from mirkit.kinds import FrameKind
from mirkit.kinds.labels import LOWEST_KEY, PIANO_KEYS
from mirkit.tune.data import ClipSet, pad_batch
from mirkit.tune.inference import autocast, set_mode
from mirkit.tune.loop import Trainer
from mirkit.tune.methods import get_method
from mirkit.tune.timed import FrameTuneModel, clip_frame_times, covering_windows


def frame_outputs(model: FrameTuneModel, waves: list[np.ndarray], *, window_samples: int, batch_size: int,
                  device: torch.device, method: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per clip ``(logits (frames, outputs), times_s (frames,))`` over windows covering the whole clip."""
    set_mode(model, False, get_method(method))
    rate, sample_rate = model.frame_rate_hz, model.encoder.spec.sample_rate
    hop = sample_rate / rate
    pieces = [(i, start, wave[start: start + window_samples]) for i, wave in enumerate(waves)
              for start in covering_windows(len(wave), window_samples=window_samples, hop_samples=hop)]
    pieces.sort(key=lambda p: len(p[2]))  # similar lengths share a batch: little padding
    found: dict[int, list[tuple[int, np.ndarray]]] = {i: [] for i in range(len(waves))}
    with torch.no_grad(), autocast(device):
        for first in range(0, len(pieces), batch_size):
            chunk = pieces[first: first + batch_size]
            wave, lengths = pad_batch([p for _, _, p in chunk])
            logits, frames = model(wave.to(device), lengths.to(device))
            logits, frames = logits.float().cpu().numpy(), frames.cpu().numpy()
            for (i, start, _), out, n in zip(chunk, logits, frames):
                found[i].append((start, out[: max(1, int(n))]))
    result = []
    for i in range(len(waves)):
        parts, times, last = [], [], -math.inf
        for start, out in sorted(found[i], key=lambda p: p[0]):
            t = start / sample_rate + np.arange(len(out)) / rate
            keep = t > last + 0.5 / rate  # an overlapping last window adds only frames after its neighbour's
            parts.append(out[keep])
            times.append(t[keep])
            if keep.any():
                last = float(t[keep][-1])
        result.append((np.concatenate(parts).astype(np.float32), np.concatenate(times)))
    return result


def activations(kind: FrameKind, logits: np.ndarray) -> np.ndarray:
    """Frame probabilities (the kind's activation: a softmax over classes, or a sigmoid per output)."""
    return kind.activate(torch.from_numpy(logits)).numpy()


class FrameTrainer(Trainer):
    """:class:`~mirkit.tune.loop.Trainer` with the frame-level steps (see the module docstring)."""

    model: FrameTuneModel

    def __init__(self, model: FrameTuneModel, splits: dict[str, ClipSet], targets: FrameKind, **kwargs) -> None:
        super().__init__(model, splits, targets, **kwargs)  # type: ignore[arg-type]
        self.sample_rate = model.encoder.spec.sample_rate
        self.rate = model.frame_rate_hz
        self.pos_weight: torch.Tensor | None = None

    def _encode(self, labels: dict[str, object], times_s: np.ndarray) -> np.ndarray:
        return self.targets.encode(labels, times_s, rate_hz=self.rate)  # type: ignore[call-arg]

    def fit_standardisation(self) -> None:
        """Mean and spread of every layer's frames over the training clips (covering windows, valid frames)."""
        if not self.spec.standardise_features:
            return
        set_mode(self.model, False, self.spec)
        pieces = [wave[s: s + self.crop] for wave in self.splits["train"].waves
                  for s in covering_windows(len(wave), window_samples=self.crop)]
        total = squares = None
        count = 0
        with torch.no_grad(), autocast(self.device):
            for first in range(0, len(pieces), self.config.batch_size):
                wave, lengths = pad_batch(pieces[first: first + self.config.batch_size])
                x, frames = self.model.features(wave.to(self.device), lengths.to(self.device))
                mask = (torch.arange(x.shape[2], device=x.device)[None] < frames[:, None]).to(torch.float64)
                x = x.to(torch.float64) * mask[:, None, :, None]
                part, part_sq = x.sum(dim=(0, 2)), (x * x).sum(dim=(0, 2))
                total = part if total is None else total + part
                squares = part_sq if squares is None else squares + part_sq
                count += int(frames.sum())
        if total is None or count == 0:
            raise TrainingError("no training frames to fit the feature standardisation on; the clips are shorter "
                                "than one frame of the encoder.")
        mean = total / count
        std = (squares / count - mean * mean).clamp(min=0).sqrt()
        scale = torch.where(std > 1e-6 * mean.abs().clamp(min=1.0), std, torch.ones_like(std))
        self.model.norm_mean.copy_(mean.to(self.model.norm_mean.dtype))
        self.model.norm_std.copy_(scale.to(self.model.norm_std.dtype))

    def prepare_targets(self) -> None:
        train = self.splits["train"]
        targets = [self._encode(labels, clip_frame_times(len(wave), sample_rate=self.sample_rate,  # type: ignore[arg-type]
                                                         frame_rate_hz=self.rate))
                   for wave, labels in zip(train.waves, train.labels)]
        weight = positive_weight(self.targets, targets)
        self.pos_weight = None if weight is None else weight.to(self.device)

    def batch_loss(self, idx: np.ndarray, offsets: np.ndarray, wave: torch.Tensor, lengths: torch.Tensor,
                   changes: list[dict[str, float]] | None = None) -> torch.Tensor:
        """The frame-level loss; a crop whose augmentations changed its labels (``changes``) gets targets
        from :func:`~mirkit.data.label_rules.relabel_timed`: transposed chords and notes, and a frame grid
        scaled by its speed change."""
        with autocast(self.device):
            logits, frames = self.net(wave.to(self.device), lengths.to(self.device))
        logits = logits.float()
        grid = np.arange(logits.shape[1]) / self.rate
        rows = []
        for k, (i, offset) in enumerate(zip(idx, offsets)):
            labels, scale = self.splits["train"].labels[i], 1.0
            if changes and changes[k]:
                labels, scale = relabel_timed(str(self.label), labels, changes[k])  # type: ignore[arg-type]
            rows.append(self._encode(labels, offset / self.sample_rate + grid * scale))  # type: ignore[arg-type]
        y = np.stack(rows)
        mask = torch.arange(logits.shape[1], device=logits.device)[None] < frames[:, None]
        return frame_loss(self.targets, logits, torch.from_numpy(y).to(self.device), mask, self.pos_weight)

    def accept_change(self, index: int, changes: dict[str, float]) -> bool:
        """A pitch shift that would move a note off the piano's 88 keys (the transcription targets) is refused."""
        if self.label != "notes" or not changes.get("semitones"):
            return True
        shift = int(round(changes["semitones"]))
        notes = self.splits["train"].labels[index]["notes"]  # type: ignore[index]
        return all(LOWEST_KEY <= int(n["pitch"]) + shift < LOWEST_KEY + PIANO_KEYS for n in notes  # type: ignore[union-attr]
                   if LOWEST_KEY <= int(n["pitch"]) < LOWEST_KEY + PIANO_KEYS)

    def score(self, split: str, *, with_loss: bool = False) -> tuple[float, dict[str, float]]:
        kind, clips = self.targets, self.splits[split]
        outputs = frame_outputs(self.model, clips.waves, window_samples=self.crop, batch_size=self.config.batch_size,
                                device=self.device, method=self.config.method)
        scored = [Clip(np.empty(0), times, np.empty(0), labels, len(wave) / self.sample_rate)  # type: ignore[arg-type]
                  for (_, times), labels, wave in zip(outputs, clips.labels, clips.waves)]
        scores = evaluate_clips(kind, scored, [activations(kind, logits) for logits, _ in outputs], rate_hz=self.rate,
                                context=kind.decode_context(self.splits["train"].labels))  # type: ignore[arg-type]
        loss = math.nan
        if with_loss:
            logits = torch.from_numpy(np.concatenate([out for out, _ in outputs]))[None]
            y = np.concatenate([self._encode(labels, times) for (_, times), labels in zip(outputs, clips.labels)])  # type: ignore[arg-type]
            pos_weight = None if self.pos_weight is None else self.pos_weight.cpu()
            loss = float(frame_loss(kind, logits, torch.from_numpy(y)[None], None, pos_weight))
        return loss, scores


__all__ = ["FrameTrainer", "activations", "frame_outputs"]
