"""Data-parallel training under ``torchrun`` (DistributedDataParallel), shared by the training loops.

``torchrun --nproc-per-node N -m mirkit.cli.main tune ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`context` joins them into one process group (NCCL on
GPUs, gloo on the CPU). Each global batch is the one a single process would draw (the batch order
is a function of seed, epoch and batch), and every rank trains on its share of it, so gradients
averaged by DDP are those of the whole batch and results match single-process training up to
floating-point summation order. Rank 0 alone writes checkpoints and results; every rank evaluates
the whole validation split, so that early stopping decides alike everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from mirkit.errors import ConfigError


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job: ``rank`` of ``world_size`` (1: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def share(self, batch_size: int) -> slice:
        """This rank's rows of a global batch (every ``world_size``-th, from ``rank``)."""
        return slice(self.rank, batch_size, self.world_size)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel when distributed (it broadcasts rank 0's weights), else as is."""
        if not self.active:
            return model
        ids = [device.index if device.index is not None else self.local_rank] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def context(device: str = "cpu") -> Distributed:
    """The process group of this ``torchrun`` job, joined on first call (a single process without it)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        from mirkit.files import private_numba_cache

        private_numba_cache()  # ranks side by side must not write librosa's numba cache at once (--augment pitch)
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl" and not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} under torchrun needs CUDA; use --device cpu (gloo) or run on GPUs.")
        torch.distributed.init_process_group(backend=backend)
    return Distributed(rank, world_size, local_rank)


def device_for(device: str, dist: Distributed) -> str:
    """``cuda`` becomes ``cuda:<local rank>`` under torchrun, so each process drives its own GPU."""
    if dist.active and device == "cuda":
        torch.cuda.set_device(dist.local_rank)
        return f"cuda:{dist.local_rank}"
    return device


__all__ = ["Distributed", "context", "device_for"]
