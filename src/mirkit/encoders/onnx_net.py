"""ONNX Runtime for the convolutional encoders (musicnn, CREPE): ``self.net`` maps one float
tensor ``(N, ...)`` to a list of layer tensors ``(N, ...)``; the rest of the encoder (framing,
log-mel, padding) stays in PyTorch.

On this project's 2-core CPU ONNX Runtime runs musicnn's network about 1.5x and CREPE-tiny's
about 2x faster than PyTorch (`benchmarks/extract_throughput.py`). The graph is exported once per
weights and checked against PyTorch on probe inputs when the session opens (every layer within
1e-4 of its scale); training, gradients and other devices stay in PyTorch, and once the weights
change inference falls back to PyTorch by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mirkit.encoders import onnx_runtime

log = logging.getLogger(__name__)


def layer_check(net: torch.nn.Module, probes: list[torch.Tensor], *, input_name: str) -> Callable[[object], float]:
    """The session check: the largest ``|ONNX - PyTorch|`` over every layer and probe, relative to
    ``1 + max|layer|`` (so a layer of large values is not held to an absolute 1e-4)."""

    def check(session) -> float:
        worst = 0.0
        for probe in probes:
            with torch.inference_mode():
                expected = net(probe)
            got = session.run({input_name: probe.numpy()})
            for want, have in zip(expected, got):
                scale = 1.0 + float(want.abs().max())
                worst = max(worst, float((want - torch.from_numpy(have)).abs().max()) / scale)
        return worst

    return check


class OnnxNetMixin:
    """``use_onnx_runtime``, ``runtime`` and ``run_net`` for an :class:`~mirkit.encoders.base.Encoder`
    with a ``net`` module. Subclasses set ``onnx_input`` (the input's name), ``onnx_chunk`` (rows
    per ONNX Runtime call: small enough that activations stay in cache) and :meth:`onnx_probes`.
    """

    net: torch.nn.Module
    spec: object
    onnx_input = "input"
    onnx_chunk = 64
    _session = None  # an OnnxSession once use_onnx_runtime() succeeded

    def onnx_probes(self) -> list[torch.Tensor]:
        """Inputs to export with (the first) and to check the session on (all), two batch sizes."""
        raise NotImplementedError

    @property
    def runtime(self) -> str:
        return "onnxruntime" if self._session is not None and self._session.matches(self.net) else "torch"

    def use_onnx_runtime(self, *, cache_dir: str | Path | None = None, threads: int | None = None) -> str | None:
        """Run the network through ONNX Runtime for CPU inference; ``None``, or why PyTorch stays."""
        device = next((p.device for p in self.net.parameters()), torch.device("cpu"))
        if device.type != "cpu":
            return "the encoder is not on the CPU (ONNX Runtime is used for CPU inference only)"
        probes = self.onnx_probes()
        self._session, reason = onnx_runtime.try_open_session(
            self.net, {self.onnx_input: probes[0]}, what=self.spec.name,  # type: ignore[attr-defined]
            output_names=[f"layer{i}" for i in range(len(self.spec.layers))],  # type: ignore[attr-defined]
            dynamic_axes={self.onnx_input: {0: "rows"}}, check=layer_check(self.net, probes, input_name=self.onnx_input),
            threads=threads, cache_dir=cache_dir)
        return reason

    def run_net(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``self.net(x)``, through ONNX Runtime when it is active and nothing needs PyTorch
        (no gradients, eval mode, CPU tensors, unchanged weights)."""
        session = self._session
        if session is not None and not torch.is_grad_enabled() and not self.net.training and x.device.type == "cpu":
            if session.matches(self.net):
                array = x.float().contiguous().numpy()
                step = self.onnx_chunk
                chunks = [session.run({self.onnx_input: array[i:i + step]}) for i in range(0, len(array), step)]
                return [torch.from_numpy(np.concatenate(parts) if len(parts) > 1 else parts[0]) for parts in zip(*chunks)]
            log.info("%s weights changed since the ONNX session was opened; using PyTorch",
                     self.spec.name)  # type: ignore[attr-defined]
            self._session = None
        return self.net(x)
