"""Data-parallel training under ``torchrun``: process group, samplers, reductions.

Why no ``DistributedDataParallel`` wrapper
-------------------------------------------
DDP averages gradients with hooks that fire during ``loss.backward()``. The Trainer's combiners
do not always call one ``backward``: gradient-surgery combiners (ConFIG, PCGrad) take one
``torch.autograd.grad`` per loss term and combine the results nonlinearly, which DDP's hooks
would either miss or reduce at the wrong time. So the Trainer keeps the plain module and does
the reduction itself, explicitly and in one place:

* at the start, rank 0's parameters and buffers are broadcast, so all ranks start equal;
* after the combiner has set ``p.grad``, :func:`average_gradients` all-reduces every gradient
  (one flat buffer, one collective) and divides by the world size. For a combiner that is linear
  in the terms this is exactly the gradient of the global-batch loss (the mean of equal-sized
  per-rank means is the global mean); nonlinear combiners average their per-term gradients
  before combining (see :mod:`sciml.optim.combine`);
* the loss terms ride along in the same buffer, so every rank sees the same averaged terms and
  takes the same NaN-guard decision.

Buffers (BatchNorm statistics) are not synchronised after the start; rank 0's are the ones saved.

Data sharding uses :class:`ResumableDistributedSampler`, a ``DistributedSampler`` that can start
in the middle of an epoch (exact resume). Rank ``r`` of ``W`` gets the indices ``r, r+W, ...`` of
the epoch's order (a permutation seeded by ``seed + epoch``, or ``0..n-1`` without shuffle), so the
union of the ranks' ``k``-th batches is one contiguous block of the epoch's order: the same block a
single process would draw with a batch ``W`` times larger.
"""

from __future__ import annotations

import atexit
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from ..errors import ConfigError
from .device import resolve_device

__all__ = [
    "DistInfo",
    "launched_by_torchrun",
    "setup_distributed",
    "shutdown_distributed",
    "current_dist",
    "barrier",
    "all_reduce_mean",
    "average_gradients",
    "broadcast_module",
    "all_gather_objects",
    "ResumableDistributedSampler",
    "ShardSampler",
]

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # True when this process group was created by the Trainer

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` are set (torchrun / torch.distributed.run)."""
    return all(v in os.environ for v in _TORCHRUN_VARS)


def _env_int(name: str) -> int:
    raw = os.environ[name]
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}: expected an integer, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"environment variable {name}: expected >= 0, got {value}")
    return value


def current_dist() -> DistInfo:
    """The process group's rank and size if one is initialised, else a single-process DistInfo."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return DistInfo(dist.get_rank(), dist.get_world_size(), local, owns_group=False)
    return DistInfo()


def setup_distributed(device: str | torch.device | None = "auto") -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group if launched by torchrun; pick this rank's device.

    Single process (no torchrun, or ``WORLD_SIZE=1``): returns ``DistInfo()`` and
    :func:`resolve_device(device) <sciml.train.device.resolve_device>`. Under torchrun with several
    processes: CUDA (``"auto"`` or ``"cuda"`` with a GPU) uses ``cuda:LOCAL_RANK`` and NCCL;
    otherwise CPU and gloo. An already initialised group is reused (and not destroyed later).
    """
    if dist.is_available() and dist.is_initialized():
        info = current_dist()
        if not info.is_distributed:
            return info, resolve_device(device)
        return info, _rank_device(device, info.local_rank)
    if not launched_by_torchrun():
        return DistInfo(), resolve_device(device)
    rank, world, local = (_env_int(v) for v in _TORCHRUN_VARS)
    if world <= 1:
        return DistInfo(), resolve_device(device)
    if rank >= world:
        raise ConfigError(f"RANK={rank} must be below WORLD_SIZE={world}")
    if not dist.is_available():
        raise ConfigError("launched by torchrun but this torch build has no torch.distributed support")
    dev = _rank_device(device, local)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    atexit.register(shutdown_distributed)
    return DistInfo(rank, world, local, owns_group=True), dev


def _rank_device(device: str | torch.device | None, local_rank: int) -> torch.device:
    request = "auto" if device is None else device
    if request == "auto":
        request = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(request) if not isinstance(request, torch.device) else request
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested under torchrun but CUDA is not available")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPUs are visible; "
                "use --nproc_per_node at most the number of GPUs"
            )
        return torch.device("cuda", local_rank)
    if dev.type != "cpu":
        raise ConfigError(f"distributed training supports CPU (gloo) and CUDA (NCCL), got device {dev}")
    return dev


def shutdown_distributed() -> None:
    """Destroy the default process group if one is initialised.

    The Trainer registers this to run at interpreter exit when it created the group, rather than
    calling it at the end of ``fit``: a second ``fit`` in the same torchrun launch then reuses
    the group. Re-creating the default group in one launch is not safe: torch restarts its
    group numbering, so the new group's rendezvous keys collide with the old ones in torchrun's
    store and the ranks can deadlock.
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for all ranks (no-op in a single process)."""
    if info.is_distributed and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(tensor: Tensor, info: DistInfo) -> Tensor:
    """Average ``tensor`` over ranks (a new tensor; the input is untouched)."""
    if not (info.is_distributed and dist.is_initialized()):
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def average_gradients(params: Sequence[Tensor], info: DistInfo, extra: Tensor | None = None) -> Tensor | None:
    """Average ``p.grad`` over ranks in place (and ``extra``, returned averaged), in one collective.

    A parameter without a gradient on some rank counts as zero there; one without a gradient on
    every rank keeps ``grad=None``. ``extra`` is a 1-D tensor of additional numbers to average
    (the loss terms), so the terms and the gradients travel together.
    """
    if not (info.is_distributed and dist.is_initialized()):
        return extra
    params = list(params)
    ref = params[0]
    dtype = torch.float64 if any(p.dtype == torch.float64 for p in params) else torch.float32
    parts = []
    for p in params:
        if p.grad is None:
            parts.append(torch.zeros(p.numel(), device=ref.device, dtype=dtype))
        else:
            parts.append(p.grad.detach().reshape(-1).to(device=ref.device, dtype=dtype))
    has_grad = torch.tensor([p.grad is not None for p in params], device=ref.device, dtype=dtype)
    parts.append(has_grad)
    if extra is not None:
        parts.append(extra.detach().reshape(-1).to(device=ref.device, dtype=dtype))
    flat = torch.cat(parts)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    sizes = [p.numel() for p in params]
    counts = flat[sum(sizes) : sum(sizes) + len(params)].tolist()  # one host sync
    for i, (p, n) in enumerate(zip(params, sizes)):
        chunk = flat[offset : offset + n]
        offset += n
        if counts[i] == 0:
            p.grad = None
        else:
            p.grad = (chunk / info.world_size).view_as(p).to(p.dtype)
    offset += len(params)
    if extra is None:
        return None
    return flat[offset:].to(extra.dtype) / info.world_size


def broadcast_module(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not (info.is_distributed and dist.is_initialized()):
        return
    with torch.no_grad():
        for tensor in itertools.chain(module.parameters(), module.buffers()):
            dist.broadcast(tensor.data, src=0)


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in a single process."""
    if not (info.is_distributed and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


class ResumableDistributedSampler(DistributedSampler):
    """A :class:`~torch.utils.data.DistributedSampler` that can start mid-epoch.

    The epoch's order is a permutation seeded by ``seed + epoch`` (``set_epoch`` before each
    epoch, as for DistributedSampler); ``set_start(k)`` skips the first ``k`` indices of this
    rank's shard, so resuming after ``b`` batches of size ``B`` uses ``set_start(b * B)``.
    Works without a process group when ``num_replicas`` and ``rank`` are given (one process:
    ``num_replicas=1, rank=0``).
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not hasattr(dataset, "__len__"):
            raise ConfigError("ResumableDistributedSampler: expected a map-style dataset with __len__")
        if len(dataset) == 0:  # type: ignore[arg-type]
            raise ConfigError("ResumableDistributedSampler: the dataset is empty")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's shard in the current epoch."""
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= self.num_samples:
            raise ConfigError(f"sampler start: expected an int in [0, {self.num_samples}], got {start!r}")
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardSampler(Sampler[int]):
    """Evaluation sharding without padding: rank ``r`` of ``W`` gets ``r, r+W, r+2W, ...``.

    Unlike DistributedSampler nothing is duplicated, so metrics reduced with sample-count weights
    are exact means over the data set.
    """

    def __init__(self, n: int, num_replicas: int = 1, rank: int = 0) -> None:
        if n < 0 or not 0 <= rank < num_replicas:
            raise ConfigError(f"ShardSampler: expected n >= 0 and 0 <= rank < {num_replicas}, got n={n}, "
                              f"rank={rank}")
        self.n, self.num_replicas, self.rank = n, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.num_replicas))
