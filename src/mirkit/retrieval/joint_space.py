"""A trained joint model's query side without torch (``mirkit search --model`` from the command line).

The text tower is one linear layer and an L2 normalisation, applied here in numpy to the query's
MiniLM vector. The index's audio vectors go through the audio tower (an MLP, in torch) once per
model and index scan; the result is cached in the query snapshot as ``joint-<model digest>.npy``
(a new scan replaces the snapshot folder, and with it the cache). Models with LoRA on the text
encoder need PyTorch for the text side and do not come here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mirkit.errors import CheckpointError
from mirkit.files import sha256_file

log = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "search_model.json"


def read_model_info(folder: str | Path) -> dict[str, object]:
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        raise CheckpointError(f"{folder} is not a search model (expected {CONFIG_FILE} and {MODEL_FILE}); "
                              "train one with `mirkit search train --db LIB --out MODEL`.")
    return json.loads((folder / CONFIG_FILE).read_text())


def check_model_info(path: str | Path, info: dict[str, object], *, index_info: dict[str, object],
                     text_revision: str) -> None:
    """A model must have been trained on this index's features and this text encoder."""
    trained_on = info.get("index") or {}
    for key in ("encoder", "layer"):
        if trained_on.get(key) != index_info.get(key):  # type: ignore[union-attr]
            raise CheckpointError(f"search model {path} was trained on {key}={trained_on.get(key)!r} features, but "  # type: ignore[union-attr]
                                  f"the index has {key}={index_info.get(key)!r}; use a model trained on this index.")
    if info.get("text_encoder_revision") != text_revision:
        raise CheckpointError(f"search model {path} expects text encoder {info.get('text_encoder_revision')}, "
                              f"not {text_revision}.")


def adapts_text_tower(folder: str | Path) -> bool:
    """Whether a model folder carries LoRA weights for the text encoder (then PyTorch runs the text side)."""
    try:
        info = json.loads((Path(folder) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return True  # the PyTorch path reports what is wrong with the folder
    return int((info.get("train") or {}).get("text_lora_rank") or 0) > 0


class JointSpace:
    """``embed_text`` in numpy and the index's audio in the joint space (see the module docstring)."""

    def __init__(self, folder: Path, *, weight: np.ndarray, bias: np.ndarray, audio_space: np.ndarray) -> None:
        self.folder, self.weight, self.bias, self.audio_space = folder, weight, bias, audio_space

    @classmethod
    def load(cls, folder: str | Path, *, snapshot_dir: Path, audio: np.ndarray, index_info: dict[str, object],
             text_revision: str, embed_audio: Callable[[Path, np.ndarray], np.ndarray]) -> JointSpace:
        """``embed_audio(folder, audio)`` runs the audio tower (PyTorch) when the cache has no answer."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        check_model_info(folder, read_model_info(folder), index_info=index_info, text_revision=text_revision)
        tensors = load_file(str(folder / MODEL_FILE))
        cache = snapshot_dir / f"joint-{sha256_file(folder / MODEL_FILE)[:16]}.npy"
        try:
            audio_space = np.load(cache)
        except (OSError, ValueError):
            audio_space = embed_audio(folder, audio)
            try:
                _save(cache, audio_space)
            except OSError as exc:  # a read-only index only costs the next query the same second
                log.info("joint audio space not cached in %s: %s", cache, exc)
        if audio_space.shape[0] != len(audio):
            audio_space = embed_audio(folder, audio)  # a snapshot rebuilt with another row count
        return cls(folder, weight=tensors["text.weight"], bias=tensors["text.bias"], audio_space=audio_space)

    def embed_text(self, vectors: np.ndarray) -> np.ndarray:
        """``normalize(vectors @ W.T + b)``: the model's text tower (``JointModel.embed_text``)."""
        out = vectors.astype(np.float32) @ self.weight.T + self.bias
        return out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)


def _save(path: Path, array: np.ndarray) -> None:
    import io

    from mirkit.files import atomic_write_bytes

    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())
