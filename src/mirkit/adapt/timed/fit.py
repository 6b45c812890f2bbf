"""Fit a frame-level head on frozen features and score it with decoded outputs.

Protocol (the clip-level probe's, per frame): standardise every layer with training-frame
statistics; for each learning rate of a small grid train with AdamW (a per-frame head on shuffled
batches of frames, the temporal head on batches of whole clips, padding masked out of the loss), stop after ``patience`` epochs without a lower
validation loss and keep the best weights; decode the validation clips and keep the learning rate
with the best decoded validation headline (beat F-measure, chord ``majmin``); decode the test clips
once with that head. Everything is seeded; the test split is never looked at before the choice.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mirkit.adapt.fit import standardiser
from mirkit.adapt.probe import ProbeResult
from mirkit.adapt.timed.decode import (
    beats_from_activation,
    chords_from_posteriors,
    downbeats_from_beats,
    notes_from_activations,
    tempo_from_activation,
    tempo_range,
)
from mirkit.adapt.timed.heads import HEADS, FrameHead, StackedFrameHeads
from mirkit.adapt.timed.targets import IGNORE, KEYS, FrameTargets
from mirkit.errors import ConfigError

FRAME_BATCH = 4096  # frames per step of a per-frame (linear, MLP) head
#: beats before this time are left out of the beat scores of short suite clips (mir_eval's 5 s is for songs)
CLIP_SKIP_S = 1.0


@dataclass
class FrameProbeConfig:
    head: str = "linear"  # linear | mlp | tcn
    learning_rates: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    weight_decay: float = 1e-4
    max_epochs: int = 40
    patience: int = 6
    batch_clips: int = 4  # whole clips per step of the temporal (tcn) head; per-frame heads take FRAME_BATCH frames
    dropout: float = 0.2
    seed: int = 0

    def validate(self) -> None:
        if self.head not in HEADS:
            raise ConfigError(f"head={self.head!r} must be one of {', '.join(HEADS)}.")
        if not self.learning_rates or min(self.learning_rates) <= 0:
            raise ConfigError(f"learning_rates={self.learning_rates} must be positive numbers.")


@dataclass
class Clip:
    """One clip's frozen frames ``(layers, frames, dim)``, frame times, targets and labels."""

    frames: np.ndarray
    times_s: np.ndarray
    target: np.ndarray
    labels: dict[str, object]
    duration_s: float


def _batches(clips: list[Clip], order: np.ndarray, size: int):
    for start in range(0, len(order), size):
        chosen = [clips[i] for i in order[start : start + size]]
        longest = max(c.frames.shape[1] for c in chosen)
        x = np.zeros((len(chosen), chosen[0].frames.shape[0], longest, chosen[0].frames.shape[2]), dtype=np.float32)
        target_shape = (len(chosen), longest) + chosen[0].target.shape[1:]
        y = np.full(target_shape, IGNORE if chosen[0].target.dtype == np.int64 else 0, dtype=chosen[0].target.dtype)
        mask = np.zeros((len(chosen), longest), dtype=bool)
        for i, clip in enumerate(chosen):
            n = clip.frames.shape[1]
            x[i, :, :n], y[i, :n], mask[i, :n] = clip.frames, clip.target, True
        yield torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask)


def frame_loss(kind: str, logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None,
          pos_weight: torch.Tensor | None) -> torch.Tensor:
    """Mean loss over the frames ``mask`` keeps (``None``: every frame)."""
    if mask is not None:
        logits, y = logits[mask], y[mask]
    else:
        logits, y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1, *y.shape[2:])
    if kind == "chords":
        return nn.functional.cross_entropy(logits, y, ignore_index=IGNORE)
    return nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)


def positive_weight(kind: str, targets: list[np.ndarray]) -> torch.Tensor | None:
    """Per-output weight of the positive frames in the binary losses (beat, transcription): the ratio of
    negative to positive training frames, capped at 20 (a beat is one frame in ~20 at 43 fps)."""
    if kind == "chords":
        return None
    positive = np.concatenate(targets).mean(axis=0).clip(1e-3, None)
    return torch.tensor((1 - positive) / positive, dtype=torch.float32).clamp(max=20.0)


def _stacked_loss(kind: str, logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor | None, *,
                  per_copy: bool = False) -> torch.Tensor:
    """The sum over copies of each copy's mean loss (``per_copy``: the ``(copies,)`` losses), in one call:
    ``logits`` is ``(copies, frames, outputs)``, ``y`` the shared ``(frames, ...)`` targets."""
    copies = logits.shape[0]
    if kind == "chords":
        losses = nn.functional.cross_entropy(logits.permute(0, 2, 1), y.expand(copies, -1), ignore_index=IGNORE,
                                             reduction="none")
        counted = (y != IGNORE).sum().clamp(min=1)
        values = losses.sum(dim=1) / counted
    else:
        losses = nn.functional.binary_cross_entropy_with_logits(logits, y.expand_as(logits), pos_weight=pos_weight,
                                                                reduction="none")
        values = losses.mean(dim=(1, 2))
    return values if per_copy else values.sum()


def _activations(model: FrameHead, kind: str, clips: list[Clip]) -> list[np.ndarray]:
    model.eval()
    out = []
    with torch.no_grad():
        for clip in clips:
            logits = model(torch.from_numpy(clip.frames[None]))[0]
            out.append((torch.softmax(logits, -1) if kind == "chords" else torch.sigmoid(logits)).numpy())
    return out


def evaluate_clips(kind: str, clips: list[Clip], activations: list[np.ndarray], *, rate_hz: float,
                   headline_only: bool = False, tempo_range_bpm: tuple[float, float] | None = None) -> dict[str, float]:
    """Decode every clip and score it against its labels (mir_eval through :mod:`mirkit.metrics`);
    ``headline_only`` skips what the choice of a learning rate does not read (the beat task's tempo);
    ``tempo_range_bpm``: the training labels' tempo range, the prior of the tempo decoding."""
    from mirkit.metrics.chords import chord_overlap
    from mirkit.metrics.rhythm import downbeat_f_measure, evaluate_beats, evaluate_tempo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval warns on empty estimates; they score 0
        if kind == "beat":
            beats = [beats_from_activation(a[:, 0], c.times_s, rate_hz=rate_hz) for c, a in zip(clips, activations)]
            downbeats = [downbeats_from_beats(b, a[:, 1], c.times_s) for b, c, a in zip(beats, clips, activations)]
            scores = evaluate_beats([c.labels["beats"] for c in clips], beats, skip_s=CLIP_SKIP_S)
            scores["downbeat_f_measure"] = downbeat_f_measure([c.labels["downbeats"] for c in clips], downbeats)
            if not headline_only and all("bpm" in c.labels for c in clips):
                tempi = [tempo_from_activation(a[:, 0], rate_hz=rate_hz, tempo_range_bpm=tempo_range_bpm)
                         for a in activations]
                scores.update({f"tempo_{k}": v for k, v in
                               evaluate_tempo([float(c.labels["bpm"]) for c in clips], tempi).items()})
            return scores
        if kind == "transcription":
            from mirkit.metrics.transcription import note_f1

            onset_f1, full_f1 = [], []
            for clip, a in zip(clips, activations):
                reference = [(n["onset_s"], n["offset_s"], n["pitch"]) for n in clip.labels["notes"]]
                found = notes_from_activations(a[:, :KEYS], a[:, KEYS:], clip.times_s, rate_hz=rate_hz)
                onset_f1.append(note_f1(reference, found)["f1"])
                full_f1.append(note_f1(reference, found, with_offsets=True)["f1"])
            return {"note_f1": float(np.mean(onset_f1)), "note_f1_offsets": float(np.mean(full_f1))}
        reference, estimate = [], []
        for clip, posteriors in zip(clips, activations):
            segments = clip.labels["chords"]
            reference.append((np.array([[s[0], s[1]] for s in segments], dtype=float), [str(s[2]) for s in segments]))
            found = chords_from_posteriors(posteriors, clip.times_s, rate_hz=rate_hz)
            estimate.append((np.array([[s[0], s[1]] for s in found], dtype=float), [s[2] for s in found]))
        return chord_overlap(reference, estimate)


HEADLINE = {"beat": "f_measure", "chords": "majmin", "transcription": "note_f1"}


def _flat(clips: list[Clip], *, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All frames of ``clips`` as one sequence ``(1, layers, frames, dim)`` with their targets ``(1, frames,
    ...)``; shuffled once when a ``seed`` is given."""
    x = np.concatenate([c.frames for c in clips], axis=1)
    y = np.concatenate([c.target for c in clips])
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(y))
        x, y = x[:, order], y[order]
    return torch.from_numpy(np.ascontiguousarray(x))[None], torch.from_numpy(np.ascontiguousarray(y))[None]


def _epoch_batches(splits: dict[str, list[Clip]], flat, head: str, rng: np.random.Generator, batch_clips: int):
    """One epoch of ``(x, y, mask)`` batches: whole clips for the temporal head, else slices of the
    once-shuffled frames in a random order (a per-frame head sees no context, so frames are
    independent samples and large slices train fast, without copying)."""
    if head == "tcn":
        yield from _batches(splits["train"], rng.permutation(len(splits["train"])), batch_clips)
        return
    x, y = flat
    starts = np.arange(0, x.shape[2], FRAME_BATCH)
    for start in rng.permutation(starts):
        yield x[:, :, start : start + FRAME_BATCH], y[:, start : start + FRAME_BATCH], None


def _train_one(kind: str, splits: dict[str, list[Clip]], *, config: FrameProbeConfig, rate: float, seed: int,
               pos_weight: torch.Tensor | None, outputs: int):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    first = splits["train"][0].frames
    model = FrameHead(layers=first.shape[0], dim=first.shape[2], outputs=outputs, head=config.head,
                      dropout=config.dropout)
    optimiser = torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=config.weight_decay)
    per_frame = config.head != "tcn"
    train_flat = _flat(splits["train"], seed=seed) if per_frame else None
    valid_flat = _flat(splits["valid"]) if per_frame else None
    valid_frames = sum(c.frames.shape[1] for c in splits["valid"])
    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        for x, y, mask in _epoch_batches(splits, train_flat, config.head, rng, config.batch_clips):
            loss = frame_loss(kind, model(x), y, mask, pos_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            if per_frame:
                x, y = valid_flat
                valid_loss = float(frame_loss(kind, model(x), y, None, pos_weight))
            else:
                losses = [float(frame_loss(kind, model(x), y, mask, pos_weight)) * int(mask.sum()) for x, y, mask
                          in _batches(splits["valid"], np.arange(len(splits["valid"])), config.batch_clips)]
                valid_loss = sum(losses) / max(1, valid_frames)
        if valid_loss < best[0] - 1e-6:
            best = (valid_loss, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= config.patience:
            break
    model.load_state_dict(best[2])
    return model, best[1], best[0]


def _train_stacked(kind: str, splits: dict[str, list[Clip]], *, config: FrameProbeConfig,
                   copies: list[tuple[int, float]], pos_weight: torch.Tensor | None, outputs: int):
    """Per-frame heads for every ``(seed, learning rate)`` in ``copies``, trained in one pass: the same
    once-shuffled frame slices (in the first seed's order) feed every copy, each copy has its own seeded
    initialisation, learning rate, early stopping and best checkpoint. Returns ``[(head, best_epoch)]``."""
    first = splits["train"][0].frames
    stack = StackedFrameHeads(seeds=[seed for seed, _ in copies], layers=first.shape[0], dim=first.shape[2],
                              outputs=outputs, head=config.head, dropout=config.dropout)
    optimiser = torch.optim.AdamW([{"params": stack.copy_parameters(k), "lr": rate}
                                   for k, (_, rate) in enumerate(copies)], weight_decay=config.weight_decay)
    rng = np.random.default_rng(copies[0][0])
    train, valid = _flat(splits["train"], seed=copies[0][0]), _flat(splits["valid"])
    best = [(float("inf"), 0, copy.deepcopy(stack.head(k).state_dict())) for k in range(len(copies))]
    for epoch in range(1, config.max_epochs + 1):
        stack.train()
        for x, y, _ in _epoch_batches(splits, train, config.head, rng, config.batch_clips):
            loss = _stacked_loss(kind, stack(x), y[0], pos_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        stack.eval()
        with torch.no_grad():
            losses = _stacked_loss(kind, stack(valid[0]), valid[1][0], pos_weight, per_copy=True).tolist()
        for k, value in enumerate(losses):
            if value < best[k][0] - 1e-6:
                best[k] = (value, epoch, copy.deepcopy(stack.head(k).state_dict()))
        if all(epoch - b[1] >= config.patience for b in best):
            break
    heads = []
    for k, (_, epoch, state) in enumerate(best):
        head = stack.head(k)
        head.load_state_dict(state)
        heads.append((head.eval(), epoch))
    return heads


def fit_frame_probes(splits: dict[str, list[Clip]], *, kind: str, layers: list[int], config: FrameProbeConfig,
                     rate_hz: float, seeds: list[int]) -> list[tuple[ProbeResult, FrameHead, dict[str, np.ndarray]]]:
    """For each seed: train on ``splits["train"]``, choose the learning rate on ``valid``, score ``test``
    once. Returns per seed the result, the head and the standardisation (``mean``, ``scale`` of shape
    ``(layers, 1, dim)``) it expects. Per-frame heads of every seed and learning rate train together
    (:func:`_train_stacked`); the temporal head trains one at a time."""
    config.validate()
    targets = FrameTargets(kind)
    started = time.perf_counter()
    train_frames = np.concatenate([c.frames for c in splits["train"]], axis=1)  # (layers, frames, dim)
    mean, scale = standardiser(train_frames.transpose(1, 0, 2))
    mean, scale = mean.transpose(1, 0, 2), scale.transpose(1, 0, 2)
    scaled = {s: [Clip(((c.frames - mean) / scale).astype(np.float32), c.times_s, c.target, c.labels, c.duration_s)
                  for c in clips] for s, clips in splits.items()}
    pos_weight = positive_weight(kind, [c.target for c in splits["train"]])
    copies = [(seed, rate) for seed in seeds for rate in config.learning_rates]
    tempo_range_bpm = tempo_range(c.labels for c in splits["train"]) if kind == "beat" else None
    if config.head == "tcn":
        trained = [_train_one(kind, scaled, config=config, rate=rate, seed=seed, pos_weight=pos_weight,
                              outputs=targets.output_dim)[:2] for seed, rate in copies]
    else:
        trained = _train_stacked(kind, scaled, config=config, copies=copies, pos_weight=pos_weight,
                                 outputs=targets.output_dim)
    train_s = (time.perf_counter() - started) / len(seeds)
    out = []
    for seed in seeds:
        best = None
        for (copy_seed, rate), (model, epoch) in zip(copies, trained):
            if copy_seed != seed:
                continue
            valid = evaluate_clips(kind, scaled["valid"], _activations(model, kind, scaled["valid"]), rate_hz=rate_hz,
                                   headline_only=True)
            if best is None or valid[HEADLINE[kind]] > best[0][HEADLINE[kind]]:
                best = (valid, rate, epoch, model)
        _, rate, epoch, model = best
        valid = evaluate_clips(kind, scaled["valid"], _activations(model, kind, scaled["valid"]), rate_hz=rate_hz,
                               tempo_range_bpm=tempo_range_bpm)
        test = evaluate_clips(kind, scaled["test"], _activations(model, kind, scaled["test"]), rate_hz=rate_hz,
                              tempo_range_bpm=tempo_range_bpm)
        result = ProbeResult(layers=layers, seed=seed, model=config.head, learning_rate=rate, best_epoch=epoch,
                                  valid=valid, test=test, parameters=sum(p.numel() for p in model.parameters()),
                                  train_s=round(train_s, 2), layer_weights=model.layer_weights())
        out.append((result, model, {"mean": mean, "scale": scale}))
    return out


def fit_frame_probe(splits: dict[str, list[Clip]], *, kind: str, layers: list[int], config: FrameProbeConfig,
                    rate_hz: float) -> tuple[ProbeResult, FrameHead, dict[str, np.ndarray]]:
    """:func:`fit_frame_probes` for the one seed of ``config``."""
    return fit_frame_probes(splits, kind=kind, layers=layers, config=config, rate_hz=rate_hz, seeds=[config.seed])[0]


__all__ = ["CLIP_SKIP_S", "Clip", "FrameProbeConfig", "HEADLINE", "evaluate_clips", "fit_frame_probe",
           "fit_frame_probes", "frame_loss", "positive_weight"]
