"""The joint text-audio space: two projection towers and a symmetric InfoNCE loss (TTMR++-style).

Audio tower: standardised clip features of a frozen encoder -> MLP -> ``dim``. Text tower:
MiniLM sentence embedding -> linear -> ``dim`` (optionally LoRA on MiniLM itself, see
:mod:`mirkit.retrieval.train`). Both outputs are L2-normalised; similarity is the cosine times a
learnable temperature ``exp(logit_scale)`` (initialised to 1/0.07, capped at 100, as in CLIP).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mirkit.retrieval.joint_space import CONFIG_FILE, MODEL_FILE, check_model_info, read_model_info

MAX_LOGIT_SCALE = math.log(100.0)
LORA_TARGETS = ["query", "value"]  # MiniLM attention projections that text LoRA adapts


@dataclass(frozen=True)
class JointConfig:
    audio_dim: int
    text_dim: int
    dim: int = 128
    hidden: int = 512
    dropout: float = 0.1


class JointModel(nn.Module):
    def __init__(self, config: JointConfig) -> None:
        super().__init__()
        self.config = config
        self.audio = nn.Sequential(nn.Linear(config.audio_dim, config.hidden), nn.GELU(), nn.Dropout(config.dropout),
                                   nn.Linear(config.hidden, config.dim))
        self.text = nn.Linear(config.text_dim, config.dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.register_buffer("audio_mean", torch.zeros(config.audio_dim))
        self.register_buffer("audio_scale", torch.ones(config.audio_dim))

    def set_standardisation(self, features: np.ndarray) -> None:
        mean = features.mean(0)
        scale = features.std(0)
        scale[scale < 1e-8] = 1.0  # constant features stay constant instead of blowing up
        self.audio_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.audio_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))

    def embed_audio(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio((features - self.audio_mean) / self.audio_scale), dim=-1)

    def embed_text(self, text_features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(text_features), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()


def info_nce(audio: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
             same: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of matching (audio_i, text_i) pairs.

    ``same[i, j]`` (optional, bool) marks off-diagonal pairs that are also matches (identical
    captions, or the same track twice); they are removed from the negatives instead of being
    pushed apart.
    """
    logits = scale * audio @ text.T
    if same is not None:
        off_diagonal = same & ~torch.eye(len(same), dtype=torch.bool, device=same.device)
        logits = logits.masked_fill(off_diagonal, float("-inf"))
    targets = torch.arange(len(audio), device=audio.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def save_model(model: JointModel, out: Path, *, extra: dict[str, object], text_state: dict[str, torch.Tensor] | None) -> None:
    """Write the towers (and LoRA weights of the text encoder, if trained) plus the config, atomically."""
    from safetensors.torch import save_file

    from mirkit.files import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for key, value in (text_state or {}).items():
        tensors[f"text_encoder.{key}"] = value.detach().cpu().contiguous()
    tmp = out / (MODEL_FILE + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(out / MODEL_FILE)
    atomic_write_bytes(out / CONFIG_FILE, json.dumps({"joint": asdict(model.config), **extra}, indent=2).encode())


def load_model(path: str | Path) -> tuple[JointModel, dict[str, object], dict[str, torch.Tensor]]:
    """``(model, saved config, text-encoder LoRA tensors)`` from a folder written by ``mirkit search train``."""
    from safetensors.torch import load_file

    folder = Path(path)
    info = read_model_info(folder)
    model = JointModel(JointConfig(**info["joint"]))
    tensors = load_file(str(folder / MODEL_FILE))
    text_state = {k.removeprefix("text_encoder."): v for k, v in tensors.items() if k.startswith("text_encoder.")}
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("text_encoder.")})
    return model.eval(), info, text_state


def apply_text_lora(text_encoder, rank: int):
    """Wrap the text encoder's MiniLM in peft LoRA of ``rank`` on its query/value projections."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=LORA_TARGETS)
    text_encoder.model = get_peft_model(text_encoder.model, config)
    text_encoder.clear_memo()
    return text_encoder


def load_search_model(path: str | Path, *, index_info: dict[str, object], text_encoder):
    """The joint model saved in ``path`` and the text encoder it expects (LoRA applied when trained)."""
    model, info, text_state = load_model(path)
    check_model_info(path, info, index_info=index_info, text_revision=text_encoder.revision)
    if text_state:
        from peft import set_peft_model_state_dict

        apply_text_lora(text_encoder, int(info["train"]["text_lora_rank"]))
        set_peft_model_state_dict(text_encoder.model, text_state)
        text_encoder.model.eval()
    return model, text_encoder
