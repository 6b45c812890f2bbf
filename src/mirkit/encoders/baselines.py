"""Handcrafted baselines computed with librosa: log-mel, MFCC, chroma (CQT) and log-CQT.

All use 22,050 Hz input, hop 512 (43.07 frames/s), centred frames; each has a single layer.
They run per item on the valid samples only, so padding never changes a result.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from mirkit.encoders.base import Encoder
from mirkit.encoders.spec import EncoderSpec
from mirkit.errors import ConfigError

SAMPLE_RATE = 22050
HOP = 512


def _features(kind: str, y: np.ndarray) -> np.ndarray:
    """``(samples,)`` -> ``(frames, dim)``."""
    import librosa

    if kind == "logmel":
        mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=2048, hop_length=HOP, n_mels=128)
        out = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    elif kind == "mfcc":
        out = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=20, hop_length=HOP)
    elif kind == "chroma":
        # 12 CQT bins per octave (librosa's default is 36): 2x cheaper. librosa estimates each window's
        # tuning; a window without pitched content (a drum hit, silence) has none to estimate, and then
        # librosa assumes 0 cents and warns. That case is expected here, so the warning is not shown.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Trying to estimate tuning from empty frequency set")
            # the last window of a file may be shorter than the lowest octave's FFT (librosa pads it)
            warnings.filterwarnings("ignore", message="n_fft=.* is too large for input signal")
            out = librosa.feature.chroma_cqt(y=y, sr=SAMPLE_RATE, hop_length=HOP, bins_per_octave=12)
    elif kind == "cqt":
        cqt = np.abs(librosa.cqt(y, sr=SAMPLE_RATE, hop_length=HOP, n_bins=84, bins_per_octave=12))
        out = librosa.amplitude_to_db(cqt, ref=1.0, amin=1e-5, top_db=None)
    else:
        raise ConfigError(f"unknown baseline feature {kind!r}; expected logmel, mfcc, chroma or cqt.")
    return out.T.astype(np.float32)


class BaselineEncoder(Encoder):
    def __init__(self, spec: EncoderSpec, kind: str) -> None:
        super().__init__(spec)
        self.kind = kind
        # the feature definition's version is part of it: cached features of an older definition are not reused
        self.weights_revision = "librosa-" + __import__("librosa").__version__ + ("-bpo12" if kind == "chroma" else "")

    def encode(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        audio = waveform.detach().float().cpu().numpy()
        items = [_features(self.kind, audio[i, : int(n)]) for i, n in enumerate(lengths.tolist())]
        max_frames = max(len(f) for f in items)
        out = np.zeros((len(items), max_frames, self.spec.layers[0].dim), dtype=np.float32)
        for i, feats in enumerate(items):
            out[i, : len(feats)] = feats
        frames = torch.tensor([len(f) for f in items], dtype=torch.long, device=waveform.device)
        return [torch.from_numpy(out).to(waveform.device)], [frames]


def build(spec: EncoderSpec, *, weights_dir: str | None = None, kind: str) -> BaselineEncoder:
    if spec.is_random:
        raise ConfigError(f"{spec.name!r}: handcrafted features have no weights, so they have no random twin.")
    return BaselineEncoder(spec, kind)
