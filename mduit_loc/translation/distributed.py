"""Data-parallel plumbing: a process group from ``torchrun``'s environment, or a single process.

``torchrun --nproc_per_node N -m mduit_loc.cli train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK;
the backend is nccl on CUDA and gloo on CPU. Without those variables everything is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False
    comm_device: torch.device = torch.device("cpu")  # nccl collectives need CUDA tensors

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``tensor`` (same shape and dtype on all ranks), in rank order."""
        if not self.enabled:
            return [tensor]
        local = tensor.contiguous().to(self.comm_device)
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(parts, local)
        return [part.to(tensor.device) for part in parts]

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise mean over ranks of a float tensor."""
        if not self.enabled:
            return values
        summed = values.to(self.comm_device, copy=True)
        dist.all_reduce(summed)
        return (summed / self.world_size).to(values.device)

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``tensor`` on every rank."""
        if not self.enabled:
            return tensor
        local = tensor.contiguous().to(self.comm_device, copy=True)
        dist.broadcast(local, src=0)
        return local.to(tensor.device)

    def all_gather_object(self, value) -> list:
        if not self.enabled:
            return [value]
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def close(self) -> None:
        if self.initialised_here and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group that torchrun describes (if any); pick this rank's CUDA device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    initialised_here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        initialised_here = True
    comm_device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return DistContext(rank, world_size, local_rank, initialised_here, comm_device)


def rank_device(context: DistContext, device: torch.device) -> torch.device:
    """With several processes on CUDA, each uses the GPU of its local rank."""
    if context.enabled and device.type == "cuda":
        return torch.device("cuda", context.local_rank)
    return device
