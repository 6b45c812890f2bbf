"""Query encoding without PyTorch or transformers: the text encoder's ONNX graph and its tokenizer.

Loading all-MiniLM-L6-v2 through transformers costs about 4 s in a fresh process (importing torch
and transformers, building the model), while the query itself takes a few ms. Once a
:class:`~mirkit.encoders.text.TextEncoder` has been served by ONNX Runtime (``mirkit index`` does
this), :func:`remember` records a card in ``$MIRKIT_CACHE/onnx/text/``: the cached ONNX graph,
the tokenizer as one ``tokenizers`` JSON file with the encoder's padding and truncation, and the
weights file's size and modification time. :func:`load_onnx_text_encoder` then builds the same
encoder from those files alone (``onnxruntime`` + ``tokenizers``, about 0.2 s), or returns the
reason it cannot (no card yet, the weights file changed), and the caller falls back to PyTorch.

A card is written only after checks: the ONNX session was checked against PyTorch when it was
opened, and the standalone tokenizer must give the transformers tokenizer's ids on probe texts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mirkit.files import atomic_write_bytes, atomic_write_json, cache_dir

log = logging.getLogger(__name__)

CARD_FORMAT = 1
MAX_TOKENS = 128  # captions and queries are short; MiniLM accepts 256 (TextEncoder truncates here too)
PROBES = ("a", "calm solo piano", "Café del Mar — ambient, 120 BPM!", "music like the opening of a film score " * 20)


def cpu_session_options(threads: int):
    """ONNX Runtime settings of every mirkit CPU session: ``threads`` intra-op threads that sleep when idle
    (they leave the cores to other work), full graph optimisation, warnings off."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def card_path(*, name: str, revision: str) -> Path:
    key = hashlib.sha256(f"{name}\0{revision}".encode()).hexdigest()[:24]
    return cache_dir("onnx") / "text" / f"{key}.json"


def _weights_stamp(path: Path | None) -> dict[str, object] | None:
    if path is None:
        return None
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class OnnxTextEncoder:
    """Texts -> L2-normalised sentence embeddings with ONNX Runtime (same pooling as ``TextEncoder``)."""

    runtime = "onnxruntime"

    def __init__(self, session, tokenizer, *, name: str, revision: str, dim: int) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.name = name
        self.revision = revision
        self.dim = dim
        self.input_names = [item.name for item in session.get_inputs()]
        self._memo: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        arrays = {"input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
                  "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
                  "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64)}
        hidden = self.session.run(None, {name: arrays[name] for name in self.input_names})[0]
        mask = arrays["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1.0)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embeddings ``(len(texts), dim)`` float32; repeated strings are computed once (thread-safe)."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            todo = sorted({t for t in texts if t not in self._memo}, key=len)
            for start in range(0, len(todo), batch_size):
                chunk = todo[start:start + batch_size]
                self._memo.update(zip(chunk, self._embed(chunk)))
            found = np.stack([self._memo[t] for t in texts])
            if len(self._memo) > 50_000:
                self._memo = {}
        return found


def remember(encoder, *, weights: Path | None) -> Path | None:
    """Write the card of ``encoder`` (a ``TextEncoder`` whose ONNX session is open); None when it cannot.

    ``weights``: the file the encoder was loaded from (its size and time are checked on load).
    """
    from tokenizers import Tokenizer

    session = getattr(encoder, "_runtime", None)
    if session is None or not hasattr(encoder.tokenizer, "backend_tokenizer"):
        return None
    tokenizer = Tokenizer.from_str(encoder.tokenizer.backend_tokenizer.to_str())
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    pad = encoder.tokenizer.pad_token
    tokenizer.enable_padding(pad_id=encoder.tokenizer.convert_tokens_to_ids(pad), pad_token=pad)
    expected = encoder._tokenize(list(PROBES), return_tensors="np")
    got = [e.ids for e in tokenizer.encode_batch(list(PROBES))]
    if np.asarray(got).shape != expected["input_ids"].shape or not np.array_equal(np.asarray(got), expected["input_ids"]):
        log.warning("the standalone tokenizer of %s differs from transformers'; queries keep PyTorch", encoder.name)
        return None
    path = card_path(name=encoder.name, revision=encoder.revision)
    tokenizer_path = path.with_suffix(".tokenizer.json")
    atomic_write_bytes(tokenizer_path, tokenizer.to_str().encode())
    atomic_write_json(path, {"format": CARD_FORMAT, "name": encoder.name, "revision": encoder.revision,
                             "dim": encoder.dim, "onnx": str(session.path), "tokenizer": str(tokenizer_path),
                             "weights": _weights_stamp(weights)})
    return path


def load_onnx_text_encoder(*, name: str, revision: str, threads: int = 2) -> tuple[OnnxTextEncoder | None, str | None]:
    """``(encoder, None)`` from the card of ``name``/``revision``, or ``(None, reason)``."""
    path = card_path(name=name, revision=revision)
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, f"no ONNX card for {name} {revision} yet (the first query through PyTorch writes it)"
    if card.get("format") != CARD_FORMAT or card.get("revision") != revision:
        return None, f"the ONNX card {path} is from another version"
    weights = card.get("weights")
    if weights is not None:
        try:
            stamp = _weights_stamp(Path(weights["path"]))
        except OSError:
            stamp = None
        if stamp != weights:
            return None, f"{weights['path']} changed since the ONNX card was written"
    for key in ("onnx", "tokenizer"):
        if not Path(card[key]).is_file():
            return None, f"{card[key]} is missing"
    try:
        import onnxruntime as ort
        from tokenizers import Tokenizer
    except ImportError as exc:
        return None, f"{exc} (pip install onnxruntime tokenizers)"
    session = ort.InferenceSession(card["onnx"], cpu_session_options(threads), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(card["tokenizer"])
    return OnnxTextEncoder(session, tokenizer, name=name, revision=revision, dim=int(card["dim"])), None
