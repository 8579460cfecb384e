"""Data-parallel training over several processes, as started by ``torchrun``.

    torchrun --nproc_per_node=4 -m pinn_sine.cli solve wave1d --steps 20000

Each process (rank) draws its own share of the collocation points from a generator
seeded by :func:`rank_seed`, evaluates its loss, and the gradients are averaged over
the ranks by :class:`~torch.nn.parallel.DistributedDataParallel` in the backward pass,
so every rank takes the same optimiser step: with equal shares, the step of a single
process on the union of the points. Only rank 0 writes checkpoints, history and
figures. Backend: nccl for CUDA devices, gloo for CPUs.

:func:`~pinn_sine.train.train` needs nothing from the caller beyond an initialised
process group (:func:`init_from_env`); it reads rank and world size from it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

#: mixes the rank into the seed (the 64-bit golden-ratio constant); rank 0 keeps ``seed``
_SEED_STRIDE = 0x9E3779B97F4A7C15
#: mixed into the seed of generators shared by all ranks (:func:`shared_seed`)
_SHARED_MIX = 0x5DEECE66D2B7E151


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank, the number of ranks, and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def active(self) -> bool:
        """True when several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """True when the environment of ``torchrun`` (RANK, WORLD_SIZE) is present."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def backend_for(device: str | torch.device) -> str:
    """"nccl" for a CUDA device, "gloo" otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_from_env(device: str | torch.device = "cpu") -> Context:
    """Initialise the default process group from torchrun's variables (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and return this process's context. A CUDA
    ``device`` becomes ``cuda:LOCAL_RANK``. Without torchrun's variables: one process,
    nothing initialised."""
    device = torch.device(device)
    if not launched():
        return Context(0, 1, device)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device cuda was asked for but torch sees no CUDA device; use --device cpu (gloo).")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend_for(device), init_method="env://")
    return Context(dist.get_rank(), dist.get_world_size(), device)


def current(device: str | torch.device = "cpu") -> Context:
    """The context of an initialised process group, or a single process."""
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), torch.device(device))
    return Context(0, 1, torch.device(device))


def shutdown() -> None:
    """Destroy the default process group if one is initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s point generator: ``seed`` itself on rank 0 (so one
    process reproduces a plain run), distinct 63-bit seeds on the others."""
    return seed if rank == 0 else (int(seed) + int(rank) * _SEED_STRIDE) % (2 ** 63)


def shared_seed(seed: int) -> int:
    """The seed of a generator every rank draws from alike (a random sketch that must be
    the same on all ranks): ``seed`` mixed with another constant than :func:`rank_seed`'s,
    so its draws are not those of rank 0's points."""
    return (int(seed) ^ _SHARED_MIX) % (2 ** 63)


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel (gradients averaged over the ranks)."""
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def all_reduce_sum(t: Tensor) -> Tensor:
    """The sum of ``t`` over the ranks (a new tensor; ``t`` is unchanged)."""
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_reduce_mean(t: Tensor) -> Tensor:
    """The mean of ``t`` over the ranks."""
    return all_reduce_sum(t) / dist.get_world_size()


def all_gather_objects(obj) -> list:
    """``obj`` of every rank, in rank order (pickled; keep it small and on the CPU)."""
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
