"""Facts of mirkit's mel transformer and of encoder folders, importable without torch.

An encoder folder (the ``final`` folder of ``mirkit pretrain``, or any checkpoint folder of it)
holds ``mirkit-encoder.json`` (name, provenance, licence, architecture) and ``model.safetensors``.
:func:`mirkit.encoders.zoo.get_spec` accepts such a folder as an encoder name.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from mirkit.encoders.spec import EncoderSpec, LayerSpec
from mirkit.errors import CheckpointError, ConfigError

FRONTENDS = ("mel", "logfreq")
SPEC_FILE = "mirkit-encoder.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class MelTransformerConfig:
    """Architecture of a :class:`MelTransformer` (stored in ``mirkit-encoder.json``)."""

    sample_rate: int = 16000
    n_fft: int = 400  # 25 ms
    hop: int = 160  # 10 ms: 100 frames/s
    n_mels: int = 80  # bands of the front end (mel bands, or log-frequency bins with frontend="logfreq")
    stack: int = 4  # frames per token: 25 tokens/s
    dim: int = 256
    layers: int = 4
    heads: int = 4
    ffn: int = 1024
    dropout: float = 0.1
    pos_kernel: int = 31  # depthwise convolution over tokens (1.24 s at 25 tokens/s)
    #: "mel": librosa's Slaney mel filterbank; "logfreq": triangular filters at ``bins_per_octave``
    #: log-spaced centres from ``fmin_hz`` (a constant-Q-like spectrogram that resolves semitones
    #: where the STFT does: use a long ``n_fft``, e.g. 4096 at 16 kHz resolves 3.9 Hz)
    frontend: str = "mel"
    fmin_hz: float = 32.70319566257483  # C1
    bins_per_octave: int = 12

    def validate(self) -> None:
        if self.frontend not in FRONTENDS:
            raise ConfigError(f"frontend={self.frontend!r} must be one of {', '.join(FRONTENDS)}.")
        if self.frontend == "logfreq":
            top = self.fmin_hz * 2 ** ((self.n_mels - 1) / self.bins_per_octave)
            if not 0 < self.fmin_hz < top < self.sample_rate / 2:
                raise ConfigError(f"{self.n_mels} log-frequency bins at {self.bins_per_octave} per octave from "
                                  f"{self.fmin_hz:g} Hz reach {top:.0f} Hz, above the Nyquist frequency "
                                  f"({self.sample_rate / 2:g} Hz); use fewer bins or a higher sample rate.")
        positive = {f.name: getattr(self, f.name) for f in fields(self)
                    if f.name not in ("dropout", "frontend", "fmin_hz")}
        bad = [f"{k}={v}" for k, v in positive.items() if not (isinstance(v, int) and v >= 1)]
        if bad or not 0 <= self.dropout < 1:
            raise ConfigError(f"mel transformer settings out of range: {', '.join(bad) or f'dropout={self.dropout}'} "
                              "(positive integers; 0 <= dropout < 1).")
        if self.dim % self.heads:
            raise ConfigError(f"dim={self.dim} must be divisible by heads={self.heads}.")
        if self.pos_kernel % 2 == 0:
            raise ConfigError(f"pos_kernel={self.pos_kernel} must be odd (a centred convolution).")

    @property
    def token_rate_hz(self) -> float:
        return self.sample_rate / (self.hop * self.stack)

    def token_lengths(self, samples):
        """Valid tokens for ``samples`` valid samples (an int or an integer tensor; centred STFT frames,
        grouped by ``stack``)."""
        return (1 + samples // self.hop) // self.stack


#: Sizes offered by ``mirkit pretrain --preset`` for ``--arch mel``; ``tiny`` is for tests.
MEL_PRESETS: dict[str, MelTransformerConfig] = {
    "tiny": MelTransformerConfig(n_mels=32, dim=32, layers=2, heads=2, ffn=64, pos_kernel=5),
    "small": MelTransformerConfig(dim=256, layers=4, heads=4, ffn=1024),
    "base": MelTransformerConfig(dim=384, layers=8, heads=6, ffn=1536),
    # mirkit-base's front end (issue #33): 96 semitone bins from C1 (32.7 Hz) to B8 over a 4096-point
    # STFT (256 ms, 3.9 Hz bins) with a 20 ms hop, 2 frames per token: 25 tokens/s
    "tiny-logfreq": MelTransformerConfig(n_fft=1024, hop=320, n_mels=60, stack=2, dim=32, layers=2, heads=2, ffn=64,
                                         pos_kernel=5, frontend="logfreq", fmin_hz=65.40639132514966),
    "small-logfreq": MelTransformerConfig(n_fft=4096, hop=320, n_mels=96, stack=2, dim=256, layers=4, heads=4,
                                          ffn=1024, frontend="logfreq"),
    # 10.5 M parameters: 21 MB in fp16, inside the 25 MB a shipped encoder may take (384 x 8 would be 30 MB)
    "base-logfreq": MelTransformerConfig(n_fft=4096, hop=320, n_mels=96, stack=2, dim=320, layers=8, heads=5,
                                         ffn=1280, frontend="logfreq"),
}


#: the mel transformer's module names that ``mirkit tune`` methods reach (see ``EncoderSpec.tuning_targets``)
MEL_TUNING_TARGETS = tuple(sorted({
    "adapter": r"^blocks\.\d+\.(attention|feed_forward)$", "prompt": r"^blocks\.\d+\.attention$",
    "lora": r"^blocks\.\d+\.attention\.(q_proj|v_proj)$",
    "ia3": r"^blocks\.\d+\.(attention\.(k_proj|v_proj)|feed_forward\.3)$", "ia3_ff": r"feed_forward\.3$",
    "frontend": r"^(projection|projection_norm|position|mask_embedding)", "blocks": r"^blocks\.(\d+)\.",
}.items()))


def mel_spec(name: str, config: MelTransformerConfig, *, source: str, licence: str, description: str,
             weights_kind: str = "none") -> EncoderSpec:
    """The spec of a mel transformer with ``config``: layer 0 is the token projection, then one per block."""
    rate = config.token_rate_hz
    layers = (LayerSpec("projection", config.dim, rate),) + tuple(
        LayerSpec(f"layer{i}", config.dim, rate) for i in range(1, config.layers + 1))
    return EncoderSpec(name=name, family="mirkit-mel", source=source, sample_rate=config.sample_rate, layers=layers,
                       licence=licence, weights_kind=weights_kind, builder="mirkit.encoders.mel_transformer:build",
                       min_duration_s=config.hop * config.stack / config.sample_rate, default_window_s=30.0,
                       padding_invariant=False, description=description,
                       options=tuple(sorted(asdict(config).items())), tuning_targets=MEL_TUNING_TARGETS)


def read_folder_info(folder: Path) -> dict:
    """``mirkit-encoder.json`` of an encoder folder, checked for a format this mirkit reads."""
    path = folder / SPEC_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a mirkit encoder description ({exc}); expected the `final` folder "
                              "of a `mirkit pretrain` run.") from None
    if info.get("format_version") != FORMAT_VERSION or info.get("family") not in ("mirkit-mel", "hf-mert"):
        raise CheckpointError(f"{path}: format {info.get('format_version')!r} / family {info.get('family')!r} is not "
                              f"one this mirkit reads (format {FORMAT_VERSION}, family mirkit-mel or hf-mert).")
    return info


def mel_folder_spec(folder: Path, info: dict) -> EncoderSpec:
    """The spec of a mel-transformer folder written by ``save_encoder_folder``."""
    try:
        config = MelTransformerConfig(**info["architecture"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{folder / SPEC_FILE}: no valid architecture ({exc}).") from None
    spec = mel_spec(str(folder), config, source=str(info.get("source", "")), licence=str(info.get("licence", "")),
                    description=str(info.get("description", "")), weights_kind="folder")
    return replace(spec, weights_ref=str(folder))


def is_encoder_folder(name: str) -> bool:
    """Whether ``name`` is a folder holding a mirkit encoder description."""
    return (Path(name) / SPEC_FILE).is_file()
