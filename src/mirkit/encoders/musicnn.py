"""PyTorch port of musicnn (Pons & Serra, 2019), loading the TF checkpoints shipped in the
``musicnn`` wheel (ISC licence, (c) Jordi Pons) through mirkit's TF-free checkpoint reader.

Architecture facts (musicnn ``models.py``): input ``log10(10000 * mel + 1)`` with a librosa mel
(16 kHz, n_fft 512, hop 256, 96 bands), 187-frame (3 s) non-overlapping patches; input batch norm;
timbral convs 7x38 and 7x67 (204 filters each) and temporal convs 128/64/32x1 (51 each), each
ReLU -> batch norm -> max over frequency; three 7-tap mid-end convs (64) with residual links;
back-end: max and mean over time of the 753 concatenated channels, flattened *interleaved*,
batch norm, dense 200 (ReLU, batch norm) = penultimate, dense 50 = tag logits. TF batch norm
uses eps 1e-3; TF "same" padding of an even kernel k pads ``(k-1)//2`` before and the rest after.

Two upstream bugs are deliberately not reproduced: the float16 cast of the mel spectrogram
(overflows on loud audio) and the extractor repeating the first patch's mid-end features for
every patch.

Layers (index: name, dim, rate): 0 front-end 561 (timbral 408 + temporal 153) at 62.5 Hz;
1-3 cnn1-cnn3 64 at 62.5 Hz; 4 mean-pool 753 and 5 max-pool 753 per 3 s patch; 6 penultimate
200 per patch; 7 tag logits 50 per patch.
"""

from __future__ import annotations

import glob
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mirkit.encoders.base import Encoder, file_digest, seeded, wheel_folder
from mirkit.encoders.onnx_net import OnnxNetMixin
from mirkit.encoders.spec import EncoderSpec
from mirkit.encoders.tfcheckpoint import read_checkpoint
from mirkit.errors import CheckpointError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187
#: a remainder this long (0.37 s) after the last whole patch gets frame-layer outputs of its own
MIN_TAIL_FRAMES = PATCH_FRAMES // 8
#: marks weights revisions of features made with the tail patch (so cached features made without it are not mixed)
FRAMES_REVISION = "+tail"
ONNX_PATCHES = 16  # patches per ONNX Runtime call
BN_EPS = 1e-3
CHECKPOINTS = {"mtt": "MTT_musicnn", "msd": "MSD_musicnn"}


def _bn(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=BN_EPS)


class MusicnnNet(nn.Module):
    """The musicnn network on log-mel patches ``(patches, 187, 96)``."""

    def __init__(self, num_classes: int = 50) -> None:
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList([nn.Conv2d(1, 204, (7, 38)), nn.Conv2d(1, 204, (7, 67))])
        self.timbral_bn = nn.ModuleList([nn.BatchNorm2d(204, eps=BN_EPS) for _ in range(2)])
        self.temporal = nn.ModuleList([nn.Conv2d(1, 51, (k, 1)) for k in (128, 64, 32)])
        self.temporal_bn = nn.ModuleList([nn.BatchNorm2d(51, eps=BN_EPS) for _ in range(3)])
        self.mid = nn.ModuleList([nn.Conv1d(561, 64, 7, padding=3), nn.Conv1d(64, 64, 7, padding=3),
                                  nn.Conv1d(64, 64, 7, padding=3)])
        self.mid_bn = nn.ModuleList([_bn(64) for _ in range(3)])
        self.pool_bn = _bn(1506)
        self.penultimate = nn.Linear(1506, 200)
        self.penultimate_bn = _bn(200)
        self.logits = nn.Linear(200, num_classes)

    def forward(self, patches: torch.Tensor) -> list[torch.Tensor]:
        """Return the 8 layers for ``(P, 187, 96)`` patches: frame layers ``(P, 187, D)``, patch layers ``(P, D)``."""
        x = self.input_bn(patches[:, None])  # (P, 1, T, F)
        padded = F.pad(x, (0, 0, 3, 3))
        front = []
        for conv, bn in zip(self.timbral, self.timbral_bn):
            front.append(_conv_relu_bn_maxpool(conv, bn, padded, training=self.training))  # (P, C, T)
        for conv, bn in zip(self.temporal, self.temporal_bn):
            k = getattr(conv, "base_layer", conv).kernel_size[0]  # LoRA (peft) wraps the conv
            same = F.pad(x, (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2))
            front.append(_conv_relu_bn_maxpool(conv, bn, same, training=self.training))
        frontend = torch.cat(front, dim=1)  # (P, 561, T)
        cnn1 = self.mid_bn[0](F.relu(self.mid[0](frontend)))
        cnn2 = self.mid_bn[1](F.relu(self.mid[1](cnn1))) + cnn1
        cnn3 = self.mid_bn[2](F.relu(self.mid[2](cnn2))) + cnn2
        midend = torch.cat([frontend, cnn1, cnn2, cnn3], dim=1)  # (P, 753, T)
        max_pool = midend.amax(dim=2)
        mean_pool = midend.mean(dim=2)
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # interleaved, as TF
        penultimate = self.penultimate_bn(F.relu(self.penultimate(self.pool_bn(flat))))
        logits = self.logits(penultimate)
        frame_layers = [t.transpose(1, 2) for t in (frontend, cnn1, cnn2, cnn3)]
        return frame_layers + [mean_pool, max_pool, penultimate, logits]


def _conv_relu_bn_maxpool(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor, *, training: bool) -> torch.Tensor:
    """``max_freq(BN(ReLU(conv(x))))`` as musicnn computes it, returning ``(P, C, T)``.

    In eval mode the per-channel map ``BN o ReLU`` is monotone (increasing where the BN scale is
    >= 0, decreasing otherwise), so the max over frequency can be taken first, on the conv output:
    ``max(g(y)) = g(max y)`` for increasing ``g`` and ``g(min y)`` for decreasing ``g``. The result is
    the same; it saves two passes over the largest tensors of the network (about 15% of the time).
    """
    y = conv(x)  # (P, C, T, F)
    if training:
        return bn(F.relu(y)).amax(dim=3)
    low, high = torch.aminmax(y, dim=3)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    picked = torch.where((scale >= 0)[None, :, None], high, low)
    return F.batch_norm(F.relu(picked), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _tf_to_torch(tf: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map TF variable names (creation order in musicnn ``models.py``) to :class:`MusicnnNet` keys."""
    bn_targets = ["input_bn", "timbral_bn.0", "timbral_bn.1", "temporal_bn.0", "temporal_bn.1", "temporal_bn.2",
                  "mid_bn.0", "mid_bn.1", "mid_bn.2", "pool_bn", "penultimate_bn"]
    conv_targets = ["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2", "mid.0", "mid.1", "mid.2"]
    out: dict[str, torch.Tensor] = {}
    for i, target in enumerate(bn_targets):
        src = "batch_normalization" + (f"_{i}" if i else "")
        for tf_name, torch_name in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                                    ("moving_variance", "running_var")):
            out[f"{target}.{torch_name}"] = torch.from_numpy(tf[f"{src}/{tf_name}"])
    for i, target in enumerate(conv_targets):
        src = "conv2d" + (f"_{i}" if i else "")
        kernel = tf[f"{src}/kernel"]  # (kt, kf, in, out)
        if target.startswith("mid"):
            weight = kernel[:, :, 0, :].transpose(2, 1, 0)  # (out, in=kf, kt)
        else:
            weight = kernel.transpose(3, 2, 0, 1)  # (out, in, kt, kf)
        out[f"{target}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        out[f"{target}.bias"] = torch.from_numpy(tf[f"{src}/bias"])
    for src, target in (("dense", "penultimate"), ("dense_1", "logits")):
        out[f"{target}.weight"] = torch.from_numpy(np.ascontiguousarray(tf[f"{src}/kernel"].T))
        out[f"{target}.bias"] = torch.from_numpy(tf[f"{src}/bias"])
    return out


def checkpoint_prefix(dataset: str) -> Path:
    """``.../site-packages/musicnn/<MTT|MSD>_musicnn/`` (the TF checkpoint prefix)."""
    folder = wheel_folder("musicnn", what="musicnn", install="pip install --no-deps musicnn==0.1.0",
                          why="its pinned dependencies are outdated")
    return folder / CHECKPOINTS[dataset]


class MusicnnEncoder(OnnxNetMixin, Encoder):
    """musicnn as a mirkit encoder: waveform -> log-mel -> 3 s patches -> 8 layers.

    ``use_onnx_runtime()`` runs the network (not the log-mel) through ONNX Runtime for CPU
    inference, 16 patches per call: the timbral activations of a bigger batch (0.9 GB per 100
    patches) fall out of cache and run about 10 % slower.
    """

    onnx_input = "patches"
    onnx_chunk = ONNX_PATCHES

    def __init__(self, spec: EncoderSpec, net: MusicnnNet) -> None:
        super().__init__(spec)
        from mirkit.audio.filters import mel_basis

        mel = mel_basis(sample_rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)  # slaney, as librosa's default
        self.register_buffer("mel_basis", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.net = net.eval()

    def onnx_probes(self) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        return [2.0 * torch.rand(n, PATCH_FRAMES, N_MELS, generator=generator) for n in (3, 1)]

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` -> ``(B, frames, 96)``; frames = 1 + S // 256 (centred, zero-padded like librosa)."""
        spec = torch.stft(waveform.float(), N_FFT, HOP, window=self.window, center=True, pad_mode="constant",
                          return_complex=True)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.mel_basis, power)
        return torch.log10(10000.0 * mel + 1.0).transpose(1, 2)

    def encode(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Non-overlapping 3 s patches, as the original; a remainder of at least :data:`MIN_TAIL_FRAMES`
        frames after the last whole patch is covered by one more patch aligned to the input's end, whose
        last frames extend the frame layers (0-3) to the whole input (the original drops them). The
        patch layers (4-7) keep the whole patches only, so their values are the original's."""
        mel = self.log_mel(waveform)
        frames = (1 + lengths // HOP).tolist()
        counts = [f // PATCH_FRAMES for f in frames]
        tails = [f - n * PATCH_FRAMES if n and f - n * PATCH_FRAMES >= MIN_TAIL_FRAMES else 0
                 for f, n in zip(frames, counts)]
        pieces = []
        for i, (n, f, tail) in enumerate(zip(counts, frames, tails)):
            if n:
                pieces.append(mel[i, : n * PATCH_FRAMES].reshape(n, PATCH_FRAMES, N_MELS))
            if tail:
                pieces.append(mel[i, f - PATCH_FRAMES: f][None])
        batch, max_patches = len(counts), max(counts) if counts else 0
        if not pieces:
            empty_layers = [torch.zeros(batch, 0, layer.dim, device=waveform.device) for layer in self.spec.layers]
            zero = torch.zeros(batch, dtype=torch.long, device=waveform.device)
            return empty_layers, [zero] * len(empty_layers)
        outputs = self.run_net(torch.cat(pieces))
        hidden: list[torch.Tensor] = []
        longest = max(n * PATCH_FRAMES + t for n, t in zip(counts, tails))
        for layer_index, out in enumerate(outputs):
            frame_layer = layer_index < 4
            padded = out.new_zeros(batch, longest if frame_layer else max_patches, out.shape[-1])
            start = 0
            for i, (n, tail) in enumerate(zip(counts, tails)):
                if frame_layer and n:
                    padded[i, : n * PATCH_FRAMES] = out[start: start + n].reshape(n * PATCH_FRAMES, -1)
                    if tail:
                        padded[i, n * PATCH_FRAMES: n * PATCH_FRAMES + tail] = out[start + n, PATCH_FRAMES - tail:]
                elif n:
                    padded[i, :n] = out[start: start + n]
                start += n + (1 if tail else 0)
            hidden.append(padded)
        device = waveform.device
        frame_counts = torch.tensor([n * PATCH_FRAMES + t for n, t in zip(counts, tails)], device=device)
        patch_counts = torch.tensor(counts, device=device)
        frame_lengths = [frame_counts if i < 4 else patch_counts for i in range(len(outputs))]
        return hidden, frame_lengths


def build(spec: EncoderSpec, *, weights_dir: str | None = None, dataset: str = "mtt") -> MusicnnEncoder:
    """Build ``musicnn-<dataset>``; ``weights_dir`` may point at another TF checkpoint prefix/folder."""
    if spec.is_random:
        with seeded(0):
            encoder = MusicnnEncoder(spec, MusicnnNet())
        encoder.weights_revision = "random-seed0" + FRAMES_REVISION
        return encoder
    net = MusicnnNet()
    prefix = Path(weights_dir) if weights_dir else checkpoint_prefix(dataset)
    prefix_str = str(prefix) + ("/" if prefix.is_dir() else "")
    tf = read_checkpoint(prefix_str)
    try:
        state = _tf_to_torch(tf)
    except KeyError as exc:
        raise CheckpointError(f"{prefix_str!r} is not a musicnn checkpoint: variable {exc} is missing.") from None
    net.load_state_dict(state, strict=False)
    missing = set(net.state_dict()) - set(state) - {k for k in net.state_dict() if k.endswith("num_batches_tracked")}
    if missing:
        raise CheckpointError(f"musicnn checkpoint {prefix_str!r} lacks {sorted(missing)}")
    encoder = MusicnnEncoder(spec, net)
    encoder.weights_revision = ("sha256:" + file_digest([Path(p) for p in sorted(glob.glob(glob.escape(prefix_str)
                                                                                          + ".data-*"))])
                                + FRAMES_REVISION)
    return encoder


def tag_names(dataset: str = "mtt") -> list[str]:
    """The 50 tag names of layer 7, in order, read from the installed musicnn package."""
    import ast

    config = checkpoint_prefix(dataset).parent / "configuration.py"
    tree = ast.parse(config.read_text())
    wanted = f"{dataset.upper()}_LABELS"
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == wanted for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise CheckpointError(f"{config} does not define {wanted}")
