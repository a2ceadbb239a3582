"""DistributedDataParallel under torchrun: joining the process group and rank-0 helpers.

With WORLD_SIZE > 1 every rank trains its shard of the images; rank 0 evaluates, writes
checkpoints and emits messages. Decisions that must be the same on every rank (stop,
skip a step, finish) go through `DistInfo.sum` (one all-reduce) or `DistInfo.agree`
(rank 0's value). In a single process every helper is a no-op.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from studio.ml.train.device import resolve_device


@dataclass(frozen=True, slots=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False  # we created the process group, so we destroy it

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def comm_device(self) -> torch.device:
        """Where collectives run: the GPU with nccl, the CPU with gloo."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def sum(self, *values: float) -> list[float]:
        """Sum over ranks: one collective for several flags and losses."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t)
        return t.tolist()

    def agree(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (decisions taken from rank 0's evaluation)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def wrap(self, model: nn.Module) -> nn.Module:
        """`model` in a new DDP wrapper (the model itself in a single process).

        DDP registers hooks for the parameters that require grad at wrap time, so
        freezing or unfreezing parameters needs a new wrapper. The caller drops its
        reference to the old wrapper first."""
        if not self.distributed:
            return model
        # The old wrapper's reducer must be gone (its destructor removes its autograd
        # hooks) before a new one hooks the same parameters.
        gc.collect()
        ids = [self.local_rank] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        """Leave the process group if this process created it."""
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join torchrun's process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA, each
    rank on GPU LOCAL_RANK); a plain single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(device=resolve_device(device))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    elif dev.type == "mps":
        dev = torch.device("cpu")  # no MPS backend for collectives
    created = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        # Generous: rank 0 evaluates alone while the others wait at a barrier.
        dist.init_process_group(backend=backend, timeout=timedelta(hours=2))
        created = True
    return DistInfo(rank, world, local_rank, dev, created)
