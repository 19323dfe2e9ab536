"""What a training process needs to know about a torch.distributed job.

skvae trains data-parallel when it runs inside an initialized process group
(``torchrun``, :func:`skvae.distributed.fit_data_parallel`); these helpers
keep every process of such a job in step and are no-ops otherwise.
"""

import torch
from torch import distributed as dist


def world_size():
    """Return how many processes train together (1 outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _collective_device():
    # NCCL only reduces CUDA tensors; gloo and MPI take CPU tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def agree_on_seed(seed):
    """Return rank 0's ``seed`` on every process (``seed`` itself alone).

    Processes seeded differently would shuffle overlapping shards and split
    different validation sets.
    """
    if world_size() == 1:
        return seed
    shared = torch.tensor([seed], dtype=torch.int64, device=_collective_device())
    dist.broadcast(shared, src=0)
    return int(shared.item())


def all_finite(loss):
    """Whether ``loss`` is finite on every process.

    One process stopping alone would leave the others waiting forever in
    the next gradient all-reduce, so all of them decide together.
    """
    finite = torch.isfinite(loss.detach()).to(torch.int32).reshape(1)
    if world_size() > 1:
        finite = finite.to(_collective_device())
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())
