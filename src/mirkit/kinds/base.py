"""What a kind of task is, as one frozen spec per kind that carries its behaviour.

A task (``key``, ``beat``, ``emomusic-emotion``...) has a *kind*; the kind says everything the
pipelines need to know about its labels, with no pipeline spelling a kind's name:

- :class:`ClipKind` (one label per clip: classes, tags, values): which classes a label set has,
  how labels become training targets and outputs become predictions, the loss, the metrics and the
  headline that model selection maximises, one prediction row per file.
- :class:`FrameKind` (labels in time: beats, chords, notes, onsets): per-frame targets on a clip's
  own frame times, the output activation and loss, the decoder from frame activations to musical
  events, the metrics of decoded events, and the files ``mirkit predict`` writes.
- :class:`StemsKind` (source separation: the booster's ``open-unmix`` model, not probes).

Every kind also says which labels it cannot train or score (:meth:`TaskKind.label_problem`),
reads labels kept in sidecar files (:meth:`TaskKind.read_labels`) and checks labels for
``mirkit data validate`` (:meth:`TaskKind.check_label`). Its peers (established tools estimating
the same thing) are registered beside it in :mod:`mirkit.kinds.peers`.

Adding a kind is one module that defines a subclass, creates its instance and registers it with
:func:`register_kind`, imported from ``mirkit/kinds/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mirkit.errors import ConfigError
from mirkit.registry import Registry

if TYPE_CHECKING:
    import torch

LEVELS = ("clip", "frame", "stems")


@dataclass(frozen=True, kw_only=True)
class TaskKind:
    """One kind of task.

    Attributes:
        name: registry key (``multiclass``, ``beat``...).
        level: ``clip`` (one label per clip), ``frame`` (labels in time) or ``stems`` (separation).
        headline: the metric model selection maximises (a key of :meth:`score`'s result).
        description: one line for listings.
        min_frame_rate_hz: the slowest layer frame rate that suits the kind (frame and stems kinds).
    """

    name: str
    level: str
    headline: str
    description: str
    min_frame_rate_hz: float = 0.0

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"kind {self.name!r}: level={self.level!r} must be one of {LEVELS}")

    @property
    def clip_level(self) -> bool:
        """Whether a clip-level probe predicts it (one label per clip)."""
        return self.level == "clip"

    @property
    def frame_level(self) -> bool:
        """Whether its labels live in time (frame-level heads, decoding)."""
        return self.level == "frame"

    def read_labels(self, labels: dict[str, object], *, folder: Path) -> dict[str, object]:
        """``labels`` with what sits in sidecar files beside the manifest read in (default: as they are).

        Raises:
            OSError, ValueError, KeyError: a sidecar file is missing or unreadable.
        """
        return labels

    def label_problem(self, labels: dict[str, object], *, duration_s: float) -> str | None:
        """Why a clip's labels (after :meth:`read_labels`) cannot train or score a model; ``None``: they can."""
        return None

    def check_label(self, value: object, *, labels: dict[str, object], vocabulary: Sequence[str], folder: Path,
                    duration_s: float) -> str | None:
        """What ``mirkit data validate`` reports about one manifest label ``value`` (``None``: nothing)."""
        return self.label_problem(labels, duration_s=duration_s)


@dataclass(frozen=True, kw_only=True)
class ClipKind(TaskKind):
    """One label per clip.

    Attributes:
        loss: ``cross_entropy`` (class indices), ``binary_cross_entropy`` (multi-hot) or ``mse``
            (values; standardised with training statistics before the loss).
    """

    level: str = "clip"
    loss: str = "cross_entropy"

    @property
    def categorical(self) -> bool:
        """One class per clip (a relabelled clip must land on a known class)."""
        return self.loss == "cross_entropy"

    @property
    def standardise_targets(self) -> bool:
        """Whether targets are standardised with training statistics (values, not classes)."""
        return self.loss == "mse"

    def classes(self, labels: Sequence[object], vocabulary: Sequence[str]) -> list[str]:
        """Class names from training ``labels`` and the task's ``vocabulary`` (empty for values)."""
        return []

    def dims(self, labels: Sequence[object]) -> int:
        """Outputs per clip of a value kind (1 unless labels are vectors)."""
        return 1

    def encode(self, labels: Sequence[object], classes: Sequence[str]) -> np.ndarray:
        """Training targets of ``labels``: class indices ``(clips,)``, multi-hot or values ``(clips, dims)``."""
        raise NotImplementedError

    def decode(self, outputs: np.ndarray, classes: Sequence[str]) -> list[object]:
        """Raw outputs ``(clips, outputs)`` -> predictions in label space (class names, probabilities, values)."""
        raise NotImplementedError

    def headline_batch(self, encoded: np.ndarray, outputs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        """The headline of many models at once: ``outputs`` ``(models, clips, outputs)`` -> ``(models,)``."""
        raise NotImplementedError

    def evaluate(self, labels: Sequence[object], outputs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
        """Every metric of raw ``outputs`` against ``labels``, with ``headline``."""
        return self.score(labels, self.decode(outputs, classes))

    def score(self, references: Sequence[object], estimates: Sequence[object]) -> dict[str, float]:
        """Every metric of ``estimates`` in label space (a peer's, or decoded outputs), with ``headline``."""
        raise NotImplementedError

    def prediction_row(self, path: str, classes: Sequence[str], output: np.ndarray, value: object, *,
                       top_k: int) -> dict[str, object]:
        """One file's line of ``mirkit predict``: ``path``, ``prediction`` and ``scores``."""
        return {"path": path, "prediction": [round(float(v), 4) for v in np.atleast_1d(value)], "scores": {}}


@dataclass(frozen=True, kw_only=True)
class FrameKind(TaskKind):
    """Labels in time, predicted frame by frame and decoded to events.

    Attributes:
        outputs: outputs per frame.
        categorical: one class per frame (softmax, cross-entropy that skips
            :data:`~mirkit.kinds.labels.IGNORE` frames); otherwise independent outputs (sigmoid, binary
            cross-entropy with positive weights).
        classes: the class of each output of a categorical kind (empty otherwise).
        files: what ``mirkit predict`` writes per audio file (for help texts).
    """

    level: str = "frame"
    outputs: int
    categorical: bool = False
    classes: tuple[str, ...] = ()
    files: str = ""

    @property
    def output_dim(self) -> int:
        """Outputs per frame (as :class:`~mirkit.adapt.targets.Targets` names it for clip heads)."""
        return self.outputs

    def encode(self, labels: dict[str, object], times_s: np.ndarray, *, rate_hz: float) -> np.ndarray:
        """Targets on the frame times ``times_s``: ``(frames, outputs)`` floats, or ``(frames,)`` class indices."""
        raise NotImplementedError

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Frame logits ``(..., outputs)`` -> probabilities."""
        import torch

        return torch.softmax(logits, -1) if self.categorical else torch.sigmoid(logits)

    def decode_context(self, train_labels: Sequence[dict[str, object]]) -> dict[str, Any]:
        """What the decoder learns from the training labels and keeps with a saved head (default: nothing)."""
        return {}

    def decode(self, activation: np.ndarray, times_s: np.ndarray, *, rate_hz: float,
               context: Mapping[str, Any] | None = None, full: bool = True) -> dict[str, Any]:
        """One clip's events from its ``(frames, outputs)`` probabilities. ``full=False`` skips what the
        headline does not read (model selection decodes many candidates)."""
        raise NotImplementedError

    def score(self, labels: Sequence[dict[str, object]], decoded: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Every metric of decoded events (a model's or a peer's) against the clips' labels, with ``headline``."""
        raise NotImplementedError

    def to_row(self, decoded: Mapping[str, Any]) -> dict[str, Any]:
        """Decoded events as JSON values (times rounded to the millisecond)."""
        raise NotImplementedError

    def write_files(self, stem: Path, row: Mapping[str, Any]) -> None:
        """The per-file outputs of ``mirkit predict`` for one row of :meth:`to_row` (``stem``: path without suffix)."""


@dataclass(frozen=True, kw_only=True)
class StemsKind(TaskKind):
    """Source separation: stems of a mix (trained by ``mirkit boost --model open-unmix``, not probed)."""

    level: str = "stems"


KINDS: Registry[TaskKind] = Registry("task kind", listing_hint="mirkit data tasks")


def register_kind(kind: TaskKind) -> TaskKind:
    """Add ``kind`` to :data:`KINDS` under its name; returns it."""
    return KINDS.register(kind.name, kind)


def get_kind(name: str) -> TaskKind:
    """The registered kind ``name`` (a helpful error for an unknown one)."""
    return KINDS.get(name)


def _named(name: str, task: str) -> str:
    """How a refusal names what it refuses: the task folder when known, else the kind."""
    return repr(task) if task else f"kind {name!r}"


def _stems_refused(name: str, task: str) -> ConfigError:
    where = task or "TASK"
    return ConfigError(f"{_named(name, task)} is a source-separation task; probes and heads do not separate "
                       f"stems. Train a separation model with `mirkit boost --task {where} --model open-unmix "
                       "--encoder ENC`.")


def clip_kind(name: str, *, task: str = "") -> ClipKind:
    """The clip-level kind ``name``; a frame or stems kind is refused with the command that handles it
    (``task``: the task folder, named in the message)."""
    kind = get_kind(name)
    if kind.level == "stems":
        raise _stems_refused(name, task)
    if not isinstance(kind, ClipKind):
        raise ConfigError(f"{_named(name, task)} is a time-resolved task ({name}), not a clip-level one: clip-level "
                          "heads do not apply; `mirkit probe` and `mirkit tune` give it frame-level heads.")
    return kind


def frame_kind(name: str, *, task: str = "") -> FrameKind:
    """The frame-level kind ``name``; another kind is refused, naming the frame-level kinds."""
    kind = get_kind(name)
    if kind.level == "stems":
        raise _stems_refused(name, task)
    if not isinstance(kind, FrameKind):
        raise ConfigError(f"{_named(name, task)} is a {name} task (one label per clip): frame-level heads do not "
                          f"apply; frame-level heads cover {', '.join(kinds_of_level('frame'))}. `mirkit probe` "
                          "and `mirkit tune` give it clip-level heads.")
    return kind


def kinds_of_level(level: str) -> list[str]:
    """Names of the registered kinds of one level, in registration order."""
    return [name for name, kind in KINDS.items() if kind.level == level]


__all__ = ["KINDS", "ClipKind", "FrameKind", "StemsKind", "TaskKind", "clip_kind", "frame_kind", "get_kind", "kinds_of_level",
           "register_kind"]
