"""mirkit's CPU-sized encoder: a transformer over log-mel patches (``mirkit pretrain --arch mel``).

Waveform -> log-mel (torch STFT, librosa's Slaney mel filterbank) -> per-bin standardisation with
statistics fitted on a corpus (buffers saved with the weights) -> ``stack`` frames per token ->
linear projection ("layer 0") -> a depthwise convolutional position embedding (as wav2vec 2.0 and
HuBERT, so any length works) -> pre-LayerNorm transformer blocks, each one an output layer.

A trained model lives in a folder with ``mirkit-encoder.json`` (the spec and the architecture) and
``model.safetensors``; :func:`mirkit.encoders.load_encoder` takes that folder as the encoder name.
For masked pretraining, :meth:`MelTransformer.encode_masked` replaces masked tokens by a learned
embedding before the position embedding (HuBERT's ``masked_spec_embed``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from mirkit.encoders.base import Encoder, file_digest, seeded
from mirkit.encoders.mel_config import FORMAT_VERSION, SPEC_FILE, WEIGHTS_FILE, MelTransformerConfig
from mirkit.encoders.spec import EncoderSpec
from mirkit.errors import CheckpointError

PACKED_ATTENTION = ("in_proj_weight", "in_proj_bias")


def unpack_attention(state: dict[str, torch.Tensor], prefix: str = "") -> bool:
    """Split the packed ``PREFIX in_proj_weight/in_proj_bias`` of weights saved before the attention had
    separate projections (``nn.MultiheadAttention``'s layout) into ``q_proj``/``k_proj``/``v_proj``, in place
    and for every prefix when ``prefix`` is empty; returns whether anything was split."""
    found = False
    for key in [k for k in state if k.startswith(prefix) and k.endswith(PACKED_ATTENTION)]:
        stem, kind = key.rsplit(".", 1) if "." in key else ("", key)
        stem = f"{stem}." if stem else ""
        for name, part in zip(("q_proj", "k_proj", "v_proj"), state.pop(key).chunk(3, dim=0)):
            state[f"{stem}{name}.{'weight' if kind == 'in_proj_weight' else 'bias'}"] = part.contiguous()
        found = True
    return found


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate ``q_proj``/``k_proj``/``v_proj``/``out_proj`` (the layout
    parameter-efficient methods name: LoRA on q/v, prefixes through q and out) and a key padding mask.
    Initialised as ``nn.MultiheadAttention`` is (Xavier-uniform over the stacked q/k/v, zero biases);
    weights saved in that module's packed layout load too."""

    def __init__(self, dim: int, heads: int, *, dropout: float) -> None:
        super().__init__()
        self.num_heads, self.dropout = heads, dropout
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))
        bound = (6.0 / (dim + 3 * dim)) ** 0.5
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.uniform_(proj.weight, -bound, bound)
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.zeros_(proj.bias)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """``x`` ``(batch, tokens, dim)``; ``padding`` ``(batch, tokens)``, True where a token is padding."""
        b, t, d = x.shape

        def heads(proj: nn.Linear) -> torch.Tensor:
            return proj(x).view(b, t, self.num_heads, d // self.num_heads).transpose(1, 2)

        attended = nn.functional.scaled_dot_product_attention(
            heads(self.q_proj), heads(self.k_proj), heads(self.v_proj), attn_mask=~padding[:, None, None, :],
            dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(attended.transpose(1, 2).reshape(b, t, d))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        unpack_attention(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


#: The random twin's revision: ``+qkv`` since the attention has separate projections (other initial weights).
RANDOM_REVISION = "random-seed0+qkv"


class _Block(nn.Module):
    """Pre-LayerNorm transformer block with a key padding mask."""

    def __init__(self, config: MelTransformerConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim)
        self.attention = SelfAttention(config.dim, config.heads, dropout=config.dropout)
        self.norm2 = nn.LayerNorm(config.dim)
        self.feed_forward = nn.Sequential(nn.Linear(config.dim, config.ffn), nn.GELU(), nn.Dropout(config.dropout),
                                          nn.Linear(config.ffn, config.dim))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.dropout(self.attention(h, padding))
        return x + self.dropout(self.feed_forward(self.norm2(x)))


class LogMelTokens:
    """Standardised log-mel frames stacked into tokens; mixed into modules that register its buffers
    (``mel_basis``, ``window``, ``mel_mean``, ``mel_std``) with :meth:`_register_log_mel`."""

    config: MelTransformerConfig

    def _register_log_mel(self, config: MelTransformerConfig) -> None:
        from mirkit.audio.filters import logfreq_basis, mel_basis

        if config.frontend == "logfreq":
            mel = logfreq_basis(sample_rate=config.sample_rate, n_fft=config.n_fft, n_bins=config.n_mels,
                                fmin_hz=config.fmin_hz, bins_per_octave=config.bins_per_octave)
        else:
            mel = mel_basis(sample_rate=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels)
        self.register_buffer("mel_basis", torch.from_numpy(mel).float(), persistent=False)  # type: ignore[attr-defined]
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)  # type: ignore[attr-defined]
        self.register_buffer("mel_mean", torch.zeros(config.n_mels))  # type: ignore[attr-defined]
        self.register_buffer("mel_std", torch.ones(config.n_mels))  # type: ignore[attr-defined]

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` -> standardised log-mel ``(batch, frames, n_mels)``."""
        spec = torch.stft(waveform.float(), self.config.n_fft, self.config.hop, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()
        mel = torch.log(torch.matmul(self.mel_basis, power) + 1e-6).transpose(1, 2)
        return (mel - self.mel_mean) / self.mel_std

    def tokens(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked standardised log-mel frames ``(batch, tokens, n_mels * stack)`` and valid tokens per item."""
        mel = self.log_mel(waveform)
        count = mel.shape[1] // self.config.stack
        stacked = mel[:, : count * self.config.stack].reshape(mel.shape[0], count, -1)
        valid = self.config.token_lengths(lengths).clamp(max=count)
        return stacked, valid



class LogMelFrontend(LogMelTokens, nn.Module):
    """Only the tokens of a :class:`MelTransformer` (what quantizers read when the backbone is another model)."""

    def __init__(self, config: MelTransformerConfig) -> None:
        nn.Module.__init__(self)
        self.config = config
        self._register_log_mel(config)


class MelTransformer(LogMelTokens, Encoder):
    """See the module docstring. ``mel_mean``/``mel_std`` are the per-bin log-mel statistics."""

    def __init__(self, spec: EncoderSpec, config: MelTransformerConfig) -> None:
        super().__init__(spec)
        config.validate()
        self.config = config
        self._register_log_mel(config)
        self.projection = nn.Linear(config.n_mels * config.stack, config.dim)
        self.projection_norm = nn.LayerNorm(config.dim)
        self.mask_embedding = nn.Parameter(torch.zeros(config.dim).uniform_())
        self.position = nn.Conv1d(config.dim, config.dim, config.pos_kernel, padding=config.pos_kernel // 2,
                                  groups=config.heads)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.layers))

    def encode_masked(self, waveform: torch.Tensor, lengths: torch.Tensor,
                      mask: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every layer ``(batch, tokens, dim)`` and the valid tokens; ``mask`` (``(batch, tokens)``, bool)
        marks tokens replaced by the learned mask embedding before the transformer."""
        stacked, valid = self.tokens(waveform, lengths)
        x = self.projection_norm(self.projection(stacked))
        hidden = [x]
        if mask is not None:
            x = torch.where(mask[..., None], self.mask_embedding.to(x.dtype), x)
        padding = torch.arange(x.shape[1], device=x.device)[None] >= valid[:, None]
        x = x.masked_fill(padding[..., None], 0.0)
        x = x + nn.functional.gelu(self.position(x.transpose(1, 2))).transpose(1, 2)
        for block in self.blocks:
            x = block(x, padding)
            hidden.append(x)
        return hidden, valid

    def encode(self, waveform, lengths):
        hidden, valid = self.encode_masked(waveform, lengths)
        return hidden, [valid] * len(hidden)


def build(spec: EncoderSpec, *, weights_dir: str | None = None, **architecture) -> MelTransformer:
    """A mel transformer from a spec whose options hold the architecture; weights from ``weights_dir``
    (or the spec's folder), random (seed 0) for a random twin."""
    config = MelTransformerConfig(**architecture)
    folder = Path(weights_dir) if weights_dir else Path(spec.weights_ref) if spec.weights_ref else None
    if spec.is_random or folder is None:
        with seeded(0):
            encoder = MelTransformer(spec, config)
        encoder.weights_revision = RANDOM_REVISION
        return encoder.eval()
    with seeded(0):
        encoder = MelTransformer(spec, config)
    load_weights(encoder, folder / WEIGHTS_FILE)
    encoder.weights_revision = "sha256:" + file_digest([folder / WEIGHTS_FILE])
    return encoder.eval()


def load_weights(encoder: MelTransformer, path: Path) -> None:
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path} is missing; a mirkit encoder folder holds {SPEC_FILE} and {WEIGHTS_FILE}.")
    state = load_file(str(path))
    unpack_attention(state)
    expected = encoder.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(f"{path} does not match the architecture in {SPEC_FILE}: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}.")
    encoder.load_state_dict(state, strict=True)


def save_encoder_folder(encoder: MelTransformer, folder: Path, *, name: str, source: str, licence: str,
                        description: str, extra: dict[str, object] | None = None) -> Path:
    """Write ``folder/mirkit-encoder.json`` and ``folder/model.safetensors`` (atomically)."""
    from safetensors.torch import save

    from mirkit.files import atomic_write_bytes, atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS_FILE, save(state, metadata={"format": "pt"}))
    atomic_write_json(folder / SPEC_FILE, {
        "format_version": FORMAT_VERSION, "family": "mirkit-mel", "name": name, "source": source, "licence": licence,
        "description": description, "architecture": asdict(encoder.config), **(extra or {})})
    return folder
