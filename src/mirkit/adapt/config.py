"""Settings of probing: the heads' hyper-parameters (:class:`ProbeConfig` for clip-level heads,
:class:`FrameProbeConfig` for frame-level ones) and one probe run (:class:`ProbeRunConfig`, which
``mirkit probe`` is generated from and :func:`mirkit.adapt.run.probe_task` takes whole).

A light module (no torch): the command line reads it while building its parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mirkit.errors import ConfigError
from mirkit.options import check_choices, option

CLIP_HEADS = ("linear", "mlp")
#: per-frame heads, and ``tcn``: a small dilated temporal convolution network over the frozen frames
FRAME_HEADS = ("linear", "mlp", "tcn")
LOUDNESS = ("none", "peak", "lufs")
LOUDNESS_HELP = ("level policy of the features: one gain per file before the encoder, peak to -1 dBFS or -23 LUFS "
                 "(limited to -1 dBFS peak); kept with the heads, so predict applies it too")


@dataclass
class ProbeConfig:
    """A clip-level probe head and its training (MARBLE protocol; :mod:`mirkit.adapt.probe`)."""

    model: str = "linear"  # linear | mlp
    hidden: int = 512
    dropout: float = 0.2
    learning_rates: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    weight_decay: float = 1e-4
    max_epochs: int = 100
    patience: int = 10
    batch_size: int = 256  # at most; small training sets use len(train) // 8 (>= 16)
    seed: int = 0

    def validate(self) -> None:
        if self.model not in CLIP_HEADS:
            raise ConfigError(f"model={self.model!r} must be 'linear' or 'mlp'.")
        if not self.learning_rates or min(self.learning_rates) <= 0:
            raise ConfigError(f"learning_rates={self.learning_rates} must be positive numbers.")


@dataclass
class FrameProbeConfig:
    """A frame-level head and its training (:mod:`mirkit.adapt.timed.fit`)."""

    head: str = "linear"  # linear | mlp | tcn
    learning_rates: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    weight_decay: float = 1e-4
    max_epochs: int = 40
    patience: int = 6
    batch_clips: int = 4  # whole clips per step of the temporal (tcn) head; per-frame heads take FRAME_BATCH frames
    dropout: float = 0.2
    seed: int = 0

    def validate(self) -> None:
        if self.head not in FRAME_HEADS:
            raise ConfigError(f"head={self.head!r} must be one of {', '.join(FRAME_HEADS)}.")
        if not self.learning_rates or min(self.learning_rates) <= 0:
            raise ConfigError(f"learning_rates={self.learning_rates} must be positive numbers.")


@dataclass
class ProbeRunConfig:
    """One probe run: every selected layer of ``encoder`` (and a learned weighting) on the task folder
    ``task_dir``, ``seeds`` seeds each, into ``out_dir``, with features from ``store``. The task's kind
    decides clip- or frame-level heads."""

    task_dir: str | Path = option("", cli=False)
    encoder: str = option("", cli=False)
    out_dir: str | Path = option("", cli=False)
    store: str | Path | None = option(None, cli=False)  # None: <out_dir>/../features
    layers: str = option("all", "all, or a comma list of layer indices")
    seeds: int = option(3, "seeds per layer (3 or more for a mean +- std)")
    model: str = option("linear", "probe head; on a time-resolved task it runs on every frame, and tcn adds a small "
                        "dilated temporal convolution network over the frozen frames", choices=FRAME_HEADS)
    weighted: bool = option(False, "also a learned softmax-weighted sum of the layers")
    weights_dir: str | None = option(None, "encoder weights folder", flag="weights")
    device: str = option("cpu", "torch device of extraction")
    frame_rate_hz: float | None = option(None, "frames per second for encoders with a free hop (CREPE; default: the "
                                         "encoder's)")
    loudness: str = option("none", LOUDNESS_HELP, choices=LOUDNESS)
    augment: str = option("none", "clip-level tasks: augmented copies of the training clips join the training split, "
                          "e.g. eq,room (gain, eq, room, noise keep the label; pitch, stretch move it by rule); "
                          "validation and test are untouched")
    augment_copies: int = option(1, "augmented copies per training clip")
    force: bool = option(False, "redo finished jobs (and results of another recipe)")
    probe: ProbeConfig | FrameProbeConfig | None = option(None, cli=False)  # None: the defaults for `model`
    progress: bool = option(True, cli=False)

    def __post_init__(self) -> None:
        self.task_dir, self.out_dir = Path(self.task_dir), Path(self.out_dir)
        self.store = Path(self.store) if self.store else self.out_dir.resolve().parent / "features"

    def validate(self) -> None:
        check_choices(self, what="probe run")
        if self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds}: need at least 1 (3 or more for a mean +- std).")

    def clip_probe(self) -> ProbeConfig:
        """The clip-level head's settings (``probe``, or the defaults of ``model``)."""
        probe = self.probe if isinstance(self.probe, ProbeConfig) else ProbeConfig(model=self.model)
        if self.model == "tcn" and self.probe is None:
            raise ConfigError("--model tcn is a temporal head for time-resolved tasks (beat, chords, ...); clip-level "
                              "tasks take linear or mlp.")
        probe.validate()
        return probe

    def frame_probe(self) -> FrameProbeConfig:
        """The frame-level head's settings (``probe``, or the defaults of ``model``)."""
        probe = self.probe if isinstance(self.probe, FrameProbeConfig) else FrameProbeConfig(head=self.model)
        probe.validate()
        return probe


__all__ = ["CLIP_HEADS", "FRAME_HEADS", "FrameProbeConfig", "LOUDNESS", "LOUDNESS_HELP", "ProbeConfig",
           "ProbeRunConfig"]
