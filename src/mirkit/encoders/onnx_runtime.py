"""ONNX Runtime sessions for inference on the CPU (query encoding in search, musicnn extraction).

Why: on a 2-core CPU, PyTorch spends about 15 ms on one short query through all-MiniLM-L6-v2,
most of it re-packing each weight matrix for every small matrix product; ONNX Runtime packs the
weights once when the session opens and runs the same query in about 6 ms, with embeddings equal
to PyTorch's within a few 1e-7. Its convolutions also run musicnn about 1.5x faster than oneDNN
here. Every session is checked against PyTorch when it is opened (see :func:`open_session`).

The model is exported once with ``torch.onnx.export`` (needs the ``onnx`` package) and cached as
``$MIRKIT_CACHE/onnx/<digest>.onnx`` (default ``~/.cache/mirkit``), where the digest covers every
weight, so a LoRA-adapted text tower gets its own file. A session remembers the parameter tensors
it was built from; once any of them is modified (training, loading other weights) it reports
itself stale and the caller falls back to PyTorch.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mirkit.errors import ConfigError
from mirkit.files import cache_dir

log = logging.getLogger(__name__)

OPSET = 17
MAX_DIFFERENCE = 1e-4  # largest accepted |ONNX - PyTorch| on the checked embeddings


def onnx_cache_dir() -> Path:
    return cache_dir("onnx")


def state_digest(model: nn.Module) -> str:
    """sha256 over every parameter and buffer (names, shapes, dtypes and values); about 0.1 s for MiniLM."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
        digest.update(value.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()[:24]


class LastHidden(nn.Module):
    """A transformers model called with named inputs, returning only ``last_hidden_state``."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs))).last_hidden_state


def export_onnx(model: nn.Module, example: dict[str, torch.Tensor], path: Path, *,
                output_names: Sequence[str], dynamic_axes: dict[str, dict[int, str]],
                wrap: Callable[[nn.Module, list[str]], nn.Module] | None = None) -> None:
    """Write ``model`` (called with the tensors of ``example`` in order) as an ONNX graph (atomic).

    ``wrap(model, input_names)`` adapts the call (e.g. :class:`LastHidden`); a peft model is merged
    first, so LoRA costs nothing at inference.
    """
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError as exc:
        raise ImportError("exporting to ONNX needs the 'onnx' package: pip install onnx") from exc
    model = copy.deepcopy(model).cpu().eval()
    if hasattr(model, "merge_and_unload"):  # a peft model: fold LoRA into the base weights
        model = model.merge_and_unload()
    names = list(example)
    module = wrap(model, names) if wrap is not None else model
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches (verified below)
            torch.onnx.export(module, tuple(example[n].cpu() for n in names), temp, dynamo=False,
                              input_names=names, output_names=list(output_names), opset_version=OPSET,
                              dynamic_axes=dynamic_axes)
        with open(temp, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


class OnnxSession:
    """An ONNX Runtime session plus the module (weights and structure) it was exported from."""

    def __init__(self, session, model: nn.Module, *, path: Path) -> None:
        self.session = session
        self.path = path  # the cached graph file
        self.input_names = [item.name for item in session.get_inputs()]
        self._model = model
        modules = list(model.modules())
        # every parent -> child link and every parameter and buffer (batch-norm statistics) with its
        # version counter: a cheap exact check (dict lookups only) that catches in-place updates,
        # replaced tensors and injected layers
        self._children = [(module, name, child) for module in modules for name, child in module._modules.items()]
        self._tensors = [(table, name, tensor, tensor._version) for module in modules
                         for table in (module._parameters, module._buffers)
                         for name, tensor in table.items() if tensor is not None]

    def matches(self, model: nn.Module) -> bool:
        """True while ``model`` is the module the session was built from, unchanged (weights and structure)."""
        return (model is self._model
                and all(module._modules.get(name) is child for module, name, child in self._children)
                and all(table.get(name) is tensor and tensor._version == version
                        for table, name, tensor, version in self._tensors))

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Every output of the graph for ``feeds`` (input name -> array of the exported dtype)."""
        return self.session.run(None, {name: feeds[name] for name in self.input_names})


def open_session(model: nn.Module, example: dict[str, torch.Tensor], *, output_names: Sequence[str],
                 dynamic_axes: dict[str, dict[int, str]], check: Callable[[OnnxSession], float],
                 wrap: Callable[[nn.Module, list[str]], nn.Module] | None = None, cache_dir: str | Path | None = None,
                 threads: int | None = None, max_difference: float = MAX_DIFFERENCE) -> OnnxSession:
    """Export (or reuse) the ONNX file of ``model``, open a CPU session and check it against PyTorch.

    Args:
        example: named example inputs (their order is the graph's input order).
        check: returns the largest ``|ONNX - PyTorch|`` on the caller's probe inputs.
        threads: intra-op threads (default: ``torch.get_num_threads()``).

    Raises:
        ImportError: onnxruntime (or, for a first export, onnx) is not installed.
        RuntimeError: the session differs from PyTorch by more than ``max_difference``.
    """
    import onnxruntime as ort

    path = (Path(cache_dir) if cache_dir else onnx_cache_dir()) / f"{state_digest(model)}.onnx"
    if not path.is_file():
        log.info("exporting %s to %s (once)", type(model).__name__, path)
        export_onnx(model, example, path, output_names=output_names, dynamic_axes=dynamic_axes, wrap=wrap)
    from mirkit.encoders.text_onnx import cpu_session_options

    options = cpu_session_options(threads or torch.get_num_threads())
    session = OnnxSession(ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]), model,
                          path=path)
    difference = float(check(session))
    if not difference <= max_difference:
        raise RuntimeError(f"the ONNX graph {path} differs from PyTorch by {difference:.2e} (at most "
                           f"{max_difference:.0e} allowed); delete the file to export it again, or use PyTorch.")
    return session


def try_open_session(model: nn.Module, example: dict[str, torch.Tensor], *, what: str,
                     **options) -> tuple[OnnxSession | None, str | None]:
    """:func:`open_session` with ``model`` in eval mode meanwhile; ``(session, None)`` or ``(None, reason)``.

    ONNX Runtime is only a faster path: when it cannot be used (not installed, export or check
    failed) the caller keeps PyTorch, and the reason says why.
    """
    was_training = model.training
    model.eval()
    try:
        return open_session(model, example, **options), None
    except ImportError as exc:
        return None, f"{exc} (pip install onnxruntime onnx)"
    except Exception as exc:  # export or runtime trouble must not stop the work PyTorch can do
        log.warning("ONNX Runtime not used for %s: %s", what, exc)
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        model.train(was_training)


def select_runtime(target, mode: str, *, what: str) -> str:
    """Switch ``target`` to ONNX Runtime as ``mode`` (one of :data:`RUNTIMES`) asks; returns its runtime.

    ``target`` has a ``runtime`` property and ``use_onnx_runtime()`` (encoders, the text encoder).
    ``auto`` keeps PyTorch quietly when ONNX Runtime cannot be used; ``onnxruntime`` makes that an
    error naming the reason; ``torch`` leaves the target alone.
    """
    if mode == "torch" or target.runtime == "onnxruntime":
        return target.runtime
    reason = target.use_onnx_runtime()
    if reason is not None:
        if mode == "onnxruntime":
            raise ConfigError(f"ONNX Runtime cannot {what}: {reason}. Use runtime 'auto' or 'torch' instead.")
        log.info("PyTorch will %s: %s", what, reason)
    return target.runtime
