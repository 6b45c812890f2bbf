"""Atomic training checkpoints.

A checkpoint is two files, ``ckpt-<step>.safetensors`` (the trainable state: method parameters,
head, standardisation, and for fine-tuning the whole encoder) and ``ckpt-<step>.pt`` (optimizer,
scheduler, loop position, early-stopping state, RNG states), followed by ``checkpoint.json``
naming them. Each file is written to a temporary name, fsynced and renamed; ``checkpoint.json``
is replaced last, and older checkpoint files are deleted only after that, so a kill at any moment
leaves a complete checkpoint behind.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import torch

from mirkit.errors import CheckpointError
from mirkit.files import atomic_write_bytes

POINTER = "checkpoint.json"


def rng_state() -> dict[str, object]:
    state: dict[str, object] = {"python": random.getstate(), "numpy": np.random.get_state(),
                                "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, object]) -> None:
    random.setstate(state["python"])  # type: ignore[arg-type]
    np.random.set_state(state["numpy"])  # type: ignore[arg-type]
    torch.set_rng_state(state["torch"])  # type: ignore[arg-type]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])  # type: ignore[arg-type]


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save

    atomic_write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata))


def save_checkpoint(folder: Path, *, step: int, tensors: dict[str, torch.Tensor], trainer: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    weights, state = folder / f"ckpt-{step:08d}.safetensors", folder / f"ckpt-{step:08d}.pt"
    save_tensors(weights, tensors)
    buffer = io.BytesIO()
    torch.save(trainer, buffer)
    atomic_write_bytes(state, buffer.getvalue())
    atomic_write_bytes(folder / POINTER, json.dumps({"step": step, "weights": weights.name, "state": state.name}).encode())
    for old in folder.glob("ckpt-*"):
        if old.name not in (weights.name, state.name):
            old.unlink(missing_ok=True)


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]] | None:
    """The latest complete checkpoint in ``folder``, or ``None`` when there is none."""
    from safetensors.torch import load_file

    pointer = folder / POINTER
    if not pointer.is_file():
        return None
    try:
        info = json.loads(pointer.read_text())
        tensors = load_file(str(folder / info["weights"]))
        trainer = torch.load(folder / info["state"], weights_only=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint in {folder} is unreadable ({exc}); delete {folder} to start over, "
                              "or run without --resume.") from None
    return tensors, trainer
