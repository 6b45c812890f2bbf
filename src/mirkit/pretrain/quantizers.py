"""Discrete targets for masked prediction.

- :class:`RandomProjectionQuantizer` (BEST-RQ, as in MusicFM): a frozen Xavier-normal projection of
  globally standardised, stacked log-mel frames onto a frozen N(0, 1) codebook; the code is the
  nearest codeword by cosine similarity. Nothing is trained; the standardisation statistics come
  from the corpus (they are the encoder's ``mel_mean``/``mel_std``, saved with the run).
- :class:`KMeansQuantizer` (MERT-v0 style): k-means (scikit-learn's MiniBatchKMeans) of per-token
  log-mel + chroma features fitted on a corpus sample; the code is the nearest centroid.

Both map ``(batch, tokens, features)`` to codes ``(batch, tokens, codebooks)`` (k-means: one codebook).
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
