"""Discrete targets for masked prediction.

- :class:`RandomProjectionQuantizer` (BEST-RQ, as in MusicFM): a frozen Xavier-normal projection of
  globally standardised, stacked log-mel frames onto a frozen N(0, 1) codebook; the code is the
  nearest codeword by cosine similarity. Nothing is trained; the standardisation statistics come
  from the corpus (they are the encoder's ``mel_mean``/``mel_std``, saved with the run).
- :class:`KMeansQuantizer` (MERT-v0 style): k-means (scikit-learn's MiniBatchKMeans) of per-token
  log-mel + chroma features fitted on a corpus sample; the code is the nearest centroid.

- :class:`CodecQuantizer` (MERT-v1's acoustic teacher): the residual-VQ codes of EnCodec 24 kHz at
  6 kbps (8 codebooks of 1024 at 75 Hz) from a local checkpoint through transformers' ``EncodecModel``;
  for a backbone with fewer tokens per second every n-th frame is kept.

The first two map ``(batch, tokens, features)`` and the codec ``(batch, samples)`` waveforms to codes
``(batch, tokens, codebooks)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mirkit.encoders.base import seeded
from mirkit.errors import ConfigError


class RandomProjectionQuantizer(nn.Module):
    """BEST-RQ codes of ``(batch, tokens, input_dim)`` standardised inputs, one per codebook."""

    def __init__(self, input_dim: int, *, codebooks: int = 1, codebook_size: int = 1024, code_dim: int = 16,
                 seed: int = 0) -> None:
        super().__init__()
        if min(input_dim, codebooks, codebook_size, code_dim) < 1:
            raise ConfigError(f"BEST-RQ sizes must be positive: input {input_dim}, codebooks {codebooks}, "
                              f"size {codebook_size}, code dim {code_dim}.")
        with seeded(seed):
            projection = torch.empty(codebooks, input_dim, code_dim)
            for c in range(codebooks):
                nn.init.xavier_normal_(projection[c])
            codebook = nn.functional.normalize(torch.randn(codebooks, codebook_size, code_dim), dim=-1)
        self.register_buffer("projection", projection)
        self.register_buffer("codebook", codebook)

    @property
    def codebooks(self) -> int:
        return self.codebook.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.codebook.shape[1]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = nn.functional.normalize(torch.einsum("btd,cdk->bctk", x.float(), self.projection), dim=-1)
        similarity = torch.einsum("bctk,cnk->bctn", projected, self.codebook)
        return similarity.argmax(dim=-1).permute(0, 2, 1)  # (batch, tokens, codebooks)


class KMeansQuantizer(nn.Module):
    """Nearest-centroid codes of per-token features (one codebook); fit with :meth:`fit`."""

    def __init__(self, feature_dim: int, *, clusters: int = 500) -> None:
        super().__init__()
        if clusters < 2:
            raise ConfigError(f"k-means needs at least 2 clusters, not {clusters}.")
        self.register_buffer("centroids", torch.zeros(clusters, feature_dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    codebooks = 1

    @property
    def codebook_size(self) -> int:
        return self.centroids.shape[0]

    def fit(self, features: np.ndarray, *, seed: int = 0) -> float:
        """Fit on ``(samples, feature_dim)``; returns the inertia per sample."""
        from sklearn.cluster import MiniBatchKMeans

        if len(features) < self.codebook_size:
            raise ConfigError(f"k-means with {self.codebook_size} clusters needs at least that many feature "
                              f"frames; the corpus sample gave {len(features)}. Use fewer --kmeans-clusters or "
                              "a larger corpus.")
        kmeans = MiniBatchKMeans(n_clusters=self.codebook_size, random_state=seed, batch_size=4096, n_init=3)
        kmeans.fit(features)
        self.centroids.copy_(torch.from_numpy(kmeans.cluster_centers_.astype(np.float32)))
        self.fitted.fill_(True)
        return float(kmeans.inertia_) / len(features)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.fitted):
            raise ConfigError("the k-means quantizer is not fitted; the run fits it on the corpus first.")
        distances = torch.cdist(x.float(), self.centroids[None].expand(x.shape[0], -1, -1))
        return distances.argmin(dim=-1)[..., None]


class CodecQuantizer(nn.Module):
    """EnCodec codes of waveforms at ``sample_rate`` (resampled to the codec's 24 kHz), one codebook per
    residual quantizer at ``bandwidth_kbps``; frames kept every ``75 / token_rate_hz``."""

    def __init__(self, weights_dir: str, *, sample_rate: int, token_rate_hz: float, bandwidth_kbps: float = 6.0) -> None:
        from transformers import EncodecModel

        from mirkit.encoders.hf import quiet_transformers

        super().__init__()
        try:
            with quiet_transformers():
                codec = EncodecModel.from_pretrained(weights_dir)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--codec-weights {weights_dir!r} is not an EnCodec checkpoint ({exc}); download "
                              "facebook/encodec_24khz where you have internet (`huggingface-cli download "
                              "facebook/encodec_24khz`) and pass its folder.") from None
        self._codec = [codec.eval().requires_grad_(False)]  # a list: not a submodule, so not in checkpoints
        self.sample_rate, self.bandwidth = sample_rate, bandwidth_kbps
        self.codec_rate = codec.config.sampling_rate
        frame_rate = self.codec_rate / int(np.prod(codec.config.upsampling_ratios))
        self.every = max(1, round(frame_rate / token_rate_hz))
        self.codebooks = int(codec.quantizer.get_num_quantizers_for_bandwidth(bandwidth_kbps))
        self.size = int(codec.config.codebook_size)

    @property
    def codebook_size(self) -> int:
        return self.size

    @torch.no_grad()
    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        codec = self._codec[0].to(waves.device)
        if self.sample_rate != self.codec_rate:
            from mirkit.audio import resample

            waves = torch.from_numpy(np.stack([resample(w, orig_sample_rate=self.sample_rate, sample_rate=self.codec_rate)
                                               for w in waves.float().cpu().numpy()])).to(waves.device)
        codes = codec.encode(waves.float()[:, None], bandwidth=self.bandwidth).audio_codes  # (chunks, batch, q, frames)
        codes = codes[0] if codes.dim() == 4 else codes
        return codes.permute(0, 2, 1)[:, :: self.every].long()  # (batch, tokens, codebooks)
