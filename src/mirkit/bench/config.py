"""Settings of one ``mirkit bench`` run (:class:`BenchConfig`): the command line is generated from it
and :func:`mirkit.bench.runner.run_bench` takes it whole, as do the worker processes that run its
units. A light module (no torch): the CLI reads it while building its parser."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mirkit.adapt.config import CLIP_HEADS, FRAME_HEADS, LOUDNESS, LOUDNESS_HELP
from mirkit.errors import ConfigError
from mirkit.options import check_choices, option

#: The built-in default encoders: real offline weights (two from wheels, mirkit's own pretrained model), their
#: random-init twins and handcrafted baselines.
DEFAULT_ENCODERS = ("musicnn-mtt", "crepe-tiny", "mirkit-mel-small", "random:musicnn-mtt", "random:mirkit-mel-small",
                    "logmel", "mfcc", "chroma")
#: frame rate of encoders with a free hop (CREPE) on the frame-level tasks (clip-level tasks use the spec's)
TIMED_FRAME_RATE_HZ = 50.0


@dataclass
class BenchConfig:
    """A bench: every encoder's probe sweep on every task of a suite, plus the installed peers.

    ``encoders``, ``tasks`` and ``peers``: ``None`` for the defaults (the encoders above, every
    benchmarked task of the suite, every registered peer). ``frame_seeds`` and ``frame_model``: the
    frame-level tasks' seeds and head (``None``: ``seeds`` and ``model``). ``real_tempo``: a
    ``tempo_real`` folder (``mirkit data music``) on which each encoder's beat probe and the tempo
    peers are scored (:mod:`mirkit.bench.real_tempo`). ``jobs``: units of work (one encoder on one
    task, or a task's peers) run at once in worker processes, the cores split between them (on a
    2-core CPU, 2 single-thread workers finish sooner than one 2-thread process: the probes' small
    tensor operations use two threads poorly); 1 runs everything in this process.
    """

    suite_dir: str | Path = option("", cli=False)
    out_dir: str | Path = option("", cli=False)
    encoders: list[str] | None = option(None, cli=False)
    tasks: list[str] | None = option(None, cli=False)
    peers: list[str] | None = option(None, cli=False)
    seeds: int = option(3, "seeds per clip-level probe")
    frame_seeds: int | None = option(None, "seeds of the frame-level tasks (beat, chords, transcription, onsets; "
                                     "default: --seeds)")
    layers: str = option("all", "all, or a comma list of layer indices")
    model: str = option("linear", "clip-level probe head", choices=CLIP_HEADS)
    frame_model: str | None = option(None, "head of the frame-level tasks (default: --model); tcn: a small dilated "
                                     "temporal convolution network over the frozen frames (about 70k parameters)",
                                     choices=FRAME_HEADS)
    weighted: bool = option(True, cli=False)  # --no-weighted on the command line
    store: str | Path | None = option(None, "feature store (default: RUNS/features)")
    weights_dir: str | None = option(None, "weights folder for hub encoders", flag="weights")
    device: str = option("cpu", "torch device of extraction")
    real_tempo: str | None = option(None, "a tempo_real folder (`mirkit data music`): score each encoder's beat probe "
                                    "and the tempo peers on these real recordings (test-only)")
    loudness: str = option("none", LOUDNESS_HELP, choices=LOUDNESS)
    jobs: int = option(1, "units (an encoder on a task, or a task's peers) run at once in worker processes, the cores "
                       "split between them; 2 on a 2-core CPU finishes sooner than 1")
    force: bool = option(False, "redo finished jobs")
    progress: bool = option(True, cli=False)

    def __post_init__(self) -> None:
        self.suite_dir, self.out_dir = Path(self.suite_dir), Path(self.out_dir)
        self.store = Path(self.store) if self.store else self.out_dir / "features"

    def validate(self) -> None:
        check_choices(self, what="bench")
        if self.jobs < 1:
            raise ConfigError(f"jobs={self.jobs}: need 1 or more worker processes.")
        if self.seeds < 1 or (self.frame_seeds is not None and self.frame_seeds < 1):
            raise ConfigError(f"seeds={self.seeds}, frame_seeds={self.frame_seeds}: need at least 1 each.")

    @property
    def frame_head(self) -> str:
        return self.frame_model or self.model

    @property
    def seeds_of_frames(self) -> int:
        return self.seeds if self.frame_seeds is None else self.frame_seeds


__all__ = ["BenchConfig", "DEFAULT_ENCODERS", "TIMED_FRAME_RATE_HZ"]
