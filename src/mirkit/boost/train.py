"""Train one cell of ``mirkit boost``: one system (baseline, boosted, boosted with the random twin), one
training fraction, one seed.

AdamW on random crops of whole training clips (padding masked out of the loss); inputs and injected
layers standardised with the statistics of the cell's own training frames; every ``eval_every``
steps the validation clips are decoded and scored (beat F-measure, note F1, separation SDR), the best
weights kept,
and training stops after ``patience`` evaluations without a better validation headline (validation
loss breaks ties). The test split is scored once, with the best weights.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mirkit.adapt.fit import standardiser
from mirkit.adapt.targets import Targets
from mirkit.adapt.timed.fit import Clip, evaluate_clips, frame_loss, positive_weight
from mirkit.adapt.timed.windows import covering_windows
from mirkit.boost.data import BoostClip
from mirkit.boost.models import TaskModel
from mirkit.boost.separation import separation_loss
from mirkit.errors import ConfigError, TrainingError
from mirkit.kinds import get_kind
from mirkit.options import check_choices, option


@dataclass(frozen=True)
class BoostConfig:
    """Settings of ``mirkit boost`` (the command line is generated from these fields)."""

    fusion: str = option("concat", "where and how the features enter the task model", choices=("concat", "film", "xattn"))
    layers: str = option("weighted", "weighted (every layer fast enough, learned softmax weights) or a layer index")
    fractions: str = option("0.01,0.1,1", "training fractions, chosen by piece")
    steps: int = option(1500, "at most this many optimizer steps per cell")
    eval_every: int = option(100, "steps between validation passes")
    patience: int = option(5, "validation passes without a better headline before stopping")
    batch_size: int = option(8, "crops per step")
    crop_s: float = option(5.0, "training crop length")
    learning_rate: float = option(1e-3, "AdamW learning rate", flag="lr")
    weight_decay: float = option(1e-4, "AdamW weight decay")
    token_out: float | None = option(None, "probability of dropping an injected frame in training (SoniDo's "
                                     "token-out; default: the model's, 0.1 for short-chunk, else 0)")
    feature_dropout: float = option(0.0, "probability of dropping each unit of the injected layers in training "
                                    "(regularises the injected path; 0: off)")
    augment: str = option("none", "augmentations (gain,eq,room,noise; pitch,stretch where the task's labels have a "
                          "rule) of offline copies of the training clips, whose features are extracted once like "
                          "the originals'")
    augment_copies: int = option(1, "augmented copies of every training clip (with --augment)")

    def fraction_values(self) -> list[float]:
        try:
            values = sorted({float(v) for v in self.fractions.split(",") if v.strip()})
        except ValueError:
            raise ConfigError(f"--fractions {self.fractions!r} must be numbers such as 0.01,0.1,1.") from None
        if not values or not all(0 < v <= 1 for v in values):
            raise ConfigError(f"--fractions {self.fractions!r}: each must be in (0, 1].")
        return values

    def augment_names(self) -> tuple[str, ...]:
        from mirkit.audio.augment import parse_augment

        return parse_augment(self.augment)

    def validate(self) -> None:
        check_choices(self, what="mirkit boost")
        self.fraction_values()
        self.augment_names()
        if self.augment_copies < 1:
            raise ConfigError(f"--augment-copies {self.augment_copies}: need 1 or more.")
        bad = [k for k, ok in {"steps": self.steps >= 1, "eval_every": self.eval_every >= 1,
                               "patience": self.patience >= 1, "batch_size": self.batch_size >= 1,
                               "crop_s": self.crop_s > 0, "learning_rate": self.learning_rate > 0,
                               "token_out": self.token_out is None or 0 <= self.token_out < 1,
                               "feature_dropout": 0 <= self.feature_dropout < 1}.items() if not ok]
        if bad:
            raise ConfigError(f"boost settings out of range: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)} "
                              "(steps, eval_every, patience, batch_size >= 1; positive crop and rate; "
                              "0 <= token_out, feature_dropout < 1).")


@dataclass
class Cell:
    """A cell's clips: ``train`` is the fraction's subset; ``feats`` maps a clip path to its injected
    layers (``None``: the baseline)."""

    train: list[BoostClip]
    valid: list[BoostClip]
    test: list[BoostClip]
    feats: dict[str, list[np.ndarray]] | None
    targets: Targets | None = None  # clip-level tasks: one target vector per clip, scored over covering chunks


class Standardise:
    """Per-bin input and per-unit feature statistics of a cell's training frames."""

    def __init__(self, cell: Cell) -> None:
        self.x_mean, self.x_scale = standardiser(np.concatenate([c.x for c in cell.train]))
        self.f_stats = []
        if cell.feats is not None:
            for k in range(len(cell.feats[cell.train[0].path])):
                self.f_stats.append(standardiser(np.concatenate([cell.feats[c.path][k] for c in cell.train])))

    def x(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.x_mean) / self.x_scale).astype(np.float32)

    def f(self, k: int, values: np.ndarray) -> np.ndarray:
        mean, scale = self.f_stats[k]
        return ((values - mean) / scale).astype(np.float32)


def _batch(clips: list[BoostClip], cell: Cell, norm: Standardise, spans: list[tuple[int, int]]):
    """Padded ``(x, feats, target, mask)`` tensors of the frame ``spans`` of ``clips``."""
    longest = max(b - a for a, b in spans)
    x = np.zeros((len(clips), longest, clips[0].x.shape[1]), dtype=np.float32)
    clip_level = cell.targets is not None
    target = (np.stack([c.target for c in clips]) if clip_level else
              np.zeros((len(clips), longest) + clips[0].target.shape[1:], dtype=clips[0].target.dtype))
    mask = np.zeros((len(clips), longest), dtype=bool)
    layers = len(norm.f_stats)
    feats = [np.zeros((len(clips), longest, norm.f_stats[k][0].shape[-1]), dtype=np.float32) for k in range(layers)]
    for i, (clip, (a, b)) in enumerate(zip(clips, spans)):
        x[i, : b - a], mask[i, : b - a] = norm.x(clip.x[a:b]), True
        if not clip_level:
            target[i, : b - a] = clip.target[a:b]
        for k in range(layers):
            feats[k][i, : b - a] = norm.f(k, cell.feats[clip.path][k][a:b])  # type: ignore[index]
    if target.dtype == np.float16:  # separation targets (magnitudes) are kept in half precision
        target = target.astype(np.float32)
    return (torch.from_numpy(x), [torch.from_numpy(f) for f in feats] if layers else None, torch.from_numpy(target),
            torch.from_numpy(mask))


def _activations(model: TaskModel, kind: str, clips: list[BoostClip], cell: Cell, norm: Standardise) -> list[np.ndarray]:
    model.eval()
    out = []
    with torch.no_grad():
        for clip in clips:
            x, feats, _, mask = _batch([clip], cell, norm, [(0, len(clip.times_s))])
            logits = model(x, feats, mask)[0]
            spec = get_kind(kind)
            out.append((spec.activate(logits) if spec.frame_level else torch.sigmoid(logits)).numpy())  # type: ignore[attr-defined]
    return out


def clip_logits(model: TaskModel, clips: list[BoostClip], cell: Cell, norm: Standardise, *, crop: int) -> np.ndarray:
    """A clip-level model's logits per clip: the mean over chunks covering the clip."""
    model.eval()
    out = []
    with torch.no_grad():
        for clip in clips:
            frames = len(clip.times_s)
            spans = [(a, min(frames, a + crop)) for a in covering_windows(frames, window_samples=crop)]
            x, feats, _, mask = _batch([clip] * len(spans), cell, norm, spans)
            out.append(model(x, feats, mask)[:, 0].mean(dim=0).numpy())
    return np.stack(out)


def score(model: TaskModel, kind: str, clips: list[BoostClip], cell: Cell, norm: Standardise, *,
          rate_hz: float, crop: int = 0, full: bool = True) -> dict[str, float]:
    """Decode ``clips`` with the model and score them (the decoders and metrics of ``mirkit probe``); a
    clip-level task averages the logits of chunks of ``crop`` frames covering each clip; a beat model's
    tempo is decoded with the cell's training tempo range as its prior, as probes decode it. ``full=False``
    (validation passes during training): a separation model is scored by SI-SDR alone (cheaper)."""
    if cell.targets is not None:
        return cell.targets.evaluate([c.labels for c in clips], clip_logits(model, clips, cell, norm, crop=crop))
    spec = get_kind(kind)
    if spec.level == "stems":
        from mirkit.boost.separation import score_clips

        return score_clips([c.path for c in clips], [c.labels for c in clips],
                           _activations(model, kind, clips, cell, norm), full=full)
    scored = [Clip(np.empty(0), c.times_s, np.empty(0), c.labels, c.duration_s) for c in clips]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_clips(spec, scored, _activations(model, kind, clips, cell, norm), rate_hz=rate_hz,  # type: ignore[arg-type]
                              context=spec.decode_context([c.labels for c in cell.train]))  # type: ignore[attr-defined]


def train_cell(model: TaskModel, cell: Cell, *, kind: str, config: BoostConfig, rate_hz: float, seed: int,
               progress: bool = True, label: str = "") -> dict[str, object]:
    """Train ``model`` on the cell; returns valid/test scores, history and cost (the model keeps its best weights)."""
    from tqdm import tqdm

    norm = Standardise(cell)
    crop = max(2, int(round(config.crop_s * rate_hz)))
    spec = get_kind(kind)
    stems = spec.level == "stems"
    weight = (None if cell.targets is not None or stems
              else positive_weight(spec, [c.target for c in cell.train]))  # type: ignore[arg-type]
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    rng = np.random.default_rng([seed, 11])
    torch.manual_seed(seed)
    best = (-math.inf, math.inf, 0, copy.deepcopy(model.state_dict()))
    history, waited, step_time, steps = [], 0, 0.0, 0
    started = time.perf_counter()
    with tqdm(total=config.steps, desc=f"boost {label}", unit="step", disable=not progress or None, leave=False) as bar:
        for step in range(1, config.steps + 1):
            tick = time.perf_counter()
            model.train()
            chosen = [cell.train[i] for i in rng.integers(0, len(cell.train), size=config.batch_size)]
            spans = []
            for clip in chosen:
                start = int(rng.integers(0, max(1, len(clip.times_s) - crop + 1)))
                spans.append((start, min(len(clip.times_s), start + crop)))
            x, feats, target, mask = _batch(chosen, cell, norm, spans)
            logits = model(x, feats, mask)
            if cell.targets is not None:
                loss = nn.functional.binary_cross_entropy_with_logits(logits[:, 0], target)
            elif stems:
                loss = separation_loss(logits, target, mask)
            else:
                loss = frame_loss(spec, logits, target, mask, weight)  # type: ignore[arg-type]
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss at step {step} of {label}; lower --lr (now "
                                    f"{config.learning_rate:g}) or check the inputs.")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step_time += time.perf_counter() - tick
            steps = step
            bar.update(1)
            if step % config.eval_every and step != config.steps:
                continue
            valid = score(model, kind, cell.valid, cell, norm, rate_hz=rate_hz, crop=crop, full=False)
            history.append({"step": step, "valid_headline": valid["headline"], "train_loss": float(loss.detach())})
            if valid["headline"] > best[0]:
                best, waited = (valid["headline"], float(loss.detach()), step, copy.deepcopy(model.state_dict())), 0
            else:
                waited += 1
            bar.set_postfix(valid=f"{valid['headline']:.3f}", best=f"{best[0]:.3f}")
            if waited >= config.patience:
                break
    model.load_state_dict(best[3])
    train_s = time.perf_counter() - started
    valid = score(model, kind, cell.valid, cell, norm, rate_hz=rate_hz, crop=crop)
    test = score(model, kind, cell.test, cell, norm, rate_hz=rate_hz, crop=crop)
    injected = model.injector is not None
    return {"valid": valid, "test": test, "best_step": best[2], "steps": steps, "history": history,
            "gate": model.fusion.gate_norm() if injected else None,  # type: ignore[union-attr]
            "layer_weights": model.injector.layer_weights() if injected else [],  # type: ignore[union-attr]
            "cost": {"step_s": round(step_time / max(1, steps), 5), "train_s": round(train_s, 2),
                     "parameters": sum(p.numel() for p in model.parameters()),
                     "injection_parameters": sum(p.numel() for m in (model.injector, model.fusion) if m is not None
                                                 for p in m.parameters())},
            "standardisation": norm}


__all__ = ["BoostConfig", "Cell", "Standardise", "score", "train_cell"]
