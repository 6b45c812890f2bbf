"""The HEAR 2021 API over any registered encoder.

``load_model`` returns a module with the attributes HEAR requires (``sample_rate``,
``scene_embedding_size``, ``timestamp_embedding_size``); ``get_timestamp_embeddings`` returns
``(embeddings (n_sounds, n_frames, dim), timestamps_ms (n_sounds, n_frames))`` and
``get_scene_embeddings`` returns ``(n_sounds, dim)``, as the HEAR spec defines. By default the
embedding is the concatenation of all layers of the encoder, each brought to the frame rate of
layer 0 (patch-level layers are repeated over the frames they cover); pass ``layer=k`` for one layer.

Example::

    from mirkit import hear
    model = hear.load_model("musicnn-mtt")
    emb, ts = hear.get_timestamp_embeddings(audio_16k, model)
"""

from __future__ import annotations

import torch

from mirkit.encoders import load_encoder
from mirkit.encoders.base import Encoder
from mirkit.errors import ConfigError


class HearModel(torch.nn.Module):
    """An encoder wrapped with the HEAR attributes."""

    def __init__(self, encoder: Encoder, layer: int | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.layer = layer
        spec = encoder.spec
        self.sample_rate = spec.sample_rate
        layers = range(spec.num_layers) if layer is None else [layer]
        self.layers = tuple(layers)
        dim = sum(spec.layers[i].dim for i in self.layers)
        self.scene_embedding_size = dim
        self.timestamp_embedding_size = dim


def load_model(model_file_path: str = "", *, encoder: str | None = None, layer: int | None = None,
               device: str = "cpu") -> HearModel:
    """HEAR ``load_model``. ``model_file_path`` is an encoder name (or a weights folder with ``encoder=``)."""
    name = encoder or model_file_path
    if not name:
        raise ConfigError("load_model needs an encoder name, e.g. load_model('musicnn-mtt'); see `mirkit encoders`.")
    weights = model_file_path if encoder and model_file_path else None
    enc = load_encoder(name, weights_dir=weights, device=device)
    if layer is not None and not 0 <= layer < enc.spec.num_layers:
        raise ConfigError(f"layer={layer} does not exist in {enc.spec.name!r} (0..{enc.spec.num_layers - 1}).")
    return HearModel(enc, layer)


def _check(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    if audio.ndim != 2:
        raise ConfigError(f"HEAR audio must be (n_sounds, n_samples) at {model.sample_rate} Hz; got shape {tuple(audio.shape)}.")
    return audio.float()


@torch.inference_mode()
def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n_sounds, n_samples)`` at ``model.sample_rate`` -> frame embeddings and their centre times in ms."""
    audio = _check(audio, model)
    device = next((p.device for p in model.encoder.parameters()), torch.device("cpu"))
    out = model.encoder(audio.to(device), layers=model.layers)
    spec = model.encoder.spec
    base = model.layers[0]
    frames = out.hidden[base].shape[1]
    rate = spec.layers[base].frame_rate_hz
    parts = []
    for layer in model.layers:
        hidden = out.hidden[layer]
        if hidden.shape[1] != frames:  # a coarser layer: repeat each vector over the frames it covers
            ratio = rate / spec.layers[layer].frame_rate_hz
            index = (torch.arange(frames, device=hidden.device) / ratio).long().clamp(max=hidden.shape[1] - 1)
            hidden = hidden[:, index]
        parts.append(hidden)
    embeddings = torch.cat(parts, dim=-1).float()
    timestamps = ((torch.arange(frames, device=embeddings.device) + 0.5) * 1000.0 / rate).expand(len(audio), -1)
    return embeddings, timestamps


@torch.inference_mode()
def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """``(n_sounds, n_samples)`` -> ``(n_sounds, scene_embedding_size)``: the mean over valid frames."""
    audio = _check(audio, model)
    device = next((p.device for p in model.encoder.parameters()), torch.device("cpu"))
    out = model.encoder(audio.to(device), layers=model.layers)
    pooled = []
    for layer in model.layers:
        hidden, lengths = out.hidden[layer].float(), out.lengths[layer]
        mask = (torch.arange(hidden.shape[1], device=hidden.device)[None] < lengths[:, None]).float()[..., None]
        pooled.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
    return torch.cat(pooled, dim=-1)
