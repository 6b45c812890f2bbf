"""A feature recipe: everything that changes the numbers, hashed into a recipe id."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from mirkit.audio.resample import DEFAULT_QUALITY
from mirkit.errors import ConfigError
from mirkit.files import sha256_text

FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeatureRecipe:
    """How features were made. Two runs with equal recipes produce the same numbers.

    Attributes:
        encoder: registry name (``random:`` prefix for twins).
        weights_revision: content hash of the weights (or ``random-seed0`` / library version).
        sample_rate: encoder input rate in Hz.
        resampler: ``soxr-<quality>``.
        channel_policy: ``mean`` or ``first``.
        window_s, hop_s: analysis windows (see :mod:`mirkit.audio.stream`).
        min_duration_s: shortest accepted input; shorter tails are extended backwards to it.
        max_window_s: longest window; a final tail shorter than ``min_duration_s`` is absorbed
            into the last window when that stays within this length.
        batching: ``pad-zero`` (padding-invariant encoders) or ``exact-length`` (equal-length batches only).
        layers: stored layer indices.
        pooling: ``mean`` (clip vectors only) or ``none`` (frame-level features as well).
        dtype: stored dtype.
        frame_rate_hz: the frame rate when it was changed from the encoder's default (CREPE); omitted
            from the id otherwise, so recipes made before this field existed keep their ids.
        format_version: store layout version.
        runtime: what ran the network when it was not PyTorch (``onnxruntime``: equal to PyTorch
            within 1e-4 of each layer's scale, but not bit for bit); omitted from the id for PyTorch.
        loudness: the level policy applied per file before the encoder (``peak`` or ``lufs``, see
            :mod:`mirkit.audio.loudness`); ``None`` (as decoded) is omitted from the id.
    """

    encoder: str
    weights_revision: str
    sample_rate: int
    window_s: float
    hop_s: float
    min_duration_s: float
    batching: str
    layers: tuple[int, ...]
    max_window_s: float | None = None
    pooling: str = "mean"
    channel_policy: str = "mean"
    resampler: str = f"soxr-{DEFAULT_QUALITY}"
    dtype: str = "float32"
    format_version: int = FORMAT_VERSION
    frame_rate_hz: float | None = None
    runtime: str | None = None
    loudness: str | None = None

    def __post_init__(self) -> None:
        if self.loudness not in (None, "peak", "lufs"):
            raise ConfigError(f"loudness={self.loudness!r} must be 'peak', 'lufs' or None (as decoded).")
        if self.pooling not in ("mean", "none"):
            raise ConfigError(f"pooling={self.pooling!r} must be 'mean' (clip vectors) or 'none' (frame-level too).")
        if self.dtype not in ("float32", "float16"):
            raise ConfigError(f"dtype={self.dtype!r} must be 'float32' or 'float16'.")

    @property
    def recipe_id(self) -> str:
        """Stable 16-hex-digit id of this recipe."""
        payload = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return sha256_text(payload)[:16]

    @property
    def frames(self) -> bool:
        return self.pooling == "none"

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["layers"] = list(self.layers)
        if data["frame_rate_hz"] is None:
            del data["frame_rate_hz"]
        if data["runtime"] is None:
            del data["runtime"]
        if data["loudness"] is None:
            del data["loudness"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "FeatureRecipe":
        values = dict(data)
        values["layers"] = tuple(values["layers"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]
