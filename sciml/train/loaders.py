"""Data loaders for the Trainer: resumable training order, exact evaluation sharding.

Training data given as a map-style ``Dataset`` gets a :class:`ResumableDistributedSampler`: the
epoch's order is a permutation seeded by ``(seed, epoch)``, each rank takes its interleaved
shard, and an epoch can be re-opened after ``k`` consumed batches, which is what makes resuming
exact. The loader's own generator (used only to seed worker processes) is re-seeded from
``(seed, epoch)`` at every epoch, so opening an epoch never draws from the global torch RNG
whose state the checkpoint restores.

A ``DataLoader`` given by the user is used as is (``set_epoch`` is called on its sampler when it
has one); resuming skips the consumed batches by reading them. That is exact when the loader's
order does not depend on the global RNG (no shuffling, a seeded generator, or a sampler with
``set_epoch``); a ``shuffle=True`` loader without a generator reshuffles the interrupted epoch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from .._checks import check_positive_int
from ..errors import ConfigError
from .distributed import DistInfo, ResumableDistributedSampler, ShardSampler

__all__ = ["make_train_loader", "make_eval_loaders", "open_epoch", "batches_per_epoch"]


def _loader_seed(seed: int, epoch: int) -> int:
    # A fixed odd multiplier keeps (seed, epoch) pairs from colliding for small seeds/epochs.
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


def make_train_loader(
    data: Any, *, batch_size: int, shuffle: bool, drop_last: bool, seed: int, num_workers: int,
    info: DistInfo, device: torch.device,
) -> tuple[DataLoader | None, ResumableDistributedSampler | None]:
    """The training loader (and its resumable sampler for map-style datasets) for ``data``.

    ``data`` may be None (self-sampling task), a ``Dataset`` or a ``DataLoader``.
    """
    if data is None:
        return None, None
    if isinstance(data, DataLoader):
        if info.is_distributed and not isinstance(data.sampler, DistributedSampler) and not isinstance(
            data.dataset, IterableDataset
        ):
            warnings.warn(
                "train_data is a DataLoader without a DistributedSampler: every rank iterates over all of "
                "the data; pass the Dataset to let the Trainer shard it", RuntimeWarning, stacklevel=3)
        return data, None
    if not isinstance(data, Dataset):
        raise ConfigError(
            f"train_data: expected None, a torch Dataset or a DataLoader, got {type(data).__name__}"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    pin = device.type == "cuda"
    if isinstance(data, IterableDataset):
        if info.is_distributed:
            warnings.warn("train_data is an IterableDataset: it must shard itself across ranks",
                          RuntimeWarning, stacklevel=3)
        return DataLoader(data, batch_size=batch_size, num_workers=num_workers, pin_memory=pin), None
    if not hasattr(data, "__len__"):
        raise ConfigError(f"train_data: a map-style Dataset needs __len__, {type(data).__name__} has none")
    if len(data) == 0:
        raise ConfigError("train_data: the dataset is empty")
    sampler = ResumableDistributedSampler(
        data, num_replicas=info.world_size, rank=info.rank, shuffle=shuffle, seed=seed
    )
    loader = DataLoader(
        data, batch_size=batch_size, sampler=sampler, drop_last=drop_last, num_workers=num_workers,
        pin_memory=pin, generator=torch.Generator().manual_seed(_loader_seed(seed, 0)),
    )
    if len(loader) == 0:
        raise ConfigError(
            f"train_data: {sampler.num_samples} samples per rank give no batch of {batch_size} "
            "with drop_last=True"
        )
    return loader, sampler


def make_eval_loaders(
    data: Any, *, batch_size: int, num_workers: int, info: DistInfo, device: torch.device
) -> dict[str, DataLoader]:
    """Named evaluation loaders; datasets are sharded across ranks without padding.

    ``data`` may be None, a Dataset or DataLoader (named ``"val"``), or a dict of them
    (e.g. one validation set per resolution).
    """
    if data is None:
        return {}
    if isinstance(data, (Dataset, DataLoader)):
        data = {"val": data}
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(
            f"val_data: expected None, a Dataset/DataLoader or a non-empty dict of them, got {data!r}")
    out = {}
    for name, item in data.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ConfigError(f"val_data: expected names without '/', got {name!r}")
        if isinstance(item, DataLoader):
            out[name] = item
            continue
        if not isinstance(item, Dataset):
            raise ConfigError(
                f"val_data[{name!r}]: expected a Dataset or DataLoader, got {type(item).__name__}")
        if isinstance(item, IterableDataset) or not hasattr(item, "__len__"):
            out[name] = DataLoader(item, batch_size=batch_size, num_workers=num_workers)
            continue
        sampler = ShardSampler(len(item), info.world_size, info.rank)
        out[name] = DataLoader(item, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                               pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))
    return out


def batches_per_epoch(
    loader: DataLoader | None, sampler: ResumableDistributedSampler | None = None
) -> int | None:
    """Batches per full epoch (per rank), or None when unknown (iterable data, no data)."""
    if loader is None:
        return None
    if sampler is not None:  # len(loader) would shrink while the sampler starts mid-epoch
        n, bs = sampler.num_samples, int(loader.batch_size or 1)
        return n // bs if loader.drop_last else -(-n // bs)
    try:
        return len(loader)
    except TypeError:
        return None


def open_epoch(
    loader: DataLoader, sampler: ResumableDistributedSampler | None, *, epoch: int, skip_batches: int,
    batch_size: int, seed: int,
) -> Iterator[Any]:
    """An iterator over ``epoch``'s batches, starting after ``skip_batches`` consumed ones."""
    if sampler is not None:
        sampler.set_epoch(epoch)
        sampler.set_start(min(skip_batches * batch_size, sampler.num_samples))
        loader.generator = torch.Generator().manual_seed(_loader_seed(seed, epoch))
        return iter(loader)
    inner = getattr(loader, "sampler", None)
    if hasattr(inner, "set_epoch"):
        inner.set_epoch(epoch)
    batch_sampler = getattr(loader, "batch_sampler", None)
    if hasattr(getattr(batch_sampler, "sampler", None), "set_epoch") and batch_sampler.sampler is not inner:
        batch_sampler.sampler.set_epoch(epoch)
    if skip_batches == 0:
        return iter(loader)
    # Re-opening an epoch after a resume: the interrupted run drew from the global RNG when it
    # opened this epoch and read these batches (DataLoader seeds, random samplers, augmentation)
    # before the checkpoint captured the RNG state, so doing it again must not draw a second time.
    with torch.random.fork_rng(devices=[]):
        it = iter(loader)
        for _ in range(skip_batches):
            next(it, None)
    return it
